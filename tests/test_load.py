"""Loading registries: formats, encodings, canonical columns, quarantine and bad input."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest
import xlsxwriter

from conftest import (
    POVERTY_REG,
    POVERTY_ROWS,
    run,
    write_csv,
    write_manifest,
    write_two_sheet_xlsx,
)
from linkaudit import load_manifest, load_workspace
from linkaudit.normalize import check_char


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


# --- values read wrongly without a word (issue #9) ------------------------------------------

PAYROLL_HEADER = ["登记编号", "姓名", "身份证号", "出生日期", "参加工作时间", "月工资"]


def _payroll_reg(path: str, **extra: object) -> dict:
    return {
        "department": "财政局",
        "role": "beneficiaries",
        "path": path,
        "key": "登记编号",
        "fields": {
            "name": "姓名",
            "id_number": "身份证号",
            "birth_date": "出生日期",
            "start_date": "参加工作时间",
            "amount": "月工资",
        },
        **extra,
    }


def _quarantine(db: Path) -> list[tuple]:
    return query(
        db, 'SELECT file, "row", "column", reason FROM quarantine ORDER BY "row", "column"'
    )


def test_short_numbers_in_csv_are_years_and_months_not_serials(tmp_path: Path) -> None:
    rows = [
        ("C1", "韦一", "", "", "2015", "3000"),
        ("C2", "韦二", "", "", "201503", "3000"),
        ("C3", "韦三", "", "", "1998.07", "3000"),
        ("C4", "韦四", "", "", "1998年7月", "3000"),
        ("C5", "韦五", "", "", "1998-07", "3000"),
        ("C6", "韦六", "", "", "２０１５－０３－０２", "3000"),
        ("C7", "韦七", "", "", "850302", "3000"),  # was 4228-01-17
        ("C8", "韦八", "", "", "42064", "3000"),  # text of a serial: not in a CSV
    ]
    path = write_csv(tmp_path / "payroll.csv", PAYROLL_HEADER, rows, "utf-8")
    load_workspace(load_manifest(write_manifest(tmp_path, {"payroll": _payroll_reg(path.name)})))
    db = tmp_path / "ws.duckdb"
    # Before: 1905-07-07, 2451-09-10, 1905-06-20, ..., 4228-01-17, 2015-03-01.
    assert query(db, "SELECT _key, start_date FROM reg_payroll ORDER BY _row") == [
        ("C1", dt.date(2015, 1, 1)),
        ("C2", dt.date(2015, 3, 1)),
        ("C3", dt.date(1998, 7, 1)),
        ("C4", dt.date(1998, 7, 1)),
        ("C5", dt.date(1998, 7, 1)),
        ("C6", dt.date(2015, 3, 2)),
    ]
    assert _quarantine(db) == [
        (str(path), 8, "参加工作时间", "unreadable date: '850302'"),
        (str(path), 9, "参加工作时间", "unreadable date: '42064'"),
    ]
    precision = query(db, "SELECT start_date_precision FROM reg_payroll ORDER BY _row")
    assert [p for (p,) in precision] == ["year", "month", "month", "month", "month", "day"]


def test_declared_excel_serial_column_reads_serials_from_text(tmp_path: Path) -> None:
    rows = [("C1", "韦一", "", "", "42064", "1"), ("C2", "韦二", "", "", "60", "1")]
    path = write_csv(tmp_path / "payroll.csv", PAYROLL_HEADER, rows, "utf-8")
    reg = _payroll_reg(path.name, types={"start_date": "excel_serial"})
    load_workspace(load_manifest(write_manifest(tmp_path, {"payroll": reg})))
    db = tmp_path / "ws.duckdb"
    assert query(db, "SELECT _key, start_date, start_date_precision FROM reg_payroll") == [
        ("C1", dt.date(2015, 3, 1), "day")
    ]
    assert _quarantine(db) == [
        (
            str(path),
            3,
            "参加工作时间",
            "Excel serial 60 is 1900-02-29, a day that does not exist: '60'",
        )
    ]


def _payroll_xlsx(path: Path) -> Path:
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("在编人员")
    ws.write_row(0, 0, PAYROLL_HEADER)
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(1, 0, ["X1", "韦一", "11010519491231002X"])
    ws.write_datetime(1, 3, dt.datetime(1949, 12, 31), date_fmt)
    ws.write_number(1, 4, 42064)  # a serial shown as a number
    ws.write_row(2, 0, ["X2", "韦二"])
    ws.write_number(2, 2, 4.50124198703021e17)  # an ID typed into a number cell
    ws.write_string(2, 4, "1998.07")  # a text cell: the year-month
    ws.write_row(3, 0, ["X3", "韦三", "11010519491231002X"])
    ws.write_number(3, 4, 1998.07)  # a number cell: 1905-06-20 or July 1998?
    ws.write_row(4, 0, ["X4", "韦四", "11010519491231002X"])
    ws.write_string(4, 4, "42064")  # a text cell of digits is no serial
    wb.close()
    return path


def test_xlsx_numeric_cells_are_serials_text_cells_are_not(tmp_path: Path) -> None:
    path = _payroll_xlsx(tmp_path / "payroll.xlsx")
    load_workspace(load_manifest(write_manifest(tmp_path, {"payroll": _payroll_reg(path.name)})))
    db = tmp_path / "ws.duckdb"
    stored = query(
        db,
        "SELECT _key, birth_date, start_date, id_status, id_usable, id_birth_date "
        "FROM reg_payroll ORDER BY _row",
    )
    assert stored == [
        ("X1", dt.date(1949, 12, 31), dt.date(2015, 3, 1), "valid", True, dt.date(1949, 12, 31)),
        # The ID's last digits were lost in the float: never linked on.
        ("X2", None, dt.date(1998, 7, 1), "float_damaged", False, None),
    ]
    assert _quarantine(db) == [
        (str(path), 4, "参加工作时间",
         "ambiguous date (a year or year-month, or an Excel serial?): '1998.07'"),
        (str(path), 5, "参加工作时间", "unreadable date: '42064'"),
    ]  # fmt: skip
    precision = query(db, "SELECT start_date_precision FROM reg_payroll ORDER BY _row")
    assert precision == [("day",), ("month",)]


def test_department_birth_date_of_month_precision_does_not_override_the_id(
    tmp_path: Path,
) -> None:
    id_1985 = "450124198504095228"[:17] + check_char("45012419850409522")
    rows = [
        ("B1", "韦一", id_1985, "1985.04", "", ""),  # agrees with the ID, says less
        ("B2", "韦二", id_1985, "1990", "", ""),  # disagrees: the ID's date stays
        ("B3", "韦三", "", "1990.05", "", ""),  # no ID: the month is all there is
        ("B4", "韦四", id_1985, "1985-04-10", "", ""),  # a day: the department's wins
        ("B5", "韦五", id_1985, "", "", ""),
    ]
    path = write_csv(tmp_path / "payroll.csv", PAYROLL_HEADER, rows, "utf-8")
    load_workspace(load_manifest(write_manifest(tmp_path, {"payroll": _payroll_reg(path.name)})))
    db = tmp_path / "ws.duckdb"
    born = dt.date(1985, 4, 9)
    # Before: 1985-04-01, 1990-01-01 and 1990-05-01 replaced the ID's date.
    assert query(db, "SELECT _key, birth_date, id_birth_date FROM reg_payroll ORDER BY _row") == [
        ("B1", born, born),
        ("B2", born, born),
        ("B3", dt.date(1990, 5, 1), None),
        ("B4", dt.date(1985, 4, 10), born),
        ("B5", born, born),
    ]
    stored = query(
        db,
        "SELECT _key, birth_date, birth_date_precision, birth_date_mismatch, id_birth_date "
        "FROM reg_payroll ORDER BY _row",
    )
    assert stored == [
        ("B1", born, "day", False, born),
        ("B2", born, "day", True, born),
        ("B3", dt.date(1990, 5, 1), "month", False, None),
        ("B4", dt.date(1985, 4, 10), "day", True, born),
        ("B5", born, "day", False, born),
    ]


def test_id_number_in_an_amount_column_is_quarantined_not_a_crash(runner, tmp_path: Path) -> None:
    # Issue #9: an 18-digit number (>= 1e16) in an amount column ended the load with exit 3.
    rows = [
        ("A1", "韦一", "", "", "", "3,000"),
        ("A2", "韦二", "", "", "", "450124198703021234"),
    ]
    path = write_csv(tmp_path / "payroll.csv", PAYROLL_HEADER, rows, "utf-8")
    manifest = write_manifest(tmp_path, {"payroll": _payroll_reg(path.name)})
    result = run(runner, "load", manifest)
    assert result.exit_code == 0, result.output
    assert "450124198703021234" not in result.output
    db = tmp_path / "ws.duckdb"
    assert query(db, "SELECT _key, amount FROM reg_payroll") == [("A1", Decimal("3000.0000"))]
    assert _quarantine(db) == [
        (str(path), 3, "月工资", "amount too large for DECIMAL(20,4): '450124********1234'")
    ]
    assert query(db, "SELECT rows_read, rows_loaded, rows_quarantined FROM load_log") == [(2, 1, 1)]


def test_future_birth_uses_the_manifest_as_of(tmp_path: Path) -> None:
    born_2016 = "45012420160101001"
    number = born_2016 + check_char(born_2016)
    rows = [("F1", "韦一", number, "", "", "")]
    path = write_csv(tmp_path / "payroll.csv", PAYROLL_HEADER, rows, "utf-8")
    reg = {"payroll": _payroll_reg(path.name)}
    db = tmp_path / "ws.duckdb"
    report = load_workspace(load_manifest(write_manifest(tmp_path, reg)))
    assert query(db, "SELECT id_status, id_usable, id_suspect, id_birth_date FROM reg_payroll") == [
        ("future_birth", True, True, None)
    ]  # before: valid, born 2016-01-01
    assert report.registries[0].id_status["future_birth"] == 1
    # A later audit date makes the same number valid; an unchanged file is reloaded for it.
    later = load_manifest(write_manifest(tmp_path, reg, as_of=dt.date(2016, 6, 30)))
    report = load_workspace(later, force=False)
    assert not report.registries[0].skipped
    assert query(db, "SELECT id_status FROM reg_payroll") == [("valid",)]
