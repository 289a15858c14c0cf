"""Turn a registry's source columns into canonical, normalised columns, in bulk.

Canonical columns of every `reg_<registry>` table:
  _row, _key, [household], name_raw, name, name_pinyin, id_number, id_status, id_birth_date,
  id_region, id_usable, id_suspect, birth_date, sex, address, then every other mapped field,
  parsed by its type (date, amount, int, text).
Rows whose required values cannot be read are returned separately as quarantine entries
(registry, file, row, column, reason); they never vanish silently.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import polars as pl

from linkaudit.config import RegistryConfig
from linkaudit.errors import DuplicateKeyError, InputFileError
from linkaudit.ingest.readers import ROW
from linkaudit.normalize import (
    mask_id,
    normalize_ids,
    normalize_names,
    parse_amounts,
    parse_dates,
    parse_ints,
)
from linkaudit.store import QUARANTINE_SCHEMA

KEY = "_key"
HOUSEHOLD = "household"
ID_STATUSES = ("valid", "upgraded_15", "bad_checksum", "malformed", "missing")
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


def _text(expr: pl.Expr) -> pl.Expr:
    """Text as a clean string: cast, strip spaces, empty to null."""
    stripped = expr.cast(pl.Utf8).str.strip_chars(" \t\r\n\u3000\u00a0")
    return pl.when(stripped == "").then(None).otherwise(stripped)


def _as_text_series(series: pl.Series) -> pl.Series:
    if series.dtype == pl.Utf8:
        return series
    if series.dtype == pl.Null:
        return series.cast(pl.Utf8)
    return series.cast(pl.Utf8)


def canonicalize(frame: pl.DataFrame, reg: RegistryConfig) -> Canonical:
    """Normalise one registry's rows. Pure: returns new frames, raises on file-level problems."""
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
            problems.append(
                pl.DataFrame(
                    {
                        "registry": pl.repeat(reg.name, hit.len(), eager=True, dtype=pl.Utf8),
                        "file": pl.repeat(file, hit.len(), eager=True, dtype=pl.Utf8),
                        "row": hit,
                        "column": pl.repeat(column, hit.len(), eager=True, dtype=pl.Utf8),
                        "reason": pl.repeat(reason, hit.len(), eager=True, dtype=pl.Utf8),
                    },
                    schema=QUARANTINE_SCHEMA,
                )
            )

    # Record key: the file's own key column, or the row number.
    if reg.key:
        key = frame.select(_text(pl.col(reg.key))).to_series()
        quarantine(key.is_null(), reg.key, "empty record key")
        _check_unique(key, rows, reg)
    else:
        key = rows.cast(pl.Utf8)
    out[KEY] = key.alias(KEY)
    if reg.household:
        household = frame.select(_text(pl.col(reg.household))).to_series()
        quarantine(household.is_null(), reg.household, "empty household key")
        out[HOUSEHOLD] = household.alias(HOUSEHOLD)

    fields = reg.fields
    n = frame.height
    null_text = pl.Series(values=[None] * n, dtype=pl.Utf8)

    # Identity: name.
    if "name" in fields:
        raw_name = _as_text_series(frame.get_column(fields["name"]))
        names = normalize_names(raw_name)
        out["name_raw"] = frame.select(_text(pl.col(fields["name"]))).to_series().alias("name_raw")
        out["name"] = names.get_column("name_norm").alias("name")
        out["name_pinyin"] = names.get_column("name_pinyin")
    else:
        out["name_raw"] = null_text.alias("name_raw")
        out["name"] = null_text.alias("name")
        out["name_pinyin"] = null_text.alias("name_pinyin")

    # Identity: citizen ID.
    if "id_number" in fields:
        raw_id = frame.get_column(fields["id_number"])
        ids = normalize_ids(raw_id)
        out["id_raw"] = _as_text_series(raw_id).alias("id_raw")
        for col in ("id_number", "id_status", "id_birth_date", "id_sex", "id_region"):
            out[col] = ids.get_column(col)
    else:
        out["id_raw"] = null_text.alias("id_raw")
        out["id_number"] = null_text.alias("id_number")
        out["id_status"] = pl.repeat("missing", n, eager=True, dtype=pl.Utf8).alias("id_status")
        out["id_birth_date"] = pl.Series("id_birth_date", [None] * n, dtype=pl.Date)
        out["id_sex"] = null_text.alias("id_sex")
        out["id_region"] = null_text.alias("id_region")

    # Derived for linkage: an 18-character number is usable even when its check fails or its
    # date is impossible (a transposition inside the birth date gives one); such a number is
    # 'suspect' and may be a typo of another.
    shaped = out["id_number"].str.contains(r"^[0-9]{17}[0-9X]$").fill_null(False)
    status = out["id_status"]
    out["id_usable"] = (
        status.is_in(["valid", "upgraded_15", "bad_checksum"]) | ((status == "malformed") & shaped)
    ).alias("id_usable")
    out["id_suspect"] = ((status == "bad_checksum") | ((status == "malformed") & shaped)).alias(
        "id_suspect"
    )

    # Identity: birth date (the field when given, else from the ID), sex, address.
    if "birth_date" in fields:
        parsed, failed = parse_dates(frame.get_column(fields["birth_date"]))
        quarantine(failed, fields["birth_date"], "unreadable date")
        out["birth_date"] = (
            pl.DataFrame({"a": parsed, "b": out["id_birth_date"]})
            .select(pl.coalesce("a", "b"))
            .to_series()
            .alias("birth_date")
        )
    else:
        out["birth_date"] = out["id_birth_date"].alias("birth_date")
    if "sex" in fields:
        sex_text = frame.select(_text(pl.col(fields["sex"]))).to_series()
        sex = sex_text.replace_strict(_SEX_VALUES, default=None, return_dtype=pl.Utf8)
        quarantine(sex_text.is_not_null() & sex.is_null(), fields["sex"], "unreadable sex")
        out["sex"] = (
            pl.DataFrame({"a": sex, "b": out["id_sex"]})
            .select(pl.coalesce("a", "b"))
            .to_series()
            .alias("sex")
        )
    else:
        out["sex"] = out["id_sex"].alias("sex")
    if "address" in fields:
        out["address"] = frame.select(_text(pl.col(fields["address"]))).to_series().alias("address")
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
        if canonical in ("name", "id_number", "birth_date", "sex", "address"):
            continue
        kind = reg.canonical_type(canonical)
        source = frame.get_column(column)
        if kind == "date":
            values, failed = parse_dates(source)
            quarantine(failed, column, "unreadable date")
        elif kind == "amount":
            values, failed = parse_amounts(source)
            quarantine(failed, column, "unreadable amount")
            # Money is summed and compared to thresholds: exact decimals, not binary floats
            # (seven bills adding up to exactly 5,000.00 must not come out above 5,000).
            values = values.round(4).cast(pl.Decimal(20, 4))
        elif kind == "int":
            values, failed = parse_ints(source)
            quarantine(failed, column, "unreadable whole number")
        else:
            values = frame.select(_text(pl.col(column))).to_series()
            if canonical in reg.values:  # department codes to the canonical vocabulary
                values = values.replace(reg.values[canonical])
        out[canonical] = values.alias(canonical)

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
    duplicated = key.is_duplicated() & key.is_not_null()
    if not duplicated.any():  # the common case, one hash pass; details only on failure
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
