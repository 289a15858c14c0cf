"""The workbook a township cadre prints, takes to the villages and fills in.

Each case sheet leads with who and where (乡镇, 行政村, 户编号, 姓名, masked 证件号码), what the
data says (问题, 证据 with Chinese field labels, 关联把握), then the two columns the cadre fills
(核实结果 from a drop-down, 核实说明). The technical columns that map a returned row back to its
case (疑点编号, 运行编号, 规则 ...) come last, narrow and in small type; the sheet is protected so
that only the two outcome columns can be edited. Every sheet prints on A4 landscape, one page
wide, the header row repeated, the disclaimer and page numbers in the footer.

The summary sheet counts flagged cases by rule (rows) and township (columns, or villages in a
township's own workbook) with totals, then lists the rules not applied and why.

Every text cell is written as a string (never evaluated as a formula) and ID-shaped text is
masked in every sheet. The case rows are built in bulk (report.sheet_xml) and added to the
package xlsxwriter writes; xlsxwriter works in memory, or, for a long quarantine sheet, with
constant-memory temp files in the output's private temp folder (report.atomic.atomic_path).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from linkaudit.audit.rules import Rule
from linkaudit.privacy import mask_frame, mask_text
from linkaudit.report.atomic import atomic_path
from linkaudit.report.columns import DISCLAIMER, EXCEPTION_COLUMNS
from linkaudit.report.labels import (
    CONFIDENCE_BANDS,
    OUTCOME_ZH,
    SCOPE_ZH,
    SEVERITY_ZH,
    STATUS_ZH,
)
from linkaudit.report.sheet_xml import SheetRows, insert_rows

#: Excel's sheet limit is 1,048,576 rows: the header plus this many rows of cases.
MAX_DATA_ROWS = 1_048_575
#: Up to this many quarantined rows, xlsxwriter writes the workbook in memory.
IN_MEMORY_ROWS = 50_000

DISCLAIMER_ZH = DISCLAIMER.split(" Flags are")[0]


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    min_width: float
    max_width: float
    kind: str = "lead"  # lead | fill (the cadre writes it) | tech (maps the row back)
    wrap: bool = False


#: The case sheets' columns, in order.
CASE_SHEET_COLUMNS = (
    Column("township", "乡镇", 6, 12),
    Column("village", "行政村", 6, 12),
    Column("household_key", "户编号", 8, 12),
    Column("name", "姓名", 6, 14, wrap=True),
    Column("id_number_masked", "证件号码", 10, 19, wrap=True),
    Column("problem", "问题", 10, 14, wrap=True),
    Column("evidence_zh", "证据", 24, 44, wrap=True),
    Column("confidence", "关联把握", 8, 10),
    Column("outcome", "核实结果", 9, 9, kind="fill"),
    Column("reason", "核实说明", 16, 16, kind="fill", wrap=True),
    Column("person_key", "人员编号", 6, 9, kind="tech", wrap=True),
    Column("status", "状态", 4, 4, kind="tech"),
    Column("severity", "类别", 4, 6, kind="tech", wrap=True),
    Column("scope", "范围", 4, 4, kind="tech"),
    Column("rule_id", "规则", 6, 9, kind="tech", wrap=True),
    Column("case_id", "疑点编号", 6, 9, kind="tech", wrap=True),
    Column("run_id", "运行编号", 6, 9, kind="tech", wrap=True),
)
#: Points per printed line of a case row (10-point type), for row heights.
LINE_HEIGHT = 13.5
#: The column of `shown` holding each row's printed lines (see row_lines).
_LINES = "_lines"
CASE_SHEET_HEADERS = [c.header for c in CASE_SHEET_COLUMNS]
QUARANTINE_HEADERS = ["登记册 registry", "文件 file", "行 row", "列 column", "原因 reason"]


def confidence_expr(col: str = "match_probability") -> pl.Expr:
    """labels.confidence_band, vectorised: '很高 99.9%'; '' when the flag needs no link."""
    p = pl.col(col).cast(pl.Float64, strict=False)
    word: pl.Expr = pl.lit(CONFIDENCE_BANDS[-1][1])
    for bound, w in reversed(CONFIDENCE_BANDS[:-1]):
        word = pl.when(p >= bound).then(pl.lit(w)).otherwise(word)
    pct = (p * 1000).floor() / 10  # never rounded up to 100%
    text = pl.when(p >= 1).then(pl.lit("100")).otherwise(pct.round(1).cast(pl.Utf8))
    return pl.when(p.is_null()).then(None).otherwise(word + " " + text + "%")


def case_sheet_frame(exceptions: pl.DataFrame, rules: list[Rule]) -> pl.DataFrame:
    """The exceptions as the case sheets show them, column for column, masked."""
    titles = {r.id: r.title.zh for r in rules}
    frame = exceptions
    if "evidence_zh" not in frame.columns:
        frame = frame.with_columns(pl.col("evidence").alias("evidence_zh"))
    frame = frame.with_columns(
        pl.col("rule_id").replace_strict(titles, default=pl.col("rule_id")).alias("problem"),
        pl.col("evidence_zh").fill_null(pl.col("evidence")),
        confidence_expr().alias("confidence"),
        pl.col("name").str.replace_all(";", "、"),
        pl.col("id_number_masked").str.replace_all(";", "\n"),
        pl.col("person_key").str.replace_all(";", "\n"),
        pl.col("status").replace(STATUS_ZH),
        pl.col("severity").replace(SEVERITY_ZH),
        pl.col("scope").replace(SCOPE_ZH),
        pl.col("outcome").replace(OUTCOME_ZH),
    )
    return mask_frame(frame.select([c.key for c in CASE_SHEET_COLUMNS]).cast(pl.Utf8))


def display_widths(frame: pl.DataFrame) -> dict[str, float]:
    """Each text column's widest line in Excel width units (a CJK character counts two)."""
    if frame.height == 0:
        return {}
    exprs = []
    for name in frame.columns:
        lines = (
            pl.col(name)
            .cast(pl.Utf8)
            .str.split("\n")
            .list.eval((pl.element().str.len_chars() + pl.element().str.len_bytes()) / 2)
        )
        exprs.append(lines.list.max().max().alias(name))
    row = frame.select(exprs).row(0, named=True)
    return {k: float(v or 0) for k, v in row.items()}


