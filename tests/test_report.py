"""The outputs people read: the cadres' workbook (layout against a golden description, the
per-township split, Excel's row limit) and report.html (opened in a real browser)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from conftest import run
from linkaudit import load_manifest
from linkaudit.audit.run import run_audit
from linkaudit.report import workbook
from linkaudit.report.labels import confidence_band
from linkaudit.report.workbook import CASE_SHEET_HEADERS, safe_file_name

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "mashan"
GOLDEN = Path(__file__).parent / "golden" / "workbook_layout.json"


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> tuple[Path, dict]:
    """The committed sample, copied and audited with --split-by township."""
    root = tmp_path_factory.mktemp("cadre") / "mashan"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    result = run_audit(load_manifest(root / "linkaudit.yaml"), split_by="township")
    return root, result.summary


def describe(path: Path) -> dict:
    """What the golden file fixes of a workbook: sheets, headers, validation, print settings,
    protection and which columns are unlocked."""
    wb = openpyxl.load_workbook(path)
    summary = wb.worksheets[0]
    head_row = next(r for r in summary.iter_rows(values_only=True) if r and r[0] == "问题")
    sheets = []
    for ws in wb.worksheets[1:]:
        header = [c.value for c in ws[1]]
        if "疑点编号" not in header:
            continue
        second = ws[2] if ws.max_row >= 2 else ws[1]
        sheets.append(
            {
                "headers": header,
                "validation": [
                    {
                        "type": dv.type,
                        "formula": dv.formula1,
                        "columns": sorted({re.sub(r"\d", "", str(r)) for r in dv.sqref.ranges}),
                    }
                    for dv in ws.data_validations.dataValidation
                ],
                "orientation": ws.page_setup.orientation,
                "paper": int(ws.page_setup.paperSize),
                # fitToWidth is left out of the file when 1 (the default): openpyxl says None.
                "fit": [ws.page_setup.fitToWidth or 1, ws.page_setup.fitToHeight],
                "fit_to_page": ws.sheet_properties.pageSetUpPr.fitToPage,
                "print_titles": ws.print_title_rows,
                "freeze": ws.freeze_panes,
                "footer": [ws.oddFooter.left.text, ws.oddFooter.right.text],
                "protected": ws.protection.sheet,
                "autofilter_allowed": not ws.protection.autoFilter,
                "unlocked": [header[c.column - 1] for c in second if c.protection.locked is False],
                "tech_font": [header[c.column - 1] for c in second if c.font and c.font.sz == 7],
            }
        )
    shapes = {json.dumps(s, ensure_ascii=False, sort_keys=True) for s in sheets}
    return {
        "summary_head": [list(head_row[:3]), list(head_row[-4:])],
        "case_sheets": len(sheets),
        "case_sheet_layouts": [json.loads(s) for s in sorted(shapes)],
    }


def test_workbook_layout_matches_the_golden_description(audited) -> None:
    root, summary = audited
    got = describe(root / "out" / "exceptions.xlsx")
    if os.environ.get("LINKAUDIT_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(got, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    want = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert got == want
    # One layout for every case sheet; its leading columns are who and where.
    assert len(got["case_sheet_layouts"]) == 1
    assert got["case_sheet_layouts"][0]["headers"][:5] == [
        "乡镇",
        "行政村",
        "户编号",
        "姓名",
        "证件号码",
    ]
    assert got["case_sheets"] == sum(1 for r in summary["rules"].values() if not r["skipped"])


def test_case_rows_read_for_a_cadre(audited) -> None:
    root, _ = audited
    wb = openpyxl.load_workbook(root / "out" / "exceptions.xlsx", read_only=True)
    ws = wb["家庭成员拥有汽车"]
    rows = list(ws.iter_rows(values_only=True))
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["问题"] == "家庭成员拥有汽车"
    assert re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]", cells["证件号码"])
    # 公安交警 V… (name): 号牌：…；车辆类型：…；状态：…；登记日期：YYYY-MM-DD
    assert re.match(
        r"公安交警 \S+（[^）]+）：号牌：[^；]+；车辆类型：[^；]+；状态：[^；]+；登记日期：\d{4}-\d{2}-\d{2}$",
        cells["证据"],
    ), cells["证据"]
    assert re.fullmatch(r"(很高|高|中) \d+(\.\d)?%", cells["关联把握"])
    assert cells["状态"] == "新增" and cells["类别"] == "不符合条件" and cells["范围"] == "个人"
    # A household rule on the register's own fields: one line for the household.
    ws = wb["未达标脱贫"]
    rows = list(ws.iter_rows(values_only=True))
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert re.fullmatch(
        r"贫困户状态：已脱贫；脱贫年度：\d{4}；人均纯收入\(元\)：\d+\.\d\d；家庭人口数：\d+",
        cells["证据"],
    ), cells["证据"]
    assert cells["范围"] == "家庭"


def test_summary_sheet_is_rule_by_township_with_totals(audited) -> None:
    root, summary = audited
    wb = openpyxl.load_workbook(root / "out" / "exceptions.xlsx", read_only=True)
    rows = [r for r in wb.worksheets[0].iter_rows(values_only=True)]
    start = next(i for i, r in enumerate(rows) if r and r[0] == "问题")
    head = rows[start]
    total_col = head.index("合计")
    towns = head[3:total_col]
    cases = pl.read_csv(root / "out" / "exceptions.csv", infer_schema=False)
    assert sorted(towns) == sorted(cases.get_column("township").unique().to_list())
    body = rows[start + 1 : start + 1 + len(summary["rules"])]
    total = next(r for r in rows[start + 1 :] if r[0] == "合计")
    for r in body:
        if r[0] == "合计":
            break
        rule_id = r[head.index("规则")]
        want = cases.filter(pl.col("rule_id") == rule_id)
        assert r[total_col] == want.height, rule_id
        for i, town in enumerate(towns):
            assert r[3 + i] == want.filter(pl.col("township") == town).height
    assert total[total_col] == cases.height
    assert sum(total[3:total_col]) == cases.height
    assert any(r and r[0] == "未执行的规则及原因 Rules not applied, and why" for r in rows)


def test_split_by_township_gives_each_township_only_its_residents(audited) -> None:
    root, _ = audited
    out = root / "out"
    assert out.is_symlink()  # the township workbooks are part of the published set
    files = sorted((out / "townships").glob("*.xlsx"))
    cases = pl.read_csv(out / "exceptions.csv", infer_schema=False)
    towns = sorted(cases.get_column("township").unique().to_list())
    assert [f.stem for f in files] == sorted(towns)
    seen = 0
    for f in files:
        wb = openpyxl.load_workbook(f, read_only=True)
        for ws in wb.worksheets[1:]:
            rows = list(ws.iter_rows(values_only=True))
            assert list(rows[0]) == CASE_SHEET_HEADERS
            assert {r[0] for r in rows[1:]} == {f.stem}
            seen += len(rows) - 1
        wb.close()
    assert seen == cases.height


def test_split_by_village_via_the_cli(runner, tmp_path: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    result = run(runner, "audit", root, "--split-by", "village", "-q")
    assert result.exit_code == 0, result.output
    files = list((root / "out" / "villages").glob("*.xlsx"))
    cases = pl.read_csv(root / "out" / "exceptions.csv", infer_schema=False)
    assert len(files) == cases.select("township", "village").unique().height
    assert all(re.fullmatch(r"[^-]+-[^-]+\.xlsx", f.name) for f in files)
    result = run(runner, "audit", root, "--split-by", "county")
    assert result.exit_code == 2 and "county" in result.output


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("白山镇", "白山镇"),
        ("../etc", "_etc"),
        ("a/b\\c:d*e?f", "a_b_c_d_e_f"),
        (" .hidden. ", "hidden"),
        (None, "未填乡镇"),
        ("", "未填乡镇"),
    ],
)
def test_safe_file_names(name, safe) -> None:
    assert safe_file_name(name) == safe


def test_confidence_words() -> None:
    assert confidence_band(1.0) == "很高 100%"
    assert confidence_band(0.9996) == "很高 99.9%"
    assert confidence_band(0.97) == "高 97%"
    assert confidence_band(0.6) == "中 60%"
    assert confidence_band(None) == ""


def test_a_rule_past_the_row_limit_is_split_over_sheets(tmp_path, monkeypatch) -> None:
    from linkaudit.audit.rules import Rule
    from linkaudit.report.outputs import EXCEPTION_COLUMNS, write_xlsx

    monkeypatch.setattr(workbook, "MAX_DATA_ROWS", 2)
    frame = pl.DataFrame(
        {c: [f"{c}{i}" for i in range(5)] for c in EXCEPTION_COLUMNS}
    ).with_columns(
        pl.lit("r1").alias("rule_id"),
        pl.lit("new").alias("status"),
        pl.lit(None, dtype=pl.Float64).alias("match_probability"),
        pl.lit(None, dtype=pl.Utf8).alias("outcome"),
    )
    rule = Rule.model_validate(
        {
            "id": "r1",
            "title": {"zh": "规则", "en": "Rule"},
            "severity": "risk",
            "registry": "poverty",
            "condition": "TRUE",
            "source": "x.yaml",
        }
    )
    q = pl.DataFrame(schema={"registry": pl.Utf8})
    write_xlsx(frame, [rule], [], q, tmp_path / "x.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "x.xlsx")
    assert wb.sheetnames == ["汇总 Summary", "规则 (1)", "规则 (2)", "规则 (3)"]
    case_ids = [c.value for ws in wb.worksheets[1:] for c in ws["P"][1:]]
    assert wb.worksheets[1]["P1"].value == "疑点编号"
    assert case_ids == [f"case_id{i}" for i in range(5)]


# -- the case rows, built in bulk, against xlsxwriter cell by cell ---------------------------


def _per_cell_case_sheet(sheet, fmt, rows, widths, header_text):  # type: ignore[no-untyped-def]
    """The case-sheet writer that report.sheet_xml replaced (one xlsxwriter call per cell),
    kept as the reference: same layout calls, then every cell written on its own."""
    from linkaudit.report.sheet_xml import SheetRows

    cols = workbook.CASE_SHEET_COLUMNS
    n = max(rows.height, 1)
    for c, col in enumerate(cols):
        sheet.set_column(c, c, widths[col.key], fmt.for_column(col))
    sheet.freeze_panes(1, 4)
    sheet.set_row(0, 30)
    workbook._print_setup(sheet, header_text)
    out_c = CASE_SHEET_HEADERS.index("核实结果")
    sheet.data_validation(
        1,
        out_c,
        n,
        out_c,
        {
            "validate": "list",
            "source": list(workbook.OUTCOME_ZH.values()),
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
    formats = [fmt.for_column(col) for col in cols]
    fill_cols = [c for c, col in enumerate(cols) if col.kind == "fill"]
    lines = workbook.row_lines(rows, widths).to_list()
    for r, values in enumerate(rows.select([c.key for c in cols]).iter_rows(), start=1):
        if lines[r - 1] > 1:
            sheet.set_row(r, workbook.LINE_HEIGHT * lines[r - 1] + 2)
        for c, value in enumerate(values):
            if value is None or value == "":
                if c in fill_cols:
                    sheet.write_blank(r, c, None, formats[c])
                continue
            sheet.write_string(r, c, value, formats[c])
    empty = rows.clear()
    return SheetRows(sheet.index, empty, frozenset(), pl.Series([], dtype=pl.Int64), 13.5)


_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _sheets_by_style(path: Path, ids: dict) -> dict[str, str]:
    """Every worksheet part of a workbook, its style indices replaced by what the style is
    (font, fill, border, number format, alignment, protection), numbered through `ids`: two
    workbooks that number the same formats in another order compare equal, no other. Shared
    strings are written in line and the optional row spans left out, so that a workbook
    xlsxwriter wrote in memory compares with one it wrote in constant-memory mode."""
    import xml.etree.ElementTree as ET
    import zipfile

    with zipfile.ZipFile(path) as z:
        root = ET.fromstring(z.read("xl/styles.xml"))

        def items(tag: str) -> list[bytes]:
            el = root.find(_MAIN + tag)
            return [] if el is None else [ET.tostring(e) for e in el]

        fonts, fills, borders = items("fonts"), items("fills"), items("borders")
        found = root.find(_MAIN + "numFmts")
        numfmts = {} if found is None else {e.get("numFmtId"): e.get("formatCode") for e in found}
        canon = []
        for xf in root.find(_MAIN + "cellXfs"):  # type: ignore[union-attr]
            a = dict(xf.attrib)
            num = a.pop("numFmtId", "0")
            key = (
                fonts[int(a.pop("fontId", "0"))],
                fills[int(a.pop("fillId", "0"))],
                borders[int(a.pop("borderId", "0"))],
                numfmts.get(num, num),
                tuple(sorted(a.items())),
                tuple(ET.tostring(c) for c in xf),
            )
            canon.append(ids.setdefault(key, len(ids)))
        shared = []
        if "xl/sharedStrings.xml" in z.namelist():
            text = z.read("xl/sharedStrings.xml").decode()
            shared = re.findall(r"<si>(.*?)</si>", text, re.S)
        pattern = re.compile(r'(<c r="[A-Z]+\d+" s|<col [^>]*? style)="(\d+)"')
        out = {}
        for name in z.namelist():
            if not name.startswith("xl/worksheets/"):
                continue
            xml = pattern.sub(
                lambda m: f'{m.group(1)}="#{canon[int(m.group(2))]}"', z.read(name).decode()
            )
            xml = re.sub(
                r't="s"><v>(\d+)</v></c>',
                lambda m: f't="inlineStr"><is>{shared[int(m.group(1))]}</is></c>',
                xml,
            )
            out[name] = re.sub(r' spans="\d+:\d+"', "", xml)
        return out


def _both_ways(  # type: ignore[no-untyped-def]
    frame: pl.DataFrame, rules: list, tmp_path: Path, monkeypatch, quarantine=None
) -> tuple:
    from linkaudit.report.workbook import write_workbook

    fast, slow = tmp_path / "fast" / "x.xlsx", tmp_path / "slow" / "x.xlsx"
    summary = [{"rule_id": r.id, "persons": 1, "households": 1} for r in rules]
    write_workbook(frame, rules, summary, quarantine, fast, changes={"new": frame.height})
    with monkeypatch.context() as m:
        m.setattr(workbook, "_write_case_sheet", _per_cell_case_sheet)
        write_workbook(frame, rules, summary, quarantine, slow, changes={"new": frame.height})
    ids: dict = {}
    return _sheets_by_style(fast, ids), _sheets_by_style(slow, ids), fast


#: Text that xlsxwriter escapes, cuts or marks: XML characters, Excel's _xHHHH_ escapes and
#: control characters, white space at either end (ASCII, ideographic, no-break), characters
#: beyond the BMP, text past Excel's 32,767 UTF-16 units (with an astral character at the
#: cut), empty text, and text that looks like a number, a date, a formula or an ID.
TRICKY = [
    "普通文本",
    "",
    None,
    "a & b < c > d \"q\" 'q'",
    "_x0041_ literal and _x005F_x0041_",
    "ctl\x01\x0b\r\x1f end",
    "tab\there",
    "line1\nline2\nline3\nline4",
    " leading",
    "trailing ",
    "\u3000全角空格\u3000",
    "nbsp\xa0",
    "ends with newline\n",
    "𠀀𠀁 astral 😀",
    "\ufffe non-character \uffff",
    "=1+1",
    "+86 123",
    "-5",
    "@SUM(A1)",
    "00123",
    "2015-12-31",
    "450124199001011234",
    "见 450124199001011234；",
    "x" * 40_000,
    "a" * 16_000 + "𠀀" * 9_000,
]


def _tricky_frame(rule_ids: list[str], n: int = 60) -> pl.DataFrame:
    from linkaudit.report.columns import EXCEPTION_COLUMNS

    cols = [*EXCEPTION_COLUMNS, "evidence_zh"]
    data = {c: [TRICKY[(i * 7 + j) % len(TRICKY)] for i in range(n)] for j, c in enumerate(cols)}
    return pl.DataFrame(data, schema=dict.fromkeys(cols, pl.Utf8)).with_columns(
        pl.Series("rule_id", [rule_ids[i % len(rule_ids)] for i in range(n)]),
        pl.Series("status", ["new", "persisting", "reopened"] * (n // 3)),
        pl.Series("outcome", [None, "confirmed", "cleared", "pending"] * (n // 4)),
        pl.Series("match_probability", [None, 0.95, 1.0, 0.41234] * (n // 4)),
    )


def _rules() -> list:
    from linkaudit.audit.rules import Rule

    return [
        Rule.model_validate(
            {
                "id": rid,
                "title": {"zh": zh, "en": rid},
                "severity": "risk",
                "registry": "poverty",
                "condition": "TRUE",
                "source": "x.yaml",
            }
        )
        for rid, zh in (("r1", "规则一"), ("r2", "规则二"))
    ]


@pytest.mark.parametrize("in_memory", [True, False])
def test_case_rows_are_what_xlsxwriter_writes_cell_by_cell(
    tmp_path, monkeypatch, in_memory
) -> None:
    quarantine = None
    if not in_memory:  # as for a long quarantine sheet: xlsxwriter in constant-memory mode
        monkeypatch.setattr(workbook, "IN_MEMORY_ROWS", 0)
        quarantine = pl.DataFrame(
            {"registry": ["poverty"], "file": ["p.csv"], "row": [7], "column": ["x"]}
        ).with_columns(reason=pl.lit("bad date"))
    rules = _rules()
    frame = _tricky_frame([r.id for r in rules])
    fast, slow, path = _both_ways(frame, rules, tmp_path, monkeypatch, quarantine)
    with zipfile.ZipFile(path) as z:  # each mode as asked: shared strings only in memory
        assert ("xl/sharedStrings.xml" in z.namelist()) is in_memory
    # summary, new, r1, r2 (and the quarantine)
    assert fast.keys() == slow.keys() and len(fast) == 4 + (not in_memory)
    for name in fast:
        assert fast[name] == slow[name], name
    # The data is really there (not two empty sheets): rows, heights, escapes, cut text.
    new_sheet = fast["xl/worksheets/sheet2.xml"]  # new and reopened cases: 2 in 3
    assert new_sheet.count("<row ") == frame.height * 2 // 3 + 1
    assert 'customHeight="1"' in new_sheet and "_x005F_x0041_" in new_sheet
    assert "a &amp; b &lt; c &gt; d" in new_sheet and 'xml:space="preserve"' in new_sheet
    assert "450124199001011234" not in new_sheet and "450124********1234" in new_sheet


def test_rich_text_markup_is_text_like_any_other(tmp_path) -> None:
    """The one place the bulk rows differ from xlsxwriter on purpose: text in '<r>…</r>'
    stays text (xlsxwriter would put it into the file unescaped)."""
    from linkaudit.report.workbook import write_workbook

    rules = _rules()[:1]
    frame = _tricky_frame(["r1"], n=12).with_columns(pl.lit("<r>x</r>").alias("name"))
    write_workbook(frame, rules, [], None, tmp_path / "x.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "x.xlsx")["规则一"]
    assert [c.value for c in ws["D"][1:]] == ["<r>x</r>"] * 12


def test_the_sample_workbook_is_what_xlsxwriter_writes_cell_by_cell(
    audited, tmp_path, monkeypatch
) -> None:
    from linkaudit.audit.run import load_manifest_rules
    from linkaudit.engines.duckdb import Workspace

    root, _ = audited
    manifest = load_manifest(root / "linkaudit.yaml")
    with Workspace(manifest.database, read_only=True) as ws:
        cases = ws.frame("SELECT * FROM findings_exceptions")
    fast, slow, _ = _both_ways(cases, load_manifest_rules(manifest), tmp_path, monkeypatch)
    assert fast == slow
    assert sum(x.count("<row ") for x in fast.values()) > 2 * cases.height


def test_case_sheet_cells_keep_their_types(tmp_path, monkeypatch) -> None:
    """Case-sheet cells are text, whatever they look like (keys with leading zeros, dates,
    masked IDs, formula-like text); the summary's counts are numbers; the cadre's empty cells
    are there (unlocked, to fill in); other empty cells are absent."""
    rules = _rules()
    frame = _tricky_frame([r.id for r in rules])
    _, _, path = _both_ways(frame, rules, tmp_path, monkeypatch)
    wb = openpyxl.load_workbook(path)
    ws = wb["规则一"]
    header = [c.value for c in ws[1]]
    values = {
        (r, header[c]): cell
        for r, row in enumerate(ws.iter_rows(min_row=2))
        for c, cell in enumerate(row)
    }
    texts = [cell.value for cell in values.values() if cell.value is not None]
    assert all(isinstance(v, str) for v in texts)
    assert {"00123", "2015-12-31", "=1+1", "-5", "450124********1234"} <= set(texts)
    assert all(cell.data_type == "s" for cell in values.values() if cell.value is not None)
    blanks = [k for k, cell in values.items() if cell.value is None and cell.has_style]
    assert blanks and {h for _, h in blanks} <= {"核实结果", "核实说明"}
    assert all(values[k].protection.locked is False for k in blanks)
    assert all(
        values[k].value is not None
        for k in values
        if k[1] == "姓名"
        and frame.filter(pl.col("rule_id") == "r1")["name"][k[0]] not in (None, "")
    )
    summary = wb.worksheets[0]
    head = next(r for r in summary.iter_rows() if r[0].value == "问题")
    total = [c.column for c in head if c.value == "合计"][0]
    counts = [row[total - 1].value for row in summary.iter_rows(min_row=head[0].row + 1)]
    assert counts[:2] == [30, 30] and all(isinstance(v, int) for v in counts[:3])


# -- report.html in a real browser ---------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
]
#: Put first in a copy of the page: records every error and console.error into the DOM, where
#: --dump-dom shows it.
ERROR_PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push('error: ' + e.message); });
window.addEventListener('unhandledrejection', function (e) {
  window.__errors.push('rejection: ' + e.reason); });
(function () { var orig = console.error; console.error = function () {
  window.__errors.push('console: ' + Array.prototype.join.call(arguments, ' '));
  return orig.apply(console, arguments); }; })();
window.addEventListener('load', function () { setTimeout(function () {
  var p = document.createElement('pre'); p.id = 'probe-errors';
  p.textContent = JSON.stringify(window.__errors); document.body.appendChild(p); }, 500); });
</script>"""


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("CI") != "true":
        pytest.skip("chromium is not installed (apt-get install chromium; CI installs it)")
    assert found, "CI=true: chromium must be installed (.ci/run installs it)"
    return found


