"""`verify import`: formulas without a value and the same case answered twice are errors that
name file, sheet, row and column; nothing is stored until all is right."""

from __future__ import annotations

from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest
import xlsxwriter

from conftest import POVERTY_REG, run, write_csv, write_manifest


@pytest.fixture
def audited(runner, tmp_path: Path) -> tuple[Path, list[dict[str, str]]]:
    """A register of three, all flagged by a user rule; audited once."""
    root = tmp_path / "w"
    root.mkdir()
    write_csv(
        root / "poverty.csv",
        ["人员编号", "户编号", "姓名", "证件号码", "人均纯收入(元)", "脱贫年度"],
        [
            ("P001", "H01", "韦小宝", "450124198504095224", "2600", "2014"),
            ("P002", "H01", "蓝玉", "45012419700101001X", "2600", "2014"),
            ("P003", "H02", "覃明", "450124198504095232", "2600", "2014"),
        ],
        "utf-8",
    )
    (root / "rules").mkdir()
    (root / "rules" / "all.yaml").write_text(
        "id: everyone\ntitle: {zh: 全部, en: Everyone}\nseverity: risk\nregistry: poverty\n"
        "condition: name IS NOT NULL\n",
        encoding="utf-8",
    )
    manifest = write_manifest(root, {"poverty": dict(POVERTY_REG)}, rules=["rules/"], output="out/")
    result = run(runner, "audit", manifest)
    assert result.exit_code == 0, result.output
    cases = pl.read_csv(root / "out" / "exceptions.csv", infer_schema=False).to_dicts()
    assert len(cases) == 3
    return manifest, cases


