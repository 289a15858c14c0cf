"""Loading registries: formats, encodings, canonical columns, quarantine and bad input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest

from conftest import (
    POVERTY_REG,
    POVERTY_ROWS,
    run,
    write_csv,
    write_manifest,
    write_two_sheet_xlsx,
)
from linkaudit import load_manifest, load_workspace


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_gbk_csv_with_chinese_headers_loads_normalised(runner, poverty_workspace: Path) -> None:
    result = run(runner, "load", poverty_workspace)
    assert result.exit_code == 0, result.output
    assert "poverty" in result.output
    db = poverty_workspace.parent / "ws.duckdb"
    rows = query(
        db,
        "SELECT _key, household, name, id_number, id_status, income_per_capita, exit_year "
        "FROM reg_poverty ORDER BY _row",
    )
    assert rows[0][:3] == ("P001", "H01", "韦小宝")
    assert rows[1][2] == "蓝玉"  # stray space removed
    assert rows[1][3:5] == ("310112198504095227", "upgraded_15")
    assert rows[2][2] == "黄国荣"  # traditional -> simplified
    assert rows[2][3].endswith("X")  # lower-case x upper-cased
    assert rows[3][4] == "missing"
    assert [r[5] for r in rows] == [2600.0, 2600.0, 3100.0, 3100.0]
    assert [r[6] for r in rows] == [2014, 2014, None, None]
    # raw columns are kept as read, with the row number
    raw = query(db, 'SELECT _row, "姓名" FROM raw_poverty ORDER BY _row')
    assert raw[1] == (3, "蓝 玉")
    log = query(db, "SELECT encoding, rows_read, rows_loaded, rows_quarantined FROM load_log")
    assert log == [("gb18030", 4, 4, 0)]


def test_load_json_report_counts_id_statuses(runner, poverty_workspace: Path) -> None:
    result = run(runner, "load", poverty_workspace, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    reg = report["registries"][0]
    assert (reg["rows_read"], reg["rows_loaded"], reg["rows_quarantined"]) == (4, 4, 0)
    assert reg["id_status"]["upgraded_15"] == 1
    assert reg["id_status"]["missing"] == 1
    assert sum(reg["id_status"].values()) == 4


def test_utf8_bom_csv(tmp_path: Path) -> None:
    write_csv(
        tmp_path / "poverty.csv",
        ["人员编号", "户编号", "姓名", "证件号码", "人均纯收入(元)", "脱贫年度"],
        POVERTY_ROWS,
        "utf-8-sig",
    )
    manifest = load_manifest(write_manifest(tmp_path, {"poverty": dict(POVERTY_REG)}))
    report = load_workspace(manifest)
    assert report.registries[0].encoding == "utf-8-sig"
    assert report.registries[0].rows_loaded == 4
    names = query(tmp_path / "ws.duckdb", "SELECT name FROM reg_poverty ORDER BY _row")
    assert [n[0] for n in names] == ["韦小宝", "蓝玉", "黄国荣", "覃明"]


def test_explicit_encoding_wins(tmp_path: Path) -> None:
    write_csv(tmp_path / "p.csv", ["人员编号", "户编号", "姓名"], [("P1", "H1", "韦一")], "gbk")
    reg = {**POVERTY_REG, "path": "p.csv", "encoding": "utf-8", "fields": {"name": "姓名"}}
    manifest = load_manifest(write_manifest(tmp_path, {"poverty": reg}))
    from linkaudit.errors import InputFileError

    with pytest.raises(InputFileError, match="cannot be decoded as utf-8"):
        load_workspace(manifest)


def _vehicles_reg(path: str = "vehicles.xlsx") -> dict:
    return {
        "department": "公安交警",
        "path": path,
        "sheet": "车辆",
        "header_row": 2,
        "key": "登记编号",
        "fields": {
            "name": "机动车所有人",
            "id_number": "身份证明号码",
            "vehicle_type": "车辆类型",
            "registered_on": "初次登记日期",
        },
    }


def test_xlsx_named_sheet_and_header_row(tmp_path: Path, poverty_workspace: Path) -> None:
    root = poverty_workspace.parent
    write_two_sheet_xlsx(root / "vehicles.xlsx")
    manifest = write_manifest(root, {"poverty": dict(POVERTY_REG), "vehicles": _vehicles_reg()})
    report = load_workspace(load_manifest(manifest))
    vehicles = report.registries[1]
    assert (vehicles.rows_read, vehicles.rows_loaded, vehicles.rows_quarantined) == (3, 3, 0)
    rows = query(
        root / "ws.duckdb",
        "SELECT _row, _key, name, vehicle_type, registered_on FROM reg_vehicles ORDER BY _row",
    )
    assert rows == [
        (3, "V1", "韦小宝", "小型轿车", dt.date(2013, 5, 7)),
        (4, "V2", "蓝玉", "普通二轮摩托车", dt.date(2014, 3, 2)),
        (5, "V3", "黄国荣", "轮式拖拉机", dt.date(2014, 3, 2)),
    ]


def test_xlsx_first_sheet_by_default(tmp_path: Path) -> None:
    write_two_sheet_xlsx(tmp_path / "v.xlsx", data_first=True)
    reg = {**_vehicles_reg("v.xlsx"), "role": "beneficiaries"}
    del reg["sheet"]
    report = load_workspace(load_manifest(write_manifest(tmp_path, {"vehicles": reg})))
    assert report.registries[0].rows_loaded == 3


def test_xlsx_missing_sheet_lists_sheets(runner, tmp_path: Path) -> None:
    write_two_sheet_xlsx(tmp_path / "v.xlsx")
    reg = {**_vehicles_reg("v.xlsx"), "role": "beneficiaries", "sheet": "汽车"}
    result = run(runner, "load", write_manifest(tmp_path, {"vehicles": reg}))
    assert result.exit_code == 2
    assert "sheet '汽车' not found; sheets are: 说明, 车辆" in result.output


def test_ragged_csv_row_is_named(runner, tmp_path: Path) -> None:
    (tmp_path / "poverty.csv").write_text(
        "人员编号,户编号,姓名\nP1,H1,韦一\nP2,H1,韦二,多余\n", encoding="utf-8"
    )
    reg = {**POVERTY_REG, "fields": {"name": "姓名"}}
    result = run(runner, "load", write_manifest(tmp_path, {"poverty": reg}))
    assert result.exit_code == 2
    assert "row 3: 4 fields where the header has 3" in result.output


def test_parquet_and_jsonl(tmp_path: Path, poverty_workspace: Path) -> None:
    root = poverty_workspace.parent
    pl.DataFrame(
        {
            "流水号": ["M1", "M2"],
            "姓名": ["韦小宝", "蓝玉"],
            "身份证号": ["450124198504095224", None],
            "个人自付": [1234.5, 88.0],
            "结算日期": [dt.date(2015, 6, 1), dt.date(2015, 7, 1)],
        }
    ).write_parquet(root / "medical.parquet")
    (root / "deaths.jsonl").write_text(
        '{"编号": "D1", "姓名": "覃明", "死亡日期": "2015年3月2日"}\n\n'
        '{"编号": "D2", "姓名": "蓝玉", "死亡日期": "20150401"}\n',
        encoding="utf-8",
    )
    manifest = write_manifest(
        root,
        {
            "poverty": dict(POVERTY_REG),
            "medical": {
                "path": "medical.parquet",
                "key": "流水号",
                "fields": {
                    "name": "姓名",
                    "id_number": "身份证号",
                    "self_paid": "个人自付",
                    "settled_on": "结算日期",
                },
            },
            "deaths": {
                "path": "deaths.jsonl",
                "key": "编号",
                "fields": {"name": "姓名", "death_date": "死亡日期"},
            },
        },
    )
    load_workspace(load_manifest(manifest))
    db = root / "ws.duckdb"
    assert query(db, "SELECT _key, self_paid, settled_on FROM reg_medical ORDER BY _row") == [
        ("M1", 1234.5, dt.date(2015, 6, 1)),
        ("M2", 88.0, dt.date(2015, 7, 1)),
    ]
    # JSON lines keep the file's line numbers (line 2 is blank).
    assert query(db, "SELECT _row, death_date FROM reg_deaths ORDER BY _row") == [
        (1, dt.date(2015, 3, 2)),
        (3, dt.date(2015, 4, 1)),
    ]


def test_unreadable_value_is_quarantined_with_file_row_column(tmp_path: Path) -> None:
    rows = [*POVERTY_ROWS, ("P005", "H03", "潘五", "", "about 3000", "2014")]
    write_csv(
        tmp_path / "poverty.csv",
        ["人员编号", "户编号", "姓名", "证件号码", "人均纯收入(元)", "脱贫年度"],
        rows,
        "utf-8",
    )
    manifest = load_manifest(write_manifest(tmp_path, {"poverty": dict(POVERTY_REG)}))
    report = load_workspace(manifest)
    assert (report.registries[0].rows_loaded, report.registries[0].rows_quarantined) == (4, 1)
    q = query(
        tmp_path / "ws.duckdb", 'SELECT registry, file, "row", "column", reason FROM quarantine'
    )
    assert q == [
        (
            "poverty",
            str(tmp_path / "poverty.csv"),
            6,
            "人均纯收入(元)",
            "unreadable amount: 'about 3000'",
        )
    ]


def test_reload_of_unchanged_input_gives_identical_tables(poverty_workspace: Path) -> None:
    manifest = load_manifest(poverty_workspace)
    load_workspace(manifest)
    first = query(manifest.database, "SELECT * FROM reg_poverty ORDER BY _row")
    load_workspace(manifest)
    second = query(manifest.database, "SELECT * FROM reg_poverty ORDER BY _row")
    assert first == second and len(first) == 4


def test_inputs_are_not_modified(poverty_workspace: Path) -> None:
    csv = poverty_workspace.parent / "poverty.csv"
    before = (csv.read_bytes(), csv.stat().st_mtime_ns)
    load_workspace(load_manifest(poverty_workspace))
    assert (csv.read_bytes(), csv.stat().st_mtime_ns) == before


# -- bad input: exact exit code and message ------------------------------------------------


def test_missing_file(runner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, {"poverty": {**POVERTY_REG, "path": "nope.csv"}})
    result = run(runner, "load", manifest)
    assert result.exit_code == 2
    assert f"{tmp_path / 'nope.csv'}: file not found (registries.poverty.path)" in result.output
    assert "Traceback" not in result.output


def test_unknown_column_in_fields(runner, poverty_workspace: Path) -> None:
    reg = {**POVERTY_REG, "fields": {**POVERTY_REG["fields"], "village": "行政村"}}
    manifest = write_manifest(poverty_workspace.parent, {"poverty": reg})
    result = run(runner, "load", manifest)
    assert result.exit_code == 2
    assert "column not found: '行政村' (registries.poverty.fields.village)" in result.output
    assert "hint" in result.output and "人员编号" in result.output


def test_undecodable_bytes_name_the_row(runner, tmp_path: Path) -> None:
    good = "人员编号,户编号,姓名\nP1,H1,韦一\n".encode()
    (tmp_path / "poverty.csv").write_bytes(good + b"P2,H1,\xff\xfe\xff\n")
    reg = {**POVERTY_REG, "fields": {"name": "姓名"}}
    manifest = write_manifest(tmp_path, {"poverty": reg})
    result = run(runner, "load", manifest)
    assert result.exit_code == 2
    assert "row 3" in result.output and "cannot be decoded as utf-8 or gb18030" in result.output
    assert "encoding" in result.output  # the hint names the setting to use


def test_empty_file(runner, tmp_path: Path) -> None:
    (tmp_path / "poverty.csv").write_bytes(b"")
    result = run(runner, "load", write_manifest(tmp_path, {"poverty": dict(POVERTY_REG)}))
    assert result.exit_code == 2
    assert f"{tmp_path / 'poverty.csv'}: the file is empty" in result.output


def test_header_only_file(runner, tmp_path: Path) -> None:
    (tmp_path / "poverty.csv").write_text("人员编号,户编号,姓名\n", encoding="utf-8")
    reg = {**POVERTY_REG, "fields": {"name": "姓名"}}
    result = run(runner, "load", write_manifest(tmp_path, {"poverty": reg}))
    assert result.exit_code == 2
    assert "has a header but no data rows" in result.output


def test_duplicate_record_keys(runner, tmp_path: Path) -> None:
    rows = [*POVERTY_ROWS, ("P002", "H09", "重复", "", "1", "")]
    write_csv(
        tmp_path / "poverty.csv",
        ["人员编号", "户编号", "姓名", "证件号码", "人均纯收入(元)", "脱贫年度"],
        rows,
        "utf-8",
    )
    result = run(runner, "load", write_manifest(tmp_path, {"poverty": dict(POVERTY_REG)}))
    assert result.exit_code == 2
    assert "column '人员编号': 1 duplicate record key, e.g. 'P002' at rows 3, 6" in result.output


def test_debug_shows_traceback(runner, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, {"poverty": {**POVERTY_REG, "path": "nope.csv"}})
    result = run(runner, "--debug", "load", manifest)
    assert result.exit_code != 0
    assert result.exception is not None and "file not found" in str(result.exception)


def test_duplicate_header_is_refused(runner, tmp_path: Path) -> None:
    (tmp_path / "poverty.csv").write_text(
        "人员编号,户编号,姓名,姓名\nP1,H1,韦一,韦二\n", encoding="utf-8"
    )
    reg = {**POVERTY_REG, "fields": {"name": "姓名"}}
    result = run(runner, "load", write_manifest(tmp_path, {"poverty": reg}))
    assert result.exit_code == 2
    assert "row 1: column '姓名' appears twice in the header" in result.output


def test_jsonl_bad_line_is_named(runner, tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text(
        '{"k": "1", "户编号": "H1", "姓名": "韦一"}\n[1, 2]\n', encoding="utf-8"
    )
    reg = {**POVERTY_REG, "path": "p.jsonl", "key": "k", "fields": {"name": "姓名"}}
    result = run(runner, "load", write_manifest(tmp_path, {"poverty": reg}))
    assert result.exit_code == 2
    assert "row 2: not a JSON object" in result.output


def test_duplicate_id_keys_are_masked_in_the_message(runner, tmp_path: Path) -> None:
    rows = [("450124198504095224", "H1", "韦一"), ("450124198504095224", "H2", "韦二")]
    write_csv(tmp_path / "poverty.csv", ["证件号码", "户编号", "姓名"], rows, "utf-8")
    reg = {**POVERTY_REG, "key": "证件号码", "fields": {"name": "姓名"}}
    result = run(runner, "load", write_manifest(tmp_path, {"poverty": reg}))
    assert result.exit_code == 2
    assert "duplicate record key" in result.output
    assert "450124198504095224" not in result.output and "450124********5224" in result.output


def test_markup_like_text_is_printed_as_is(runner, tmp_path: Path) -> None:
    reg = {**POVERTY_REG, "fields": {**POVERTY_REG["fields"], "name": "[/]姓名[bold]"}}
    write_csv(
        tmp_path / "poverty.csv", ["人员编号", "户编号", "姓名"], [("P1", "H1", "韦一")], "utf-8"
    )
    result = run(runner, "load", write_manifest(tmp_path, {"poverty": reg}))
    assert result.exit_code == 2
    assert "'[/]姓名[bold]'" in result.output