def _open(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    browser = _chromium()
    probe = tmp / f"probed-{page.name}"
    probe.write_text(
        page.read_text(encoding="utf-8").replace("<head>", "<head>" + ERROR_PROBE, 1),
        encoding="utf-8",
    )
    return subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp / 'profile'}",
            "--virtual-time-budget=10000",
            *extra,
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )


def _errors(dom: str) -> list[str]:
    found = re.search(r'<pre id="probe-errors">(.*?)</pre>', dom, re.S)
    assert found, "the error probe did not run (page did not load)"
    return list(json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")))


def test_the_error_probe_catches_a_broken_page(tmp_path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head></head><body><script>undefinedThing();</script></body></html>",
        encoding="utf-8",
    )
    result = _open(page, tmp_path, "--dump-dom")
    assert any("undefinedThing" in e for e in _errors(result.stdout)), result.stdout


def test_report_renders_in_headless_chromium(audited, tmp_path) -> None:
    root, summary = audited
    report = root / "out" / "report.html"
    text = report.read_text(encoding="utf-8")
    # Self-contained: no script or style is fetched from anywhere.
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|@import", text)
    result = _open(report, tmp_path, "--dump-dom")
    dom = result.stdout
    assert _errors(dom) == [], _errors(dom)
    charts = re.findall(r'<div id="chart-([a-z]+)" class="chart', dom)
    assert charts == [
        "rules",
        "townships",
        "trend",
        "verification",
        "confirmation",
        "links",
        "weights",
        "passes",
    ]
    # Every chart drawn by plotly: one plot container and its SVG each.
    assert dom.count('class="plot-container plotly"') == len(charts)
    assert dom.count('class="main-svg"') >= len(charts)
    assert "按规则的疑点人数和户数" in dom and "未执行的规则" in dom
    shot = tmp_path / "report.png"
    result = _open(report, tmp_path, f"--screenshot={shot}", "--window-size=1280,3000")
    assert shot.exists() and shot.stat().st_size > 20_000, result.stderr[-2000:]