def _stored(manifest: Path) -> list[tuple]:
    con = duckdb.connect(str(manifest.parent / "ws.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT case_id, outcome, reason, source FROM verifications ORDER BY case_id"
        ).fetchall()
    finally:
        con.close()


def _returned_xlsx(manifest: Path, path: Path, cells: dict[tuple[int, str], str]) -> Path:
    """exceptions.xlsx as written, with cells of the rule's sheet set: (row, header) → value."""
    wb = openpyxl.load_workbook(manifest.parent / "out" / "exceptions.xlsx")
    ws = wb["全部"]
    header = [c.value for c in ws[1]]
    for (row, name), value in cells.items():
        ws.cell(row, header.index(name) + 1).value = value
    wb.save(path)
    return path


def test_outcome_formula_without_a_value_is_an_error(runner, audited, tmp_path) -> None:
    manifest, _ = audited
    path = _returned_xlsx(
        manifest,
        tmp_path / "back.xlsx",
        {(2, "核实结果"): '=IF(1,"属实","")', (3, "核实结果"): "属实"},
    )
    result = run(runner, "verify", "import", path, "-m", manifest)
    assert result.exit_code == 2, result.output
    assert (
        f"{path}: sheet '全部': row 2, column 核实结果 (outcome), cell I2: a formula "
        '(=IF(1,"属实","")) without a computed value'
    ) in result.output
    assert "nothing imported" in result.output
    assert "type the outcome as text" in result.output
    assert _stored(manifest) == []  # not even the good row 3


def test_reason_formula_without_a_value_is_an_error(runner, audited, tmp_path) -> None:
    manifest, _ = audited
    path = _returned_xlsx(
        manifest, tmp_path / "back.xlsx", {(3, "核实结果"): "cleared", (3, "核实说明"): '="已迁出"'}
    )
    result = run(runner, "verify", "import", path, "-m", manifest)
    assert result.exit_code == 2, result.output
    assert f"{path}: sheet '全部': row 3, column 核实说明 (reason), cell J3: a formula" in (
        result.output
    )
    assert _stored(manifest) == []


def test_formula_with_a_computed_value_is_read_as_that_value(runner, audited, tmp_path) -> None:
    """A file saved by Excel keeps each formula's last value: that is what the cadre saw."""
    manifest, cases = audited
    path = tmp_path / "back.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("全部")
    ws.write_row(0, 0, ["运行编号", "疑点编号", "核实结果", "核实说明"])
    ws.write_row(1, 0, [cases[0]["run_id"], cases[0]["case_id"]])
    ws.write_formula(1, 2, '=IF(1,"属实","")', None, "属实")
    wb.close()
    result = run(runner, "verify", "import", path, "-m", manifest)
    assert result.exit_code == 0, result.output
    assert "imported 1 outcomes" in result.output and "confirmed 1" in result.output
    assert [(r[0], r[1]) for r in _stored(manifest)] == [(cases[0]["case_id"], "confirmed")]


def _outcomes_csv(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    write_csv(path, ["run_id", "case_id", "outcome", "reason"], rows, "utf-8-sig")
    return path


def test_same_case_with_different_outcomes_names_both_rows(runner, audited, tmp_path) -> None:
    manifest, cases = audited
    run_id, case_id = cases[0]["run_id"], cases[0]["case_id"]
    path = _outcomes_csv(
        tmp_path / "back.csv",
        [
            (run_id, case_id, "confirmed", ""),
            (run_id, cases[1]["case_id"], "pending", ""),
            (run_id, case_id, "cleared", "已迁出"),
        ],
    )
    result = run(runner, "verify", "import", path, "-m", manifest)
    assert result.exit_code == 2, result.output
    assert (
        f"{path}: row 4, column 核实结果 (outcome): case {case_id} is here 'cleared' (已迁出) "
        f"but 'confirmed' (no reason) at {path}: row 2"
    ) in result.output
    assert _stored(manifest) == []


def test_same_case_with_different_reasons_is_an_error(runner, audited, tmp_path) -> None:
    manifest, cases = audited
    run_id, case_id = cases[0]["run_id"], cases[0]["case_id"]
    path = _outcomes_csv(
        tmp_path / "back.csv",
        [(run_id, case_id, "cleared", "已迁出"), (run_id, case_id, "cleared", "车辆已转让")],
    )
    result = run(runner, "verify", "import", path, "-m", manifest)
    assert result.exit_code == 2, result.output
    assert (
        f"{path}: row 3, column 核实结果 (outcome): case {case_id} is here 'cleared' (车辆已转让) "
        f"but 'cleared' (已迁出) at {path}: row 2"
    ) in result.output
    assert _stored(manifest) == []


def test_same_case_twice_with_the_same_answer_is_stored_once(runner, audited, tmp_path) -> None:
    manifest, cases = audited
    run_id, case_id = cases[0]["run_id"], cases[0]["case_id"]
    path = _outcomes_csv(
        tmp_path / "back.csv",
        [(run_id, case_id, "cleared", "已迁出"), (run_id, case_id, "不属实", " 已迁出 ")],
    )
    result = run(runner, "verify", "import", path, "-m", manifest)
    assert result.exit_code == 0, result.output
    assert "imported 1 outcomes" in result.output and "cleared 1" in result.output
    assert _stored(manifest) == [(case_id, "cleared", "已迁出", f"{path}: row 2")]


def test_same_case_on_two_sheets_with_different_outcomes(runner, audited, tmp_path) -> None:
    """The case appears on the 'New' sheet and on its rule's sheet; both filled, differently."""
    manifest, cases = audited
    path = tmp_path / "back.xlsx"
    wb = openpyxl.Workbook()
    first = wb.active
    first.title = "本次新增 New"
    second = wb.create_sheet("全部")
    for ws, outcome in ((first, "属实"), (second, "待核实")):
        ws.append(["运行编号", "疑点编号", "核实结果", "核实说明"])
        ws.append([cases[2]["run_id"], cases[2]["case_id"], outcome, None])
    wb.save(path)
    result = run(runner, "verify", "import", path, "-m", manifest)
    assert result.exit_code == 2, result.output
    assert (
        f"{path}: sheet '全部': row 2, column 核实结果 (outcome): case {cases[2]['case_id']} is "
        f"here 'pending' (no reason) but 'confirmed' (no reason) at {path}: sheet "
        "'本次新增 New': row 2"
    ) in result.output


def test_reason_neutralised_in_our_csv_is_read_back_as_written(runner, audited, tmp_path) -> None:
    """exceptions.csv puts ' before text starting with = + - @; importing it takes it off."""
    manifest, cases = audited
    run_id, case_id = cases[0]["run_id"], cases[0]["case_id"]
    path = _outcomes_csv(tmp_path / "back.csv", [(run_id, case_id, "cleared", "'-已迁出")])
    result = run(runner, "verify", "import", path, "-m", manifest)
    assert result.exit_code == 0, result.output
    assert _stored(manifest)[0][2] == "-已迁出"