class _Formats:
    def __init__(self, wb: Any) -> None:
        base = {"border": 1, "valign": "top", "font_size": 10}
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.bold = wb.add_format({"bold": True})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        self.header = wb.add_format(
            {**base, "bold": True, "bg_color": "#DDEBF7", "text_wrap": True, "valign": "vcenter"}
        )
        self.header_fill = wb.add_format(
            {**base, "bold": True, "bg_color": "#FFF2CC", "text_wrap": True, "valign": "vcenter"}
        )
        self.header_tech = wb.add_format(
            {**base, "bold": True, "bg_color": "#EDEDED", "font_size": 8, "text_wrap": True}
        )
        self.cell = wb.add_format(base)
        self.cell_wrap = wb.add_format({**base, "text_wrap": True})
        self.fill = wb.add_format({**base, "locked": False, "bg_color": "#FFFDF2"})
        self.fill_wrap = wb.add_format(
            {**base, "locked": False, "bg_color": "#FFFDF2", "text_wrap": True}
        )
        self.tech = wb.add_format({**base, "font_size": 7, "font_color": "#595959"})
        self.tech_wrap = wb.add_format(
            {**base, "font_size": 7, "font_color": "#595959", "text_wrap": True}
        )
        self.number = wb.add_format({**base, "num_format": "#,##0"})
        self.total = wb.add_format({**base, "bold": True, "num_format": "#,##0"})

    def for_column(self, col: Column) -> Any:
        if col.kind == "fill":
            return self.fill_wrap if col.wrap else self.fill
        if col.kind == "tech":
            return self.tech_wrap if col.wrap else self.tech
        return self.cell_wrap if col.wrap else self.cell

    def for_header(self, col: Column) -> Any:
        return {"fill": self.header_fill, "tech": self.header_tech}.get(col.kind, self.header)


