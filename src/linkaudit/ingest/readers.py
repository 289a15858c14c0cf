"""Read a registry file into a polars DataFrame, whatever its format and encoding.

Every reader returns the source columns (text for CSV/TSV/XLSX, native types for Parquet and
JSON lines) plus `_row`, the row number a person would look up in the file: for CSV/TSV/XLSX the
spreadsheet row (header row counted), for Parquet the 1-based record number, for JSON lines the
line number. Inputs are only ever opened for reading.
"""

from __future__ import annotations

import csv
import hashlib
import io
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from linkaudit.config import DATE_TYPES, RegistryConfig
from linkaudit.errors import InputFileError

ROW = "_row"

# Decoding is tried in this order when `encoding: auto`. GB18030 is a superset of GBK and GB2312.
_AUTO_ENCODINGS = ("utf-8", "gb18030")


@dataclass(frozen=True)
class ReadResult:
    frame: pl.DataFrame
    encoding: str | None
    checksum: str
    #: Workbooks only: per source column that may hold dates or ID numbers, which cells were
    #: numbers in the workbook (the frame holds their text). Only such a number can be an Excel
    #: serial, and only such a number can have lost an ID's digits in a float.
    numeric_cells: dict[str, pl.Series] = field(default_factory=dict)


def file_checksum(path: Path) -> str:
    """SHA-256 of a file's bytes (to tell changed inputs from unchanged ones)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode_text(data: bytes, encoding: str, path: Path) -> tuple[bytes, str]:
    """Check and convert file bytes to UTF-8, returning (utf-8 bytes, encoding used).

    Undecodable bytes are an error naming the row, never replaced silently.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        if encoding in ("auto", "utf-8", "utf-8-sig"):
            encoding = "utf-8-sig"
    candidates = _AUTO_ENCODINGS if encoding == "auto" else (encoding,)
    first_error: UnicodeDecodeError | None = None
    for candidate in candidates:
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError as exc:
            first_error = first_error or exc
            continue
        if candidate in ("utf-8", "utf-8-sig"):
            # Already UTF-8: hand polars the original bytes, minus a BOM, without re-encoding.
            return (data[3:] if candidate == "utf-8-sig" else data), candidate
        return text.encode("utf-8"), candidate
    assert first_error is not None
    line = _line_of_offset(data, first_error.start)
    tried = " or ".join(candidates)
    raise InputFileError(
        f"{path}: row {line}: bytes {data[first_error.start : first_error.start + 4]!r} "
        f"cannot be decoded as {tried}",
        hint=(
            "set `encoding:` for this registry in the manifest (utf-8, gbk or gb18030), "
            "or re-export the file as UTF-8"
        ),
    )


def _read_delimited(path: Path, reg: RegistryConfig, separator: str) -> ReadResult:
    data = path.read_bytes()
    checksum = hashlib.sha256(data).hexdigest()
    if not data.strip():
        raise InputFileError(
            f"{path}: the file is empty",
            hint="check the export; a registry needs a header and rows",
        )
    utf8, used = decode_text(data, reg.encoding, path)
    del data
    skip = reg.header_row - 1
    try:
        frame = pl.read_csv(
            utf8,
            separator=separator,
            infer_schema=False,
            skip_rows=skip,
            has_header=True,
            raise_if_empty=True,
        )
    except pl.exceptions.NoDataError:
        raise InputFileError(
            f"{path}: no header row found (header_row: {reg.header_row})",
            hint="check `header_row:` in the manifest",
        ) from None
    except pl.exceptions.ComputeError as exc:
        detail = str(exc).strip().splitlines()[0]
        where = _find_ragged_row(utf8, separator, reg.header_row)
        raise InputFileError(
            f"{path}: {where}malformed {'TSV' if separator == chr(9) else 'CSV'}: {detail}",
            hint="check the delimiter (`delimiter:` in the manifest) and quoting of that row",
        ) from None
    _check_header(utf8, separator, reg.header_row, path)
    frame = _strip_header_names(frame)
    frame = frame.with_row_index(ROW, offset=reg.header_row + 1)
    return ReadResult(frame, used, checksum)


def _check_header(utf8: bytes, separator: str, header_row: int, path: Path) -> None:
    """Two columns with one name would be told apart by polars' renaming: refuse instead."""
    lines = utf8.split(b"\n", header_row)
    if len(lines) < header_row:
        return
    header_line = lines[header_row - 1].decode("utf-8", errors="replace").rstrip("\r")
    names = [
        n.strip().lstrip("\ufeff") for n in next(csv.reader([header_line], delimiter=separator), [])
    ]
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise InputFileError(
                f"{path}: row {header_row}: column {name!r} appears twice in the header",
                hint="rename one of the columns in the export, or set `header_row:`",
            )
        seen.add(name)


