"""A case sheet's rows as worksheet XML, built column-wise by polars instead of one xlsxwriter
call per cell (81,595 calls took 2.2 s at scale 1; 406,000 took 4.4 s at scale 5).

xlsxwriter still writes every part of the workbook — formats, column widths, the header row,
validation, protection, print settings — with the case sheets holding their header row only.
insert_rows then adds the data rows to each case sheet's <sheetData> while copying the package
once more, one polars pass per 10,000 rows of all its case sheets. The rows are what
xlsxwriter writes in constant_memory mode for the same write_string / write_blank / set_row
calls (tests/test_report.py compares the two, cell for cell, style for style): in-line strings
(where a workbook xlsxwriter writes in memory has shared ones, which Excel shows alike); text over Excel's 32,767 UTF-16 units cut; control
characters as _xHHHH_ (a literal _xHHHH_ as _x005F_xHHHH_); xml:space="preserve" on text with
leading or trailing white space; a styled blank in the cadre's columns when empty; row heights
in xlsxwriter's pixel rounding. One difference, on purpose: text that starts with '<r>' and
ends with '</r>' is escaped like any other (xlsxwriter would copy it into the XML unescaped,
as rich text).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import polars as pl
from xlsxwriter.utility import xl_col_to_name

__all__ = ["SheetRows", "insert_rows", "row_attributes", "rows_xml"]

#: Excel's longest cell text, in UTF-16 units.
XLS_STRMAX = 32_767
#: Rows turned into XML per polars pass: bounded memory on a sheet of a million rows, and
#: small enough for the next piece to be built while this one is compressed.
CHUNK_ROWS = 10_000
#: zlib level of the package: at scale 5 (24,201 cases) level 5 takes 0.15 s less CPU than
#: the default 6 for a workbook 2.4 % larger (6.02 MB against 5.88 MB); level 1 would save
#: 0.4 s for one 25 % larger.
COMPRESS_LEVEL = 5

_LEVEL_ATTR = "compress_level" if hasattr(zipfile.ZipInfo(), "compress_level") else "_compresslevel"

T = TypeVar("T")

_CONTROL = [*range(0x00, 0x09), *range(0x0B, 0x20), 0xFFFE, 0xFFFF]
_CONTROL_RE = "[" + "".join(f"\\x{{{c:X}}}" for c in _CONTROL) + "]"
_COL_STYLE = re.compile(rb'<col min="(\d+)" max="(\d+)"[^>]*? style="(\d+)"')


@dataclass(frozen=True)
class SheetRows:
    """The data rows of one case sheet, for insert_rows.

    index: the worksheet's position in the workbook (its part is sheet{index + 1}.xml);
    frame: the cells' text, one column per sheet column, in order (null or '' = no cell);
    blank_columns: the columns that get a styled blank cell when empty (the cadre's);
    lines: printed lines per row (a row of more than one gets its height)."""

    index: int
    frame: pl.DataFrame
    blank_columns: frozenset[int]
    lines: pl.Series
    line_height: float


def _utf16_truncate(text: str) -> str:
    length = 0
    for i, ch in enumerate(text):
        length += 2 if ord(ch) > 0xFFFF else 1
        if length > XLS_STRMAX:
            return text[:i]
    return text


def _truncated(frame: pl.DataFrame) -> pl.DataFrame:
    """Text past Excel's limit cut as xlsxwriter cuts it. Only text of more than half the
    limit in characters can pass it; those few cells are cut in Python."""
    out = []
    for name in frame.columns:
        s = frame.get_column(name)
        long = s.str.len_chars() > XLS_STRMAX // 2
        if long.any():
            idx = long.arg_true()
            s = s.scatter(idx, [_utf16_truncate(v) for v in s.gather(idx).to_list()])
        out.append(s)
    return pl.DataFrame(out)


def _needs(frame: pl.DataFrame) -> list[tuple[bool, bool, bool, bool]]:
    """Per column, in one pass: whether any cell holds a literal _xHHHH_, a control
    character, a character XML escapes, or white space at either end. Most columns hold
    none, and their cells go into the XML as they are."""
    probes = {
        "x": r"_x[0-9a-fA-F]{4}_",
        "ctl": _CONTROL_RE,
        "xml": "[&<>]",
        "ws": r"^\s|\s$",
    }
    row = frame.select(
        pl.col(name).str.contains(p).any().alias(f"{i}{k}")
        for i, name in enumerate(frame.columns)
        for k, p in probes.items()
    ).row(0)
    return [tuple(bool(v) for v in row[i * 4 : i * 4 + 4]) for i in range(frame.width)]  # type: ignore[misc]


def _text(col: str, x: bool, ctl: bool, xml: bool, ws: bool) -> tuple[pl.Expr, pl.Expr | None]:
    """A cell's text as it goes into <t>, and whether it needs xml:space="preserve" (None:
    no cell of the column does), escaped as xlsxwriter escapes it, only as far as needed."""
    e = pl.col(col)
    if x:  # a literal escape is escaped itself, so that Excel shows it as written
        e = e.str.replace_all(r"(_x[0-9a-fA-F]{4}_)", "_x005F${1}")
    if ctl:
        for c in _CONTROL:
            e = e.str.replace_all(chr(c), f"_x{c:04X}_", literal=True)
    preserve = e.str.contains(r"^\s|\s$") if ws else None
    if xml:
        e = (
            e.str.replace_all("&", "&amp;", literal=True)
            .str.replace_all("<", "&lt;", literal=True)
            .str.replace_all(">", "&gt;", literal=True)
        )
    return e, preserve


def row_attributes(lines: int, line_height: float) -> str:
    """The <row> attributes of a row of `lines` printed lines, as set_row(height) writes them:
    the height rounded to whole pixels, then back to points."""
    if lines <= 1:
        return ""
    pixels = int((line_height * lines + 2) * 4.0 / 3.0 + 0.5)
    return f' ht="{pixels * 0.75:.16g}" customHeight="1"'


def _row_expr(
    names: list[str],
    styles: list[int],
    blank_columns: frozenset[int],
    needs: list[tuple[bool, bool, bool, bool]],
) -> pl.Expr:
    """One <row> element per frame row, from its cells and the columns _r (the row number as
    text) and _ht (its height attributes)."""
    r = pl.col("_r")
    cells = []
    for c, name in enumerate(names):
        letter, style = xl_col_to_name(c), styles[c]
        text, preserve = _text(name, *needs[c])
        space = (
            pl.lit("")
            if preserve is None
            else preserve.replace_strict(
                {True: ' xml:space="preserve"', False: ""}, return_dtype=pl.Utf8
            )
        )
        # An empty cell is null here, and a null makes the whole concat_str null.
        present = pl.when(pl.col(name) != "").then(text)
        cell = pl.concat_str(
            pl.lit(f'<c r="{letter}'),
            r,
            pl.lit(f'" s="{style}" t="inlineStr"><is><t'),
            space,
            pl.lit(">"),
            present,
            pl.lit("</t></is></c>"),
        )
        none = (
            pl.concat_str(pl.lit(f'<c r="{letter}'), r, pl.lit(f'" s="{style}"/>'))
            if c in blank_columns
            else pl.lit("")
        )
        cells.append(cell.fill_null(none))
    return pl.concat_str(
        pl.lit('<row r="'), r, pl.lit('"'), pl.col("_ht"), pl.lit(">"), *cells, pl.lit("</row>")
    )


def _all_rows(sheets: list[SheetRows]) -> pl.DataFrame:
    """Every sheet's rows in one frame, in sheet order: _sheet (its position in `sheets`), _r
    (the worksheet row number, 2 for the first row under the header) and _ht."""
    frame = _truncated(pl.concat([s.frame.cast(pl.Utf8) for s in sheets]))
    lines = pl.concat([s.lines for s in sheets])
    height = sheets[0].line_height
    attrs = {n: row_attributes(n, height) for n in lines.unique().to_list()}
    sizes = pl.DataFrame({"k": range(len(sheets)), "n": [s.frame.height for s in sheets]})
    sheet = sizes.select(pl.col("k").repeat_by("n").explode().cast(pl.Int32)).to_series()
    return frame.with_columns(
        sheet.alias("_sheet"),
        lines.replace_strict(attrs, return_dtype=pl.Utf8).alias("_ht"),
    ).with_columns((pl.int_range(pl.len()).over("_sheet") + 2).cast(pl.Utf8).alias("_r"))


def rows_xml(sheets: list[SheetRows], styles: list[int]) -> Iterator[tuple[int, str]]:
    """The <row> elements of every sheet's rows, in pieces of at most CHUNK_ROWS rows: (the
    sheet's position in `sheets`, its next rows), sheet after sheet. One polars pass per
    piece however many sheets it spans (a township's workbook has a dozen small ones)."""
    sheets = [s for s in sheets if s.frame.height]
    if not sheets:
        return
    names = sheets[0].frame.columns
    if any(s.frame.columns != names for s in sheets):
        raise RuntimeError("case sheets with different columns")
    frame = _all_rows(sheets)
    row = _row_expr(names, styles, sheets[0].blank_columns, _needs(frame.select(names)))
    for start in range(0, frame.height, CHUNK_ROWS):
        pieces = (
            frame.slice(start, CHUNK_ROWS)
            .group_by("_sheet", maintain_order=True)
            .agg(row.str.join(""))
        )
        yield from pieces.iter_rows()


def _column_styles(xml: bytes, columns: int) -> list[int]:
    """Each column's style index, from the sheet's <col> elements (set_column's format: the
    format every data cell of the column is written with)."""
    styles: dict[int, int] = {}
    for lo, hi, style in _COL_STYLE.findall(xml):
        for c in range(int(lo), int(hi) + 1):
            styles[c - 1] = int(style)
    missing = [c for c in range(columns) if c not in styles]
    if missing:
        raise RuntimeError(f"case sheet without a style for columns {missing}")
    return [styles[c] for c in range(columns)]


def _head_tail(xml: bytes, rows: SheetRows) -> tuple[bytes, bytes]:
    """The sheet's XML before and after its data rows: xlsxwriter wrote the header row only,
    and its range grows to the last data row."""
    last = xl_col_to_name(rows.frame.width - 1)
    head, sep, tail = xml.partition(b"</sheetData>")
    old = f'<dimension ref="A1:{last}1"/>'.encode()
    if not sep or head.count(old) != 1:
        raise RuntimeError(f"sheet{rows.index + 1}.xml is not a case sheet's header row")
    new = f'<dimension ref="A1:{last}{rows.frame.height + 1}"/>'.encode()
    return head.replace(old, new), sep + tail


def _parts(sheets: list[SheetRows], xml: list[bytes]) -> Iterator[bytes | None]:
    """Each sheet's XML in turn, in pieces, None after each."""
    styles = _column_styles(xml[0], sheets[0].frame.width)
    if any(_column_styles(x, sheets[0].frame.width) != styles for x in xml[1:]):
        raise RuntimeError("case sheets with different column styles")
    ends = [_head_tail(x, s) for x, s in zip(xml, sheets, strict=True)]
    current = -1
    for k, text in rows_xml(sheets, styles):
        while current < k:  # (every sheet here has rows: none is skipped)
            if current >= 0:
                yield ends[current][1]
                yield None
            current += 1
            yield ends[current][0]
        yield text.encode("utf-8")
    if current >= 0:
        yield ends[current][1]
        yield None


_END = object()


def _ahead(items: Iterator[T]) -> Iterator[T]:
    """`items`, each made in a worker thread while the one before is used: the next rows are
    built by polars while zlib compresses these (both let go of the GIL)."""
    with ThreadPoolExecutor(1, thread_name_prefix="sheet-rows") as pool:
        pending = pool.submit(next, items, _END)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = pool.submit(next, items, _END)
            yield item  # type: ignore[misc]


def insert_rows(source: Path, target: Path, sheets: list[SheetRows]) -> None:
    """Copy the workbook `source` to `target` with each sheet's data rows after its header row.
    Every other part is copied as it is, in the same order, with the same zip attributes."""
    by_part = {f"xl/worksheets/sheet{s.index + 1}.xml": s for s in sheets if s.frame.height}
    with (
        zipfile.ZipFile(source) as zin,
        zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zout,
    ):
        infos = zin.infolist()
        missing = sorted(set(by_part) - {i.filename for i in infos})
        if missing:
            raise RuntimeError(f"workbook without the parts {missing}")
        filled = [i for i in infos if i.filename in by_part]
        made = _ahead(_parts([by_part[i.filename] for i in filled], [zin.read(i) for i in filled]))
        for info in infos:
            out = zipfile.ZipInfo(info.filename, info.date_time)
            out.compress_type = info.compress_type
            out.external_attr = info.external_attr
            out.create_system = info.create_system
            # A ZipInfo's own level is used, not the ZipFile's (3.13 names it compress_level).
            setattr(out, _LEVEL_ATTR, COMPRESS_LEVEL)
            rows = by_part.get(info.filename)
            if rows is None:
                zout.writestr(out, zin.read(info))
                continue
            # More than 2 GiB needs a ZIP64 header, decided before the first byte is written.
            big = rows.frame.estimated_size() + rows.frame.height * rows.frame.width * 64
            with zout.open(out, "w", force_zip64=big > 2**30) as f:
                for chunk in made:
                    if chunk is None:
                        break
                    f.write(chunk)