def _print_setup(sheet: Any, header_text: str) -> None:
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)  # one page wide, as many long as needed
    sheet.repeat_rows(0)
    sheet.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.7)
    sheet.set_header(f"&L&9{_header_escape(header_text)}&R&9&A")
    sheet.set_footer(f"&L&8{_header_escape(DISCLAIMER_ZH)}&R&9第 &P 页，共 &N 页")


def _header_escape(text: str) -> str:
    return text.replace("&", "&&")


def write_workbook(
    exceptions: pl.DataFrame,
    rules: list[Rule],
    summary_rows: list[dict[str, Any]],
    quarantine: pl.DataFrame | None,
    path: Path,
    changes: dict[str, int] | None = None,
    area: str | None = None,
    columns_by: str = "township",
    only_flagged_rules: bool = False,
) -> None:
    """One workbook: the summary, the run's new cases (with a baseline), one sheet per rule
    and the quarantined rows. `area` names a township or village workbook (its header and
    title); `columns_by` is the summary's column field; `only_flagged_rules` leaves out the
    sheets of rules that flag nobody here (a township's workbook)."""
    import xlsxwriter

    exceptions = exceptions.select(
        EXCEPTION_COLUMNS + [c for c in ("evidence_zh",) if c in exceptions.columns]
    )
    shown = case_sheet_frame(exceptions, rules)
    quarantine = mask_frame(quarantine) if quarantine is not None else None
    summary_rows = [
        {k: mask_text(v) if isinstance(v, str) else v for k, v in r.items()} for r in summary_rows
    ]
    header_text = f"扶贫对象疑点核实表 {mask_text(area)}" if area else "扶贫对象疑点核实表"
    with atomic_path(path) as tmp:
        # xlsxwriter writes everything but the case rows; insert_rows adds them into tmp.
        frame_path = tmp.with_name(f"frame-{tmp.name}")
        wb = xlsxwriter.Workbook(
            str(frame_path),
            {
                "strings_to_formulas": False,
                "strings_to_urls": False,
                # Its own cells are few (the case rows are not its): in memory, no temp file
                # per part. Many quarantined rows are written row by row through a temp file.
                "in_memory": quarantine is None or quarantine.height <= IN_MEMORY_ROWS,
                "constant_memory": True,
                "tmpdir": str(tmp.parent),
            },
        )
        wb.set_properties({"title": "linkaudit exceptions", "comments": DISCLAIMER})
        fmt = _Formats(wb)
        widths = _widths(display_widths(shown))
        # Each row's printed lines, once for the workbook; its sheets are filters of `shown`.
        shown = shown.with_columns(row_lines(shown, widths).alias(_LINES))
        _write_summary(
            wb, fmt, shown, exceptions, rules, summary_rows, changes, header_text, columns_by
        )
        used: set[str] = set()
        case_rows: list[SheetRows] = []
        if changes is not None:
            fresh = shown.filter(pl.col("status").is_in([STATUS_ZH["new"], STATUS_ZH["reopened"]]))
            case_rows += _write_case_sheets(
                wb, fmt, "本次新增 New", "new", fresh, widths, used, header_text
            )
        for rule in rules:
            rows = shown.filter(pl.col("rule_id") == rule.id)
            if only_flagged_rules and rows.height == 0:
                continue
            case_rows += _write_case_sheets(
                wb, fmt, rule.title.zh, rule.id, rows, widths, used, header_text
            )
        if quarantine is not None and quarantine.height:
            sheet = wb.add_worksheet(_sheet_name("未能读取的行", "quarantine", used))
            _write_quarantine(sheet, fmt, quarantine, header_text)
        wb.close()
        insert_rows(frame_path, tmp, case_rows)
        frame_path.unlink()


#: Type of the technical columns (7 point) against the others (10 point).
TECH_SCALE = 0.7


