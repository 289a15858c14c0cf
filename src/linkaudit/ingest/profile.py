"""What the tool sees in a department's file, before any manifest: `linkaudit inspect`.

For a file it finds the format, the encoding, the sheet and the header row (a title row above
the header is common), then profiles each column in bulk: nulls, distinct values, the share of
valid ID numbers, of readable dates and of name-like values (on the first rows only: said in the
output), the date forms seen, the top values of categorical columns, and, for the fields the
shipped rules compare with fixed terms, which values the rules know. Each column gets the
canonical field it most likely is, by its header (data/headers.yaml) or by its values. The
file is read by the readers of `load` (ingest.readers): what `inspect` shows is what `load`
would read. ID numbers are never shown unmasked.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from linkaudit.config import SUFFIX_FORMATS, RegistryConfig
from linkaudit.errors import InputFileError
from linkaudit.ingest import SAMPLE_ROWS
from linkaudit.ingest.canonical import header_key
from linkaudit.ingest.readers import ROW, decode_text, open_workbook, read_registry
from linkaudit.normalize import normalize_ids
from linkaudit.normalize.dates import read_dates
from linkaudit.privacy import mask_text
from linkaudit.vocabulary import TRUSTED_ID_STATUSES, header_synonyms, rule_vocabulary

__all__ = [
    "SAMPLE_ROWS",
    "ColumnProfile",
    "FileProfile",
    "assign_fields",
    "detect_header_row",
    "profile_file",
]

#: Rows whose values are sniffed (ID, date and name shares, date forms).
#: A column with at most this many distinct values is categorical: its top values are shown.
CATEGORICAL = 20
TOP_VALUES = 10
#: Rows looked at to find the header row.
HEADER_SCAN = 30
# 2 to 4 Chinese characters (a middle dot for minority names): what a person's name looks like.
_NAME = r"^[\u4e00-\u9fff][\u4e00-\u9fff·]{1,3}$"
_DATE_KINDS = {"birth_date", "death_date", "registered_on", "start_date", "settled_on"}
#: Value shares above which a column without a known header is taken for an ID or a name.
ID_SHARE = 0.5
NAME_SHARE = 0.8
#: Fields of a registry that say which registry it is (the rest: identity, key, household).
_NOT_TELLING = {"key", "household", "name", "id_number", "birth_date", "sex", "address"}


@dataclass
class ColumnProfile:
    header: str
    #: The canonical field it most likely is (None: none found) and why.
    field: str | None
    evidence: str
    rows: int
    nulls: int
    distinct: int
    unique: bool
    #: Shares of the sniffed non-empty values (None when the column was empty there).
    id_share: float | None
    date_share: float | None
    name_share: float | None
    date_forms: dict[str, int]
    #: Most frequent values of a categorical column (never of an ID column), masked.
    top_values: dict[str, int] | None
    #: For a field of the shipped rules' vocabulary: values it knows and values it does not.
    known_values: dict[str, int] | None = None
    unknown_values: dict[str, int] | None = None

    @property
    def null_share(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "header": self.header,
            "field": self.field,
            "evidence": self.evidence,
            "null_share": round(self.null_share, 4),
            "distinct": self.distinct,
            "unique": self.unique,
            "id_share": _round(self.id_share),
            "date_share": _round(self.date_share),
            "name_share": _round(self.name_share),
            "date_forms": self.date_forms,
            "top_values": self.top_values,
            "known_values": self.known_values,
            "unknown_values": self.unknown_values,
        }


@dataclass
class FileProfile:
    path: Path
    format: str
    encoding: str | None
    sheet: str | None
    sheets: list[str]
    header_row: int
    rows: int
    sampled_rows: int
    #: The canonical registry whose fields the file has (None: only identity columns) and why.
    registry: str | None
    registry_evidence: str
    columns: list[ColumnProfile] = field(default_factory=list)

    def column(self, header: str) -> ColumnProfile:
        return next(c for c in self.columns if c.header == header)

    def mapped(self) -> dict[str, ColumnProfile]:
        """Canonical field → column, for the columns with a likely field."""
        return {c.field: c for c in self.columns if c.field is not None}

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "format": self.format,
            "encoding": self.encoding,
            "sheet": self.sheet,
            "sheets": self.sheets,
            "header_row": self.header_row,
            "rows": self.rows,
            "sampled_rows": self.sampled_rows,
            "registry": self.registry,
            "registry_evidence": self.registry_evidence,
            "columns": [c.as_dict() for c in self.columns],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# --- layout: format, encoding, sheet, header row ---------------------------------------------


def _looks_like_data(cell: str) -> bool:
    """A cell that is a value rather than a column name: a number, a date, an ID."""
    return bool(re.fullmatch(r"[-+0-9.,:/ 年月日Xx]+", cell))


def detect_header_row(rows: list[list[str | None]]) -> int:
    """The 1-based number of the first row whose cells look like headers: at least two, and
    at least 60 % as many as the widest row, all different, and not numbers or dates. A title
    row above the header has one cell and is passed over. 1 when nothing qualifies."""
    cells = [[c.strip() for c in row if c is not None and c.strip()] for row in rows]
    widest = max((len(c) for c in cells), default=0)
    for number, row in enumerate(cells, start=1):
        if len(row) < max(2, 0.6 * widest) or len(set(row)) != len(row):
            continue
        if sum(_looks_like_data(c) for c in row) <= len(row) // 5:
            return number
    return 1


def _csv_rows(utf8: bytes, separator: str) -> list[list[str | None]]:
    head = utf8[: 1 << 20].decode("utf-8", errors="ignore").splitlines()[:HEADER_SCAN]
    return [list(r) for r in csv.reader(io.StringIO("\n".join(head)), delimiter=separator)]


def _xlsx_layout(path: Path) -> tuple[str, list[str], int]:
    """(sheet, sheets, header row): the sheet with the widest rows (a notes sheet in front of
    the data is common), and its header row."""
    reader = open_workbook(path)
    best: tuple[int, str, list[list[str | None]]] | None = None
    for name in reader.sheet_names:
        try:
            head = reader.load_sheet(
                name, header_row=None, n_rows=HEADER_SCAN, dtypes="string"
            ).to_polars()
        except Exception:  # an empty sheet cannot be loaded: it is not the data
            continue
        rows = [list(r) for r in head.iter_rows()]
        width = max((sum(1 for c in r if c not in (None, "")) for r in rows), default=0)
        if best is None or width > best[0]:
            best = (width, name, rows)
    if best is None:
        raise InputFileError(f"{path}: no sheet with data", hint="check the workbook")
    return best[1], list(reader.sheet_names), detect_header_row(best[2])


def detect_layout(path: Path) -> tuple[str, str | None, str | None, list[str], int]:
    """(format, encoding, sheet, sheets, header_row) of a file, as a manifest would give them."""
    if not path.is_file():
        raise InputFileError(f"{path}: file not found", hint="name a department's data file")
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}",
            hint=f"files ending in {', '.join(sorted(SUFFIX_FORMATS))} are read",
        )
    if fmt in ("csv", "tsv"):
        utf8, used = decode_text(path.read_bytes(), "auto", path)
        rows = _csv_rows(utf8, "\t" if fmt == "tsv" else ",")
        return fmt, used, None, [], detect_header_row(rows)
    if fmt == "jsonl":
        _, used = decode_text(path.read_bytes(), "auto", path)
        return fmt, used, None, [], 1
    if fmt == "xlsx":
        sheet, sheets, header_row = _xlsx_layout(path)
        return fmt, None, sheet, sheets, header_row
    return fmt, None, None, [], 1


# --- field assignment by header -----------------------------------------------------------


def _unitless(key: str) -> str:
    """A header without a trailing unit in brackets: 建筑面积(平方米) → 建筑面积."""
    return re.sub(r"\([^()]*\)$", "", key)


def _header_matches(headers: list[str], synonyms: tuple[str, ...]) -> str | None:
    """The first header (in synonym order) that is one of the synonyms."""
    keys = {h: header_key(h) for h in headers}
    for exact in (True, False):
        for synonym in synonyms:
            wanted = header_key(synonym)
            for h, k in keys.items():
                if (k == wanted) if exact else (_unitless(k) == _unitless(wanted)):
                    return h
    return None


def assign_fields(headers: list[str], kind: str | None) -> dict[str, tuple[str, str]]:
    """Field (and `key`, `household`) → (header, the synonym it matched), for a registry kind:
    its own fields first, then the identity fields every registry has. Each header is used once.
    """
    table = header_synonyms()
    order = list(table.get(kind, {}).items()) if kind else []
    order += list(table["any"].items())
    assigned: dict[str, tuple[str, str]] = {}
    used: set[str] = set()
    for name, synonyms in order:
        if name in assigned:
            continue
        free = [h for h in headers if h not in used]
        hit = _header_matches(free, synonyms)
        if hit is not None:
            matched = next((s for s in synonyms if header_key(s) == header_key(hit)), synonyms[0])
            assigned[name] = (hit, matched)
            used.add(hit)
    return assigned


def guess_registry(headers: list[str]) -> tuple[str | None, str]:
    """The canonical registry whose own fields the headers have most of, and why."""
    scores: list[tuple[int, str, list[str]]] = []
    for kind in header_synonyms():
        if kind == "any":
            continue
        telling = [f for f in assign_fields(headers, kind) if f not in _NOT_TELLING]
        scores.append((len(telling), kind, telling))
    best = max((s[0] for s in scores), default=0)
    if best == 0:
        return None, "no header of a canonical registry's own fields"
    winners = [s for s in scores if s[0] == best]
    _, kind, telling = winners[0]
    why = f"headers of {', '.join(telling)}"
    if len(winners) > 1:
        why += f" (as many fit {', '.join(w[1] for w in winners[1:])}: check)"
    return kind, why


# --- value profiles (bulk) --------------------------------------------------------------------


def _clean_text(column: pl.Series) -> pl.Series:
    text = column.cast(pl.Utf8) if column.dtype != pl.Utf8 else column
    stripped = text.str.strip_chars(" \t\r\n\u3000\u00a0")
    return (
        pl.DataFrame({"v": stripped})
        .select(pl.when(pl.col("v") == "").then(None).otherwise(pl.col("v")))
        .to_series()
    )


def _shares(
    sample: pl.Series, is_date_dtype: bool
) -> tuple[float | None, float | None, float | None, dict[str, int]]:
    present = sample.drop_nulls()
    n = present.len()
    if n == 0:
        return None, None, None, {}
    digits = present.str.count_matches(r"[0-9０-９]")
    if _share(digits >= 14) >= 0.3:
        statuses = normalize_ids(present).get_column("id_status")
        id_share = _share(statuses.is_in(list(TRUSTED_ID_STATUSES)))
    else:
        id_share = 0.0
    if is_date_dtype:
        date_share, forms = 1.0, {"(native dates)": n}
    elif id_share >= ID_SHARE:
        date_share, forms = 0.0, {}
    else:
        read = read_dates(present).get_column("value").is_not_null()
        date_share = _share(read)
        forms = {}
        if date_share >= 0.5:
            shapes = present.filter(read).str.replace_all(r"[0-9]", "9").value_counts(sort=True)
            forms = {str(s): int(c) for s, c in shapes.head(5).iter_rows()}
    name_share = _share(present.str.contains(_NAME))
    return id_share, date_share, name_share, forms


def _share(mask: pl.Series) -> float:
    """The share of true values in a boolean column (nulls count as false)."""
    n = mask.len()
    return int(mask.fill_null(False).sum()) / n if n else 0.0


def _counts(text: pl.Series, limit: int | None = None) -> dict[str, int]:
    counts = text.drop_nulls().value_counts(sort=True)
    rows = counts.sort(["count", counts.columns[0]], descending=[True, False]).iter_rows()
    out: dict[str, int] = {}
    for value, n in rows:
        if limit is not None and len(out) >= limit:
            break
        out[mask_text(str(value))] = int(n)
    return out


def _column_profile(
    header: str, column: pl.Series, sample: pl.Series, field_name: str | None, evidence: str
) -> ColumnProfile:
    text = _clean_text(column)
    rows = text.len()
    nulls = text.null_count()
    distinct = text.drop_nulls().n_unique()
    id_share, date_share, name_share, forms = _shares(
        _clean_text(sample), column.dtype in (pl.Date, pl.Datetime)
    )
    id_like = field_name == "id_number" or (id_share or 0.0) >= 0.1
    top = _counts(text, TOP_VALUES) if distinct <= CATEGORICAL and not id_like else None
    profile = ColumnProfile(
        header=header,
        field=field_name,
        evidence=evidence,
        rows=rows,
        nulls=nulls,
        distinct=distinct,
        unique=nulls == 0 and distinct == rows,
        id_share=id_share,
        date_share=date_share,
        name_share=name_share,
        date_forms=forms,
        top_values=top,
    )
    vocabulary = rule_vocabulary().get(field_name or "")
    if vocabulary is not None:
        counts = _counts(text)
        profile.known_values = {v: n for v, n in counts.items() if v in vocabulary}
        unknown = {v: n for v, n in counts.items() if v not in vocabulary}
        profile.unknown_values = dict(list(unknown.items())[:CATEGORICAL])
    return profile


def _percent(share: float | None) -> str:
    return "" if share is None else f"{100 * share:.1f} %"


def profile_file(path: Path, sample_rows: int = SAMPLE_ROWS) -> FileProfile:
    """Profile one department file (see the module docstring). Raises InputFileError."""
    path = Path(path)
    fmt, encoding, sheet, sheets, header_row = detect_layout(path)
    reg = RegistryConfig(
        name="inspect",
        path=path,
        format=fmt,  # type: ignore[arg-type]
        encoding=encoding or "auto",
        sheet=sheet,
        header_row=header_row,
    )
    frame = read_registry(reg).frame.drop(ROW)
    headers = list(frame.columns)
    kind, kind_why = guess_registry(headers)
    assigned = assign_fields(headers, kind)
    by_header = {h: (f, s) for f, (h, s) in assigned.items()}
    sample = frame.head(sample_rows)
    profiles: list[ColumnProfile] = []
    for header in headers:
        f, synonym = by_header.get(header, (None, ""))
        why = (
            (
                f"header {synonym}"
                if header_key(synonym) == header_key(header)
                else f"header ~ {synonym}"
            )
            if f
            else ""
        )
        profiles.append(_column_profile(header, frame[header], sample[header], f, why))
    _fields_by_values(profiles)
    for p in profiles:
        p.evidence = _with_value_evidence(p)
    return FileProfile(
        path=path,
        format=fmt,
        encoding=encoding,
        sheet=sheet,
        sheets=sheets,
        header_row=header_row,
        rows=frame.height,
        sampled_rows=min(sample_rows, frame.height),
        registry=kind,
        registry_evidence=kind_why,
        columns=profiles,
    )


def _fields_by_values(profiles: list[ColumnProfile]) -> None:
    """An ID or name column whose header is not a known synonym, found by its values."""
    taken = {p.field for p in profiles if p.field}
    free = [p for p in profiles if p.field is None]
    if "id_number" not in taken:
        best = max(free, key=lambda p: p.id_share or 0.0, default=None)
        if best is not None and (best.id_share or 0.0) >= ID_SHARE:
            best.field, best.evidence = "id_number", "values"
            free.remove(best)
    if "name" not in taken:
        names = [
            p
            for p in free
            if (p.name_share or 0.0) >= NAME_SHARE and p.distinct >= 0.2 * (p.rows - p.nulls)
        ]
        best = max(names, key=lambda p: p.name_share or 0.0, default=None)
        if best is not None:
            best.field, best.evidence = "name", "values"


def _with_value_evidence(p: ColumnProfile) -> str:
    """The header evidence with what the values say, for the fields values can confirm."""
    parts = [p.evidence] if p.evidence and p.evidence != "values" else []
    if p.field == "id_number":
        parts.append(f"{_percent(p.id_share)} valid IDs")
    elif p.field == "name":
        parts.append(f"{_percent(p.name_share)} name-like")
    elif p.field in _DATE_KINDS:
        parts.append(f"{_percent(p.date_share)} readable dates")
    elif p.unknown_values:
        parts.append(f"{len(p.unknown_values)} values unknown to the rules")
    return "; ".join(parts)