def _find_ragged_row(utf8: bytes, separator: str, header_row: int) -> str:
    """Only on the error path: find the first row whose field count differs from the header's."""
    reader = csv.reader(io.StringIO(utf8.decode("utf-8")), delimiter=separator)
    expected = None
    for number, fields in enumerate(reader, start=1):
        if number < header_row:
            continue
        if expected is None:
            expected = len(fields)
        elif fields and len(fields) != expected:
            return f"row {reader.line_num}: {len(fields)} fields where the header has {expected}: "
    return ""


def _strip_header_names(frame: pl.DataFrame) -> pl.DataFrame:
    renames = {
        c: c.strip().lstrip("\ufeff") for c in frame.columns if c != c.strip().lstrip("\ufeff")
    }
    return frame.rename(renames) if renames else frame


def open_workbook(path: Path) -> Any:
    """A fastexcel reader for an xlsx file, or an InputFileError naming the file."""
    import fastexcel

    try:
        return fastexcel.read_excel(str(path))
    except Exception as exc:  # fastexcel raises its own error kinds for non-xlsx content
        raise InputFileError(
            f"{path}: not a readable Excel workbook ({type(exc).__name__})",
            hint="save the file as .xlsx, or set `format:` to its real format",
        ) from None


def _read_xlsx(path: Path, reg: RegistryConfig) -> ReadResult:

    checksum = file_checksum(path)
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty", hint="check the export")
    reader = open_workbook(path)
    sheets = reader.sheet_names
    sheet = reg.sheet if reg.sheet is not None else 0
    if isinstance(sheet, str) and sheet not in sheets:
        raise InputFileError(
            f"{path}: sheet {sheet!r} not found; sheets are: {', '.join(sheets)}",
            hint="set `sheet:` in the manifest to one of these",
        )
    if isinstance(sheet, int) and not 0 <= sheet < len(sheets):
        raise InputFileError(f"{path}: sheet index {sheet} out of range ({len(sheets)} sheets)")
    try:
        loaded = reader.load_sheet(sheet, header_row=reg.header_row - 1, dtypes="string")
        frame = loaded.to_polars()
    except Exception as exc:
        raise InputFileError(
            f"{path}: sheet {sheet!r} cannot be read with header_row {reg.header_row}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            hint="check `sheet:` and `header_row:` in the manifest",
        ) from None
    numeric = _numeric_cells(reader, sheet, reg, frame)
    frame = _strip_header_names(frame)
    frame = frame.with_row_index(ROW, offset=reg.header_row + 1)
    return ReadResult(frame, None, checksum, numeric)


# How fastexcel writes a numeric cell as text (a boolean cell reads 'true'/'false').
_NUMBER_TEXT = r"^-?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?$"


def _typed_columns(reg: RegistryConfig) -> set[str]:
    """Source columns whose cell type matters: the ID number and every date field."""
    wanted = {"id_number", "birth_date"}
    return {
        column
        for canonical, column in reg.fields.items()
        if canonical in wanted or reg.canonical_type(canonical) in DATE_TYPES
    }


def _loose(name: str) -> str:
    return "".join(unicodedata.normalize("NFKC", name.lstrip("\ufeff")).split())


def _numeric_cells(
    reader: object, sheet: str | int, reg: RegistryConfig, frame: pl.DataFrame
) -> dict[str, pl.Series]:
    """Which cells of the ID and date columns were numbers in the workbook.

    Read as strings a numeric cell and a text cell look alike ('42064'). Read as booleans,
    fastexcel converts numbers (and booleans) and leaves text and date cells null: so a cell
    is numeric where the boolean read has a value and the text read looks like a number."""
    # Matched loosely (full-width forms folded, spaces dropped), as manifest column names are.
    wanted = {_loose(c) for c in _typed_columns(reg)}
    indices = [i for i, c in enumerate(frame.columns) if _loose(c) in wanted]
    if not indices:
        return {}
    try:
        typed = reader.load_sheet(  # type: ignore[attr-defined]
            sheet, header_row=reg.header_row - 1, dtypes="boolean", use_columns=indices
        ).to_polars()
    except Exception as exc:
        raise InputFileError(
            f"{reg.path}: sheet {sheet!r}: the cell types cannot be read "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
            hint="save the workbook again as .xlsx, or export the sheet as CSV",
        ) from None
    result: dict[str, pl.Series] = {}
    for index, typed_column in zip(indices, typed.columns, strict=True):
        name = frame.columns[index]
        text = frame.get_column(name)
        numeric = typed.get_column(typed_column).is_not_null() & text.str.contains(_NUMBER_TEXT)
        result[name.strip().lstrip("\ufeff")] = numeric.fill_null(False).alias(name)
    return result