def row_lines(frame: pl.DataFrame, widths: dict[str, float]) -> pl.Series:
    """Printed lines of each row: the most any wrapped column needs at its width (Excel and
    LibreOffice do not grow a written row to fit wrapped text, so the height is set)."""
    if frame.height == 0:
        return pl.Series("lines", [], dtype=pl.Int64)
    exprs = []
    for col in CASE_SHEET_COLUMNS:
        if not col.wrap:
            continue
        scale = TECH_SCALE if col.kind == "tech" else 1.0
        room = max(1.0, (widths[col.key] - 1) / scale)
        exprs.append(
            pl.col(col.key)
            .fill_null("")
            .str.split("\n")
            .list.eval(
                ((pl.element().str.len_chars() * 0.6 + pl.element().str.len_bytes() * 0.4) / room)
                .ceil()
                .clip(lower_bound=1)
            )
            .list.sum()
        )
    return frame.select(pl.max_horizontal(exprs).cast(pl.Int64).alias("lines")).to_series()


def _widths(content: dict[str, float]) -> dict[str, float]:
    """Column widths from content (header included), within each column's bounds."""
    out = {}
    for col in CASE_SHEET_COLUMNS:
        header = (len(col.header) * 2 + 2) * (TECH_SCALE if col.kind == "tech" else 1.0)
        want = content.get(col.key, 0.0) * (TECH_SCALE if col.kind == "tech" else 1.0) + 1.5
        out[col.key] = max(col.min_width, min(col.max_width, max(want, header)))
    return out


