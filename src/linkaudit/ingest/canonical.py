"""Turn a registry's source columns into canonical, normalised columns, in bulk.

Canonical columns of every `reg_<registry>` table:
  _row, _key, [household], name_raw, name, name_pinyin, id_number, id_status, id_birth_date,
  id_region, id_usable, id_suspect, birth_date, birth_date_precision, birth_date_mismatch, sex,
  address, then every other mapped field, parsed by its type (date, excel_serial, amount, int,
  text); a date field `f` comes with `f_precision` (day, month or year; the date is the first
  day of that period).
Rows whose values cannot be read are returned separately as quarantine entries (registry, file,
row, column, reason with the raw value); they never vanish silently.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

import polars as pl

from linkaudit.config import DATE_TYPES, RegistryConfig
from linkaudit.errors import DuplicateKeyError, InputFileError
from linkaudit.ingest.readers import ROW
from linkaudit.normalize import mask_id, mask_ids, normalize_ids, normalize_names
from linkaudit.normalize.amounts import read_amounts, read_ints
from linkaudit.normalize.dates import read_dates
from linkaudit.store import QUARANTINE_SCHEMA
from linkaudit.vocabulary import ID_STATUSES

__all__ = ["HOUSEHOLD", "ID_STATUSES", "KEY", "Canonical", "canonicalize", "check_columns"]

KEY = "_key"
HOUSEHOLD = "household"
# Shown in a quarantine reason: enough of a raw value to find it, never a whole ID number.
_MAX_SHOWN = 40
_SEX_VALUES = {
    "男": "M",
    "女": "F",
    "M": "M",
    "F": "F",
    "m": "M",
    "f": "F",
    "1": "M",
    "2": "F",
    "男性": "M",
    "女性": "F",
}


# Fields with columns of their own (identity), and the types that are parsed rather than text.
_IDENTITY = ("name", "id_number", "birth_date", "sex", "address")
_PARSED = (*DATE_TYPES, "amount", "int")


@dataclass(frozen=True)
class Canonical:
    frame: pl.DataFrame
    quarantine: pl.DataFrame


def header_key(name: str) -> str:
    """A header as compared with the manifest's column names: full-width forms folded
    (`（元）` is `(元)`), spaces of every kind dropped."""
    return "".join(unicodedata.normalize("NFKC", name).split())


def resolve_columns(frame: pl.DataFrame, reg: RegistryConfig) -> RegistryConfig:
    """The registry with each column name the manifest gives replaced by the file's own
    spelling of it, where the two differ only in full-width punctuation or spaces. A name
    that matches no column, or several, is left for check_columns to report."""
    present = set(frame.columns)
    by_key: dict[str, list[str]] = {}
    for col in frame.columns:
        by_key.setdefault(header_key(col), []).append(col)

    def actual(col: str | None) -> str | None:
        if col is None or col in present:
            return col
        found = by_key.get(header_key(col), [])
        return found[0] if len(found) == 1 else col

    return reg.model_copy(
        update={
            "key": actual(reg.key),
            "household": actual(reg.household),
            "fields": {c: actual(col) or col for c, col in reg.fields.items()},
        }
    )


def check_columns(frame: pl.DataFrame, reg: RegistryConfig) -> None:
    """Every column the manifest names must be in the file; report all that are not."""
    wanted: list[tuple[str, str]] = [(f"fields.{c}", col) for c, col in reg.fields.items()]
    if reg.key:
        wanted.append(("key", reg.key))
    if reg.household:
        wanted.append(("household", reg.household))
    present = set(frame.columns)
    missing = [(where, col) for where, col in wanted if col not in present]
    if missing:
        listed = "; ".join(f"{col!r} (registries.{reg.name}.{where})" for where, col in missing)
        available = ", ".join(c for c in frame.columns if c != ROW)
        raise InputFileError(
            f"{reg.path}: column not found: {listed}",
            hint=f"the file's columns are: {available}. Fix the manifest's column names",
        )


_STRIPPED = " \t\r\n\u3000\u00a0"


def _text(expr: pl.Expr) -> pl.Expr:
    """Text as a clean string: cast, strip spaces, empty to null."""
    stripped = expr.cast(pl.Utf8).str.strip_chars(_STRIPPED)
    return pl.when(stripped == "").then(None).otherwise(stripped)


def _texts(frame: pl.DataFrame, sources: dict[str, str]) -> dict[str, pl.Series]:
    """:func:`_text` of each source column, by output name, in two parallel selects.

    Stripping a given set of characters costs five times polars' plain whitespace strip, and
    most columns have nothing to strip: a first pass asks, per column, whether any value has
    white space (Unicode White_Space, of which the stripped characters are a part) at either
    end; only those columns are stripped, the others just get empty text as null.
    """
    if not sources:
        return {}
    as_text = {name: pl.col(col).cast(pl.Utf8) for name, col in sources.items()}
    edged = frame.select(
        [(t.str.strip_chars() != t).any().alias(name) for name, t in as_text.items()]
    ).row(0, named=True)
    cleaned = frame.select(
        [
            (
                _text(pl.col(sources[name]))
                if edged[name]
                else pl.when(t == "").then(None).otherwise(t)
            ).alias(name)
            for name, t in as_text.items()
        ]
    )
    return {name: cleaned.get_column(name) for name in sources}


def _as_text_series(series: pl.Series) -> pl.Series:
    if series.dtype == pl.Utf8:
        return series
    if series.dtype == pl.Null:
        return series.cast(pl.Utf8)
    return series.cast(pl.Utf8)


def _shown(raw: pl.Series) -> pl.Series:
    """Raw values as a quarantine reason quotes them: text, cut short, ID-like values masked."""
    text = raw.cast(pl.Utf8) if raw.dtype != pl.Utf8 else raw
    text = text.str.slice(0, _MAX_SHOWN)
    id_like = text.str.count_matches("[0-9０-９]").fill_null(0) >= 14
    return (
        pl.DataFrame({"t": text, "masked": mask_ids(text), "id_like": id_like})
        .select(pl.when("id_like").then(pl.col("masked")).otherwise(pl.col("t")))
        .to_series()
    )


def canonicalize(
    frame: pl.DataFrame,
    reg: RegistryConfig,
    *,
    as_of: dt.date | None = None,
    numeric_cells: dict[str, pl.Series] | None = None,
) -> Canonical:
    """Normalise one registry's rows. Pure: returns new frames, raises on file-level problems.

    ``as_of`` is the audit's reference date (an ID's birth date after it is ``future_birth``;
    today when not given). ``numeric_cells`` (from the reader, workbooks only) marks per source
    column the cells that were numbers: only those can be Excel serials or float-damaged IDs.
    """
    numeric_cells = numeric_cells or {}
    reg = resolve_columns(frame, reg)
    check_columns(frame, reg)
    for where, col in (("key", reg.key), ("household", reg.household)):
        if col and frame.schema[col].is_nested():
            raise InputFileError(
                f"{reg.path}: column {col!r} (registries.{reg.name}.{where}) holds "
                f"{frame.schema[col]} values, not single values",
                hint="point the key at a column of plain text or numbers",
            )
    file = str(reg.path)
    rows = frame.get_column(ROW).cast(pl.Int64)
    out: dict[str, pl.Series] = {ROW: rows}
    problems: list[pl.DataFrame] = []

    def quarantine(mask: pl.Series, column: str, reason: str) -> None:
        hit = rows.filter(mask.fill_null(False))
        if hit.len():
            reasons = pl.repeat(reason, hit.len(), eager=True, dtype=pl.Utf8)
            problems.append(_entries(hit, column, reasons))

    def _entries(hit: pl.Series, column: str, reasons: pl.Series) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "registry": pl.repeat(reg.name, hit.len(), eager=True, dtype=pl.Utf8),
                "file": pl.repeat(file, hit.len(), eager=True, dtype=pl.Utf8),
                "row": hit,
                "column": pl.repeat(column, hit.len(), eager=True, dtype=pl.Utf8),
                "reason": reasons,
            },
            schema=QUARANTINE_SCHEMA,
        )

    def quarantine_values(problem: pl.Series, column: str) -> None:
        """One entry per row with a problem: the reason and the raw value, e.g.
        `unreadable date: '2015-13-01'`."""
        hit_mask = problem.is_not_null()
        if not hit_mask.any():
            return
        raw = _shown(frame.get_column(column).filter(hit_mask))
        reasons = (
            pl.DataFrame({"p": problem.filter(hit_mask), "r": raw})
            .select(pl.concat_str(pl.col("p"), pl.lit(": '"), pl.col("r"), pl.lit("'")))
            .to_series()
        )
        problems.append(_entries(rows.filter(hit_mask), column, reasons))

    # Record key: the file's own key column, or the row number.
    if reg.key:
        key = _texts(frame, {KEY: reg.key})[KEY]
        quarantine(key.is_null(), reg.key, "empty record key")
        _check_unique(key, rows, reg)
    else:
        key = rows.cast(pl.Utf8)
    out[KEY] = key.alias(KEY)

    # Every column read as plain text, cleaned in one pass (polars runs the columns in parallel).
    fields = reg.fields
    text_sources = {HOUSEHOLD: reg.household} if reg.household else {}
    for canonical in ("name", "sex", "address"):
        if canonical in fields:
            text_sources[f"{canonical}:text"] = fields[canonical]
    for canonical, column in fields.items():
        if canonical not in _IDENTITY and reg.canonical_type(canonical) not in _PARSED:
            text_sources[f"field:{canonical}"] = column
    texts = _texts(frame, text_sources)

    if reg.household:
        household = texts[HOUSEHOLD]
        quarantine(household.is_null(), reg.household, "empty household key")
        out[HOUSEHOLD] = household.alias(HOUSEHOLD)

    n = frame.height
    null_text = pl.repeat(None, n, dtype=pl.Utf8, eager=True)

    # Identity: name.
    if "name" in fields:
        raw_name = _as_text_series(frame.get_column(fields["name"]))
        names = normalize_names(raw_name)
        out["name_raw"] = texts["name:text"].alias("name_raw")
        out["name"] = names.get_column("name_norm").alias("name")
        out["name_pinyin"] = names.get_column("name_pinyin")
    else:
        out["name_raw"] = null_text.alias("name_raw")
        out["name"] = null_text.alias("name")
        out["name_pinyin"] = null_text.alias("name_pinyin")

    # Identity: citizen ID.
    if "id_number" in fields:
        raw_id = frame.get_column(fields["id_number"])
        ids = normalize_ids(raw_id, as_of=as_of, numeric=numeric_cells.get(fields["id_number"]))
        out["id_raw"] = _as_text_series(raw_id).alias("id_raw")
        for col in ("id_number", "id_status", "id_birth_date", "id_sex", "id_region"):
            out[col] = ids.get_column(col)
    else:
        out["id_raw"] = null_text.alias("id_raw")
        out["id_number"] = null_text.alias("id_number")
        out["id_status"] = pl.repeat("missing", n, eager=True, dtype=pl.Utf8).alias("id_status")
        out["id_birth_date"] = pl.repeat(None, n, dtype=pl.Date, eager=True).alias("id_birth_date")
        out["id_sex"] = null_text.alias("id_sex")
        out["id_region"] = null_text.alias("id_region")

    # Derived for linkage: an 18-character number is usable even when its check fails, its
    # date is impossible or in the future, or its province unknown (one mistyped digit gives
    # any of these); such a number is 'suspect' and may be a typo of another. A number that
    # went through a float (float_damaged) has lost digits and is never used.
    shaped = out["id_number"].str.contains(r"^[0-9]{17}[0-9X]$").fill_null(False)
    status = out["id_status"]
    doubtful = status.is_in(["malformed", "future_birth"]) & shaped
    out["id_usable"] = (status.is_in(["valid", "upgraded_15", "bad_checksum"]) | doubtful).alias(
        "id_usable"
    )
    out["id_suspect"] = ((status == "bad_checksum") | doubtful).alias("id_suspect")

    # Identity: birth date, sex, address. The department's birth date wins over the ID's only
    # when it gives the day (a month or a year says less than the ID); where both are known
    # and disagree, `birth_date_mismatch` says so and `id_birth_date` keeps the ID's.
    id_born = out["id_birth_date"]
    if "birth_date" in fields:
        column = fields["birth_date"]
        born = read_dates(frame.get_column(column), numeric=numeric_cells.get(column))
        quarantine_values(born.get_column("problem"), column)
        both = pl.DataFrame(
            {"d": born.get_column("value"), "p": born.get_column("precision"), "i": id_born}
        )
        d, p, i = pl.col("d"), pl.col("p"), pl.col("i")
        same_period = (
            pl.when(p == "day")
            .then(d == i)
            .when(p == "month")
            .then((d.dt.year() == i.dt.year()) & (d.dt.month() == i.dt.month()))
            .otherwise(d.dt.year() == i.dt.year())
        )
        chosen = both.select(
            pl.when(p == "day").then(d).otherwise(pl.coalesce(i, d)).alias("birth_date"),
            pl.when(p == "day")
            .then(p)
            .when(i.is_not_null())
            .then(pl.lit("day"))
            .otherwise(p)
            .alias("birth_date_precision"),
            (~same_period).fill_null(False).alias("birth_date_mismatch"),
        )
        for col in chosen.columns:
            out[col] = chosen.get_column(col)
    else:
        out["birth_date"] = id_born.alias("birth_date")
        out["birth_date_precision"] = (
            pl.DataFrame({"i": id_born})
            .select(pl.when(pl.col("i").is_not_null()).then(pl.lit("day")))
            .to_series()
            .alias("birth_date_precision")
        )
        out["birth_date_mismatch"] = pl.repeat(False, n, eager=True, dtype=pl.Boolean).alias(
            "birth_date_mismatch"
        )
    if "sex" in fields:
        sex_text = texts["sex:text"]
        sex = sex_text.replace_strict(_SEX_VALUES, default=None, return_dtype=pl.Utf8)
        quarantine(sex_text.is_not_null() & sex.is_null(), fields["sex"], "unreadable sex")
        out["sex"] = sex.fill_null(out["id_sex"]).alias("sex")
    else:
        out["sex"] = out["id_sex"].alias("sex")
    if "address" in fields:
        out["address"] = texts["address:text"].alias("address")
    else:
        out["address"] = null_text.alias("address")

    # A record with neither a name nor an ID cannot be linked to anyone.
    if "name" in fields or "id_number" in fields:
        no_identity = out["name"].is_null() & (out["id_status"] == "missing")
        quarantine(
            no_identity,
            fields.get("name") or fields.get("id_number") or "",
            "no name and no ID number",
        )

    # Every other mapped field, parsed by its type.
    for canonical, column in fields.items():
        if canonical in _IDENTITY:
            continue
        kind = reg.canonical_type(canonical)
        source = frame.get_column(column)
        if kind in DATE_TYPES:
            dates = read_dates(
                source, serial=kind == "excel_serial", numeric=numeric_cells.get(column)
            )
            quarantine_values(dates.get_column("problem"), column)
            values = dates.get_column("value")
            out[f"{canonical}_precision"] = dates.get_column("precision").alias(
                f"{canonical}_precision"
            )
        elif kind == "amount":
            amounts = read_amounts(source)
            quarantine_values(amounts.get_column("problem"), column)
            # Money is summed and compared to thresholds: exact decimals, not binary floats
            # (seven bills adding up to exactly 5,000.00 must not come out above 5,000).
            # read_amounts refuses what DECIMAL(20,4) cannot hold, so the cast cannot fail.
            values = amounts.get_column("value").round(4).cast(pl.Decimal(20, 4))
        elif kind == "int":
            ints = read_ints(source)
            quarantine_values(ints.get_column("problem"), column)
            values = ints.get_column("value")
        else:
            values = texts[f"field:{canonical}"]
            if canonical in reg.values:  # department codes to the canonical vocabulary
                values = values.replace(reg.values[canonical])
        out[canonical] = values.alias(canonical)
        if f"{canonical}_precision" in out:  # keep each date next to its precision
            out[f"{canonical}_precision"] = out.pop(f"{canonical}_precision")

    # The raw ID text and the ID's sex stay in raw_<registry> and in `sex`: fewer columns to store.
    del out["id_raw"], out["id_sex"]
    canonical_frame = pl.DataFrame(list(out.values()))
    if problems:
        q = pl.concat(problems).sort("row", "column")
        bad_rows = q.get_column("row").unique()
        canonical_frame = canonical_frame.filter(~pl.col(ROW).is_in(bad_rows.implode()))
    else:
        q = pl.DataFrame(schema=QUARANTINE_SCHEMA)
    return Canonical(canonical_frame, q)


def _looks_like_id(value: str) -> bool:
    digits = sum(ch.isdigit() for ch in value)
    return digits >= 14


def _check_unique(key: pl.Series, rows: pl.Series, reg: RegistryConfig) -> None:
    # The common case in one counting pass (a third of is_duplicated's cost): every key
    # distinct, nulls counted as one value. Details only when that fails.
    if key.n_unique() == key.len():
        return
    duplicated = key.is_duplicated() & key.is_not_null()
    if not duplicated.any():  # repeated nulls only: empty keys are quarantined, not duplicates
        return
    frame = pl.DataFrame({"key": key, "row": rows}).filter(duplicated)
    dupes = (
        frame.group_by("key")
        .agg(pl.col("row").sort(), pl.len().alias("n"))
        .filter(pl.col("n") > 1)
        .sort(pl.col("row").list.first())
    )
    if dupes.height:
        # A key column may hold ID numbers: never print one in full.
        examples = "; ".join(
            f"{mask_id(k) if _looks_like_id(k) else k!r} at rows {', '.join(str(r) for r in rs[:3])}"
            for k, rs in dupes.head(3).select("key", "row").iter_rows()
        )
        raise DuplicateKeyError(
            f"{reg.path}: column {reg.key!r}: {dupes.height} duplicate record key"
            f"{'s' if dupes.height > 1 else ''}, e.g. {examples}",
            hint=(
                f"record keys must be unique: fix the export, or point `registries.{reg.name}.key` "
                "at a unique column (or drop `key:` to use row numbers)"
            ),
        )