def _read_parquet(path: Path) -> ReadResult:
    checksum = file_checksum(path)
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty", hint="check the export")
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:
        raise InputFileError(
            f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})",
            hint="check the export, or set `format:` to its real format",
        ) from None
    return ReadResult(frame.with_row_index(ROW, offset=1), None, checksum)


def _read_jsonl(path: Path, reg: RegistryConfig) -> ReadResult:
    data = path.read_bytes()
    checksum = hashlib.sha256(data).hexdigest()
    if not data.strip():
        raise InputFileError(f"{path}: the file is empty", hint="check the export")
    utf8, used = decode_text(data, reg.encoding, path)
    lines = utf8.decode("utf-8").splitlines()
    # Blank lines are allowed (and skipped); row numbers stay the file's line numbers.
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    try:
        frame = pl.read_ndjson(
            io.BytesIO("\n".join(line for _, line in numbered).encode("utf-8")),
            infer_schema_length=None,
        )
    except Exception as exc:
        raise InputFileError(
            f"{path}: {_bad_json_line(numbered)}malformed JSON lines: {str(exc).splitlines()[0]}",
            hint="each line must be one JSON object",
        ) from None
    rows = pl.Series(ROW, [n for n, _ in numbered], dtype=pl.UInt32)
    frame = frame.with_columns(rows).select([ROW, *frame.columns])
    return ReadResult(frame, used, checksum)


def _bad_json_line(numbered: list[tuple[int, str]]) -> str:
    """Only on the error path: the first line that is not a JSON object."""
    import json

    for number, line in numbered:
        try:
            value = json.loads(line)
        except ValueError:
            return f"row {number}: not valid JSON; "
        if not isinstance(value, dict):
            return f"row {number}: not a JSON object; "
    return ""


def _fingerprint(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def read_registry(reg: RegistryConfig) -> ReadResult:
    """Read one registry's file. Raises InputFileError with file and row on bad input.

    The file must be the same before and after the read (identity, size, times, and the
    checksum of what was read against the file's checksum afterwards): a dump being rewritten
    while it is read would otherwise load half of it without a word."""
    path = reg.path
    if not path.exists():
        raise InputFileError(
            f"{path}: file not found (registries.{reg.name}.path)",
            hint="fix `path:` in the manifest; paths are relative to the manifest",
        )
    if path.is_dir():
        raise InputFileError(f"{path}: is a folder, not a file (registries.{reg.name}.path)")
    before = _fingerprint(path)
    result = _read_format(path, reg)
    if _fingerprint(path) != before or file_checksum(path) != result.checksum:
        raise InputFileError(
            f"{path}: the file changed while it was being read (registries.{reg.name})",
            hint="wait until the department's export has finished writing, then run again; "
            "nothing was loaded from it",
        )
    if result.frame.height == 0:
        raise InputFileError(
            f"{path}: the file has a header but no data rows",
            hint="check the export, or remove this registry from the manifest",
        )
    return result


#: The reader of each format (config.FORMATS): a new format is one function and one entry
#: here (and its suffixes in config.SUFFIX_FORMATS); tests/test_readers.py keeps them in step.
READERS: dict[str, Callable[[Path, RegistryConfig], ReadResult]] = {
    "csv": lambda path, reg: _read_delimited(path, reg, reg.delimiter or ","),
    "tsv": lambda path, reg: _read_delimited(path, reg, reg.delimiter or "\t"),
    "xlsx": _read_xlsx,
    "parquet": lambda path, reg: _read_parquet(path),
    "jsonl": _read_jsonl,
}


def _read_format(path: Path, reg: RegistryConfig) -> ReadResult:
    reader = READERS.get(reg.resolved_format)
    if reader is None:  # config validation rejects this earlier
        raise InputFileError(f"{path}: unsupported format {reg.resolved_format!r}")
    return reader(path, reg)


def read_small_csv(path: Path, what: str) -> pl.DataFrame:
    """A small side file (exemptions, returned outcomes, a previous run's exceptions): text
    columns, encoding detected, every failure a clear error naming the file."""
    if not path.exists():
        raise InputFileError(f"{path}: file not found ({what})")
    if not path.is_file():
        raise InputFileError(f"{path}: is a folder, not a file ({what})")
    data = path.read_bytes()
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise InputFileError(f"{path}: the file is empty ({what})")
    utf8, _ = decode_text(data, "auto", path)
    try:
        frame = pl.read_csv(utf8, infer_schema=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise InputFileError(
            f"{path}: {_find_ragged_row(utf8, ',', 1)}not a readable CSV ({what}): "
            f"{str(exc).strip().splitlines()[0]}"
        ) from None
    return _strip_header_names(frame)