def _write_case_sheets(
    wb: Any,
    fmt: _Formats,
    title: str,
    key: str,
    rows: pl.DataFrame,
    widths: dict[str, float],
    used: set[str],
    header_text: str,
) -> list[SheetRows]:
    """A rule's cases on one sheet, or on several when they pass Excel's row limit."""
    chunks = max(1, -(-rows.height // MAX_DATA_ROWS))
    sheets = []
    for part in range(chunks):
        name = title if chunks == 1 else f"{title} ({part + 1})"
        sheet = wb.add_worksheet(_sheet_name(name, key, used))
        chunk = rows.slice(part * MAX_DATA_ROWS, MAX_DATA_ROWS)
        sheets.append(_write_case_sheet(sheet, fmt, chunk, widths, header_text))
    return sheets


def _write_case_sheet(
    sheet: Any, fmt: _Formats, rows: pl.DataFrame, widths: dict[str, float], header_text: str
) -> SheetRows:
    """A case sheet's header, layout and protection; its rows, for sheet_xml.insert_rows."""
    cols = CASE_SHEET_COLUMNS
    n = max(rows.height, 1)
    for c, col in enumerate(cols):
        sheet.set_column(c, c, widths[col.key], fmt.for_column(col))
    sheet.freeze_panes(1, 4)  # the header row, and who it is, stay in view
    sheet.set_row(0, 30)
    _print_setup(sheet, header_text)
    out_c = CASE_SHEET_HEADERS.index("核实结果")
    sheet.data_validation(
        1,
        out_c,
        n,
        out_c,
        {
            "validate": "list",
            "source": list(OUTCOME_ZH.values()),
            "input_title": "核实结果",
            "input_message": "属实 / 不属实（须写明核实说明）/ 待核实",
            "error_title": "核实结果",
            "error_message": "请从下拉列表选择：属实、不属实或待核实",
        },
    )
    sheet.autofilter(0, 0, n, len(cols) - 1)
    sheet.protect(
        "",
        {
            "autofilter": True,
            "sort": False,
            "format_columns": True,
            "format_rows": True,
            "select_locked_cells": True,
            "select_unlocked_cells": True,
        },
    )
    for c, col in enumerate(cols):
        sheet.write_string(0, c, col.header, fmt.for_header(col))
    # The data rows are added after wb.close(), built in bulk (see report.sheet_xml): each
    # cell written with its column's format, empty cells of the cadre's (unlocked) columns
    # as styled blanks, wrapped rows given their height.
    return SheetRows(
        index=sheet.index,
        frame=rows.select([col.key for col in cols]),
        blank_columns=frozenset(c for c, col in enumerate(cols) if col.kind == "fill"),
        lines=rows.get_column(_LINES) if _LINES in rows.columns else row_lines(rows, widths),
        line_height=LINE_HEIGHT,
    )


def _write_summary(
    wb: Any,
    fmt: _Formats,
    shown: pl.DataFrame,
    exceptions: pl.DataFrame,
    rules: list[Rule],
    summary_rows: list[dict[str, Any]],
    changes: dict[str, int] | None,
    header_text: str,
    columns_by: str,
) -> None:
    ws = wb.add_worksheet("汇总 Summary")
    _print_setup(ws, header_text)
    ws.write_string(0, 0, f"{header_text}：疑点汇总", fmt.title)
    ws.write_string(1, 0, DISCLAIMER_ZH)
    ws.write_string(2, 0, DISCLAIMER.split("。 ", 1)[-1].strip())
    if changes:
        words = {"new": "新增", "persisting": "持续", "reopened": "重现", "resolved": "已消除"}
        text = "，".join(f"{words.get(k, k)} {v:,}" for k, v in changes.items())
        ws.write_string(3, 0, f"与上次运行相比：{text}")
    by_rule = {r["rule_id"]: r for r in summary_rows}
    applied = [r for r in rules if not (by_rule.get(r.id) or {}).get("skipped")]
    counts = (
        exceptions.with_columns(pl.col(columns_by).fill_null("（未填）").alias("_area"))
        .group_by("rule_id", "_area")
        .agg(pl.len().alias("n"))
    )
    areas = sorted(set(counts.get_column("_area").to_list()))
    cell = {(r, a): n for r, a, n in counts.iter_rows()}
    row = 5
    label = {"township": "乡镇", "village": "行政村"}.get(columns_by, columns_by)
    ws.write_string(
        row, 0, f"疑点数（按规则、{label}）Flagged cases by rule and {columns_by}", fmt.bold
    )
    row += 1
    head = ["问题", "类别", "范围", *areas, "合计", "人数", "户数", "规则"]
    for c, h in enumerate(head):
        ws.write_string(row, c, mask_text(h), fmt.header)
    col_totals = dict.fromkeys(areas, 0)
    for rule in applied:
        row += 1
        meta = by_rule.get(rule.id, {})
        ws.write_string(row, 0, rule.title.zh, fmt.cell_wrap)
        ws.write_string(row, 1, SEVERITY_ZH.get(rule.severity, rule.severity), fmt.cell)
        ws.write_string(row, 2, SCOPE_ZH.get(rule.scope, rule.scope), fmt.cell)
        total = 0
        for i, a in enumerate(areas):
            n = cell.get((rule.id, a), 0)
            total += n
            col_totals[a] += n
            ws.write_number(row, 3 + i, n, fmt.number)
        ws.write_number(row, 3 + len(areas), total, fmt.total)
        for j, k in enumerate(("persons", "households")):
            if k in meta:
                ws.write_number(row, 4 + len(areas) + j, meta[k], fmt.number)
        ws.write_string(row, 6 + len(areas), rule.id, fmt.tech)
    row += 1
    ws.write_string(row, 0, "合计", fmt.header)
    ws.write_string(row, 1, "", fmt.header)
    ws.write_string(row, 2, "", fmt.header)
    for i, a in enumerate(areas):
        ws.write_number(row, 3 + i, col_totals[a], fmt.total)
    ws.write_number(row, 3 + len(areas), sum(col_totals.values()), fmt.total)
    ws.set_column(0, 0, 26)
    ws.set_column(1, 2, 10)
    ws.set_column(3, 3 + len(areas), 9)
    ws.set_column(4 + len(areas), 5 + len(areas), 8)
    ws.set_column(6 + len(areas), 6 + len(areas), 22)
    skipped = [
        (r, by_rule[r.id]["skipped"]) for r in rules if (by_rule.get(r.id) or {}).get("skipped")
    ]
    row += 2
    ws.write_string(row, 0, "未执行的规则及原因 Rules not applied, and why", fmt.bold)
    row += 1
    if not skipped:
        ws.write_string(row, 0, "无：所有规则均已执行。Every rule was applied.")
    for rule, why in skipped:
        ws.write_string(row, 0, rule.title.zh, fmt.cell_wrap)
        ws.write_string(row, 1, rule.id, fmt.cell)
        ws.write_string(row, 3, str(why))
        row += 1


def _write_quarantine(sheet: Any, fmt: _Formats, rows: pl.DataFrame, header_text: str) -> None:
    _print_setup(sheet, header_text)
    sheet.freeze_panes(1, 0)
    sheet.repeat_rows(0)
    for c, width in enumerate((12, 24, 8, 16, 60)):
        sheet.set_column(c, c, width)
    sheet.autofilter(0, 0, max(rows.height, 1), len(QUARANTINE_HEADERS) - 1)
    for c, h in enumerate(QUARANTINE_HEADERS):
        sheet.write_string(0, c, h, fmt.header)
    numeric = [dtype.is_numeric() for dtype in rows.dtypes]
    for r, values in enumerate(rows.iter_rows(), start=1):
        for c, value in enumerate(values):
            if value is None:
                continue
            if numeric[c]:
                sheet.write_number(r, c, value, fmt.cell)
            else:
                sheet.write_string(r, c, str(value), fmt.cell_wrap if c == 4 else fmt.cell)


def _sheet_name(title: str, key: str, used: set[str]) -> str:
    bad = "[]:*?/\\"
    base = "".join("_" if ch in bad else ch for ch in title)[:28] or key[:28]
    name, i = base, 2
    while name.lower() in used:
        name = f"{base[:26]}{i}"
        i += 1
    used.add(name.lower())
    return name


_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')


def safe_file_name(name: str | None, fallback: str = "未填乡镇") -> str:
    """A file name for a township or village: no path separators, reserved characters, leading
    dots or trailing spaces; at most 60 characters."""
    text = _UNSAFE.sub("_", (name or "").strip()).strip(" .")
    return text[:60] or fallback


def split_workbooks(
    exceptions: pl.DataFrame,
    rules: list[Rule],
    summary_rows: list[dict[str, Any]],
    folder: Path,
    by: str,
    changes: dict[str, int] | None = None,
) -> list[Path]:
    """One workbook per township (by='township': folder/<乡镇>.xlsx) or village
    (folder/<乡镇>-<行政村>.xlsx), each holding only its own residents' cases."""
    keys = ["township"] if by == "township" else ["township", "village"]
    # The county's per-rule person and household counts are not this area's: left out.
    local_rows = [
        {k: v for k, v in r.items() if k not in ("persons", "households", "evidence_records")}
        for r in summary_rows
    ]
    groups = exceptions.select(keys).unique().sort(keys, nulls_last=True)
    written: list[Path] = []
    names: set[str] = set()
    for values in groups.iter_rows():
        parts = [mask_text(v) if v else None for v in values]
        area = "".join(p or "（未填）" for p in parts)
        stem = "-".join(safe_file_name(p, "未填") for p in parts)
        name, i = stem, 2
        while name.lower() in names:
            name, i = f"{stem}_{i}", i + 1
        names.add(name.lower())
        match = pl.lit(True)
        for k, v in zip(keys, values, strict=True):
            match = match & (pl.col(k).is_null() if v is None else pl.col(k) == v)
        path = folder / f"{name}.xlsx"
        write_workbook(
            exceptions.filter(match),
            rules,
            local_rows,
            None,
            path,
            changes=None,
            area=area,
            columns_by="village",
            only_flagged_rules=True,
        )
        written.append(path)
    return written


def iter_case_sheets(wb: Any) -> Iterable[Any]:
    """The case sheets of a workbook read with openpyxl (those with a 疑点编号 header)."""
    for ws in wb.worksheets:
        first = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
        if "疑点编号" in first:
            yield ws
