"""Each department's own file: headers, value formats, file format and encoding; the manifest.

Every writer is byte-deterministic for the same input: fixed column order, rows in the order
given, no timestamps (the xlsx creation date is fixed).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import xlsxwriter

from linkaudit.sample import _pools

FIXED_CREATED = datetime.datetime(2016, 1, 15, 9, 0, 0)


def slash_date(col: pl.Expr) -> pl.Expr:
    """2013/5/7"""
    return pl.format("{}/{}/{}", col.dt.year(), col.dt.month(), col.dt.day())


def dot_date(col: pl.Expr) -> pl.Expr:
    """1950.3.2"""
    return pl.format("{}.{}.{}", col.dt.year(), col.dt.month(), col.dt.day())


def chinese_date(col: pl.Expr) -> pl.Expr:
    """2015年3月2日"""
    return pl.format("{}年{}月{}日", col.dt.year(), col.dt.month(), col.dt.day())


def compact_date(col: pl.Expr) -> pl.Expr:
    """20150302"""
    return col.dt.strftime("%Y%m%d")


def iso_date(col: pl.Expr) -> pl.Expr:
    """2015-03-02"""
    return col.dt.strftime("%Y-%m-%d")


def plain_amount(cents: pl.Expr) -> pl.Expr:
    """2736.00"""
    return pl.format("{}.{}", cents // 100, (cents % 100).cast(pl.String).str.zfill(2))


def grouped_amount(cents: pl.Expr) -> pl.Expr:
    """1,234.50 (thousands separated; amounts below a million yuan)."""
    yuan = cents // 100
    fraction = (cents % 100).cast(pl.String).str.zfill(2)
    thousands = pl.format(
        "{},{}.{}", yuan // 1000, (yuan % 1000).cast(pl.String).str.zfill(3), fraction
    )
    return pl.when(yuan >= 1000).then(thousands).otherwise(pl.format("{}.{}", yuan, fraction))


@dataclass(frozen=True)
class Department:
    """How one department exports its registry."""

    registry: str
    department: str
    filename: str
    key: str
    key_prefix: str
    name: str
    id_number: str
    birth_date: str
    birth_fill: float  # share of rows with a birth date when the ID is present
    fields: dict[str, str]  # canonical field → column, beyond identity
    columns: Callable[[], list[pl.Expr]]  # output columns, from the internal frame
    extra: dict[str, object]  # further manifest settings (sheet, header_row, encoding, ...)
    identity_extra: dict[str, str]  # sex/address columns


def _sex() -> pl.Expr:
    return pl.when(pl.col("male")).then(pl.lit("男")).otherwise(pl.lit("女"))


def _identity(dept: Department, birth: Callable[[pl.Expr], pl.Expr] | None) -> list[pl.Expr]:
    birth_col = pl.col("birth_out")
    return [
        pl.col("record_key").alias(dept.key),
        pl.col("name_out").alias(dept.name),
        pl.col("id_out").alias(dept.id_number),
        (birth(birth_col) if birth else birth_col).alias(dept.birth_date),
    ]


def _payroll() -> list[pl.Expr]:
    d = DEPARTMENTS["payroll"]
    return [
        *_identity(d, None)[:3],
        _sex().alias("性别"),
        pl.col("birth_out").alias(d.birth_date),
        pl.col("employer").alias("单位名称"),
        pl.col("employer_type").alias("单位性质"),
        pl.col("employment_status").alias("人员状态"),
        compact_date(pl.col("start_date")).alias("参加工作时间"),
    ]


def _vehicles() -> list[pl.Expr]:
    d = DEPARTMENTS["vehicles"]
    key, name, id_number, birth = _identity(d, slash_date)
    return [
        key,
        pl.col("plate").alias("号牌号码"),
        name,
        id_number,
        birth,
        pl.col("address").alias("住所地址"),
        pl.col("vehicle_type").alias("车辆类型"),
        pl.col("vehicle_status").alias("机动车状态"),
        slash_date(pl.col("registered_on")).alias("初次登记日期"),
    ]


def _property() -> list[pl.Expr]:
    d = DEPARTMENTS["property"]
    key, name, id_number, birth = _identity(d, None)
    return [
        key,
        name,
        id_number,
        birth,
        pl.col("location").alias("坐落"),
        pl.col("property_type").alias("房屋类型"),
        pl.col("area").alias("建筑面积"),
        pl.col("registered_on").alias("登记日期"),
    ]


def _business() -> list[pl.Expr]:
    d = DEPARTMENTS["business"]
    key, name, id_number, birth = _identity(d, chinese_date)
    return [
        key,
        pl.col("entity_name").alias("主体名称"),
        pl.col("entity_type").alias("主体类型"),
        name,
        id_number,
        birth,
        pl.col("entity_status").alias("登记状态"),
        chinese_date(pl.col("registered_on")).alias("成立日期"),
    ]


def _deaths() -> list[pl.Expr]:
    d = DEPARTMENTS["deaths"]
    key, name, id_number, birth = _identity(d, dot_date)
    return [
        key,
        name,
        _sex().alias("性别"),
        id_number,
        birth,
        pl.col("address").alias("户籍地址"),
        iso_date(pl.col("death_date")).alias("死亡日期"),
    ]


def _medical() -> list[pl.Expr]:
    d = DEPARTMENTS["medical"]
    key, name, id_number, birth = _identity(d, compact_date)
    return [
        key,
        name,
        id_number,
        birth,
        pl.col("provider").alias("就诊机构"),
        pl.col("medical_kind").alias("医疗类别"),
        grouped_amount(pl.col("total_cost")).alias("医疗总费用"),
        grouped_amount(pl.col("self_paid")).alias("个人自付"),
        iso_date(pl.col("settled_on")).alias("结算日期"),
    ]


DEPARTMENTS: dict[str, Department] = {
    "payroll": Department(
        "payroll", "财政局", "payroll.xlsx", "登记编号", "CZ", "姓名", "身份证号", "出生日期", 1.0,
        {"employer": "单位名称", "employer_type": "单位性质", "employment_status": "人员状态", "start_date": "参加工作时间"},
        _payroll, {"sheet": "在编人员", "header_row": 2}, {"sex": "性别"},
    ),
    "vehicles": Department(
        "vehicles", "公安交警", "vehicles.csv", "流水号", "JJ", "机动车所有人", "身份证明号码", "出生日期", 0.5,
        {"plate": "号牌号码", "vehicle_type": "车辆类型", "vehicle_status": "机动车状态", "registered_on": "初次登记日期"},
        _vehicles, {"encoding": "gbk"}, {"address": "住所地址"},
    ),
    "property": Department(
        "property", "不动产登记中心", "property.parquet", "不动产单元号", "BDC", "权利人", "证件号码", "出生日期", 0.8,
        {"location": "坐落", "property_type": "房屋类型", "area": "建筑面积", "registered_on": "登记日期"},
        _property, {}, {},
    ),
    "business": Department(
        "business", "市场监督管理局", "business.jsonl", "注册号", "GS", "经营者姓名", "身份证号码", "出生日期", 0.5,
        {"entity_name": "主体名称", "entity_type": "主体类型", "entity_status": "登记状态", "registered_on": "成立日期"},
        _business, {"encoding": "utf-8"}, {},
    ),
    "deaths": Department(
        "deaths", "民政局", "deaths.csv", "登记编号", "MZ", "姓名", "公民身份号码", "出生日期", 1.0,
        {"death_date": "死亡日期"},
        _deaths, {"encoding": "auto"}, {"sex": "性别", "address": "户籍地址"},
    ),
    "medical": Department(
        "medical", "医疗保障局", "medical.csv", "结算流水号", "YB", "姓名", "身份证号码", "出生日期", 0.7,
        {"self_paid": "个人自付", "settled_on": "结算日期"},
        _medical, {"encoding": "utf-8"}, {},
    ),
}  # fmt: skip

POVERTY_COLUMNS = {
    "key": "人员编号",
    "household": "户编号",
    "name": "姓名",
    "sex": "性别",
    "ethnicity": "民族",
    "id_number": "证件号码",
    "relation": "与户主关系",
    "township": "乡镇",
    "village": "行政村",
    "household_size": "家庭人口数",
    "income_per_capita": "人均纯收入(元)",
    "identified_year": "识别年度",
    "poverty_status": "贫困户状态",
    "exit_year": "脱贫年度",
}


def write_csv(frame: pl.DataFrame, path: Path, encoding: str) -> None:
    """CSV in UTF-8, UTF-8 with BOM, or GBK (as the department's system exports it)."""
    if encoding in ("utf-8", "utf-8-sig"):
        frame.write_csv(path, null_value="", include_bom=encoding == "utf-8-sig")
    else:
        path.write_bytes(frame.write_csv(null_value="").encode(encoding))


def write_payroll_xlsx(frame: pl.DataFrame, path: Path) -> None:
    """A workbook as the finance bureau sends it: a notes sheet first, then the data sheet with
    a title row above the header; birth dates are native Excel dates, IDs text."""
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    workbook.set_properties(
        {"title": "财政供养人员信息", "author": "马山县财政局", "created": FIXED_CREATED}
    )
    notes = workbook.add_worksheet("说明")
    for row, line in enumerate(
        (
            "马山县财政供养人员信息表",
            "数据来源：马山县财政局工资统发系统",
            "导出日期：2016年1月15日",
            "说明：人员状态分为在职、离职、退休；参加工作时间格式为YYYYMMDD。",
        )
    ):
        notes.write_string(row, 0, line)
    sheet = workbook.add_worksheet("在编人员")
    bold = workbook.add_format({"bold": True})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_string(0, 0, "马山县财政供养人员花名册（截至2015年12月31日）", bold)
    sheet.write_row(1, 0, frame.columns, bold)
    birth_index = frame.columns.index("出生日期")
    for offset, values in enumerate(frame.iter_rows()):
        row = offset + 2
        for col, value in enumerate(values):
            if value is None:
                continue
            if col == birth_index:
                sheet.write_datetime(
                    row, col, datetime.datetime.combine(value, datetime.time()), date_format
                )
            else:
                sheet.write_string(row, col, str(value))
    workbook.close()


def write_jsonl(frame: pl.DataFrame, path: Path) -> None:
    """JSON lines, UTF-8, one object per record, keys in column order."""
    path.write_bytes(frame.write_ndjson().encode("utf-8"))


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Parquet with native dates and floats."""
    frame.write_parquet(path, compression="zstd", statistics=False)


def manifest_text() -> str:
    """The workspace manifest, in the loader's schema; paths relative to it."""
    lines = [
        "# Synthetic Mashan county (马山县) scenario written by `linkaudit sample mashan`.",
        "# Every person and record is invented; truth/ holds the planted answers.",
        "database: linkaudit.duckdb",
        "as_of: 2015-12-31",
        "output: out/",
        "parameters:",
        f"  county_seat: {_pools.COUNTY_SEAT}",
        "  poverty_line: {2011: 2536, 2012: 2625, 2013: 2736, 2014: 2736, 2015: 2855, 2016: 2952}",
        "registries:",
        "  poverty:",
        "    department: 扶贫办",
        "    role: beneficiaries",
        "    path: data/poverty.csv",
        "    encoding: utf-8",
        f"    key: {POVERTY_COLUMNS['key']}",
        f"    household: {POVERTY_COLUMNS['household']}",
        "    fields:",
    ]
    for field in ("name", "id_number", "sex", "relation", "township", "village", "household_size",
                  "income_per_capita", "identified_year", "poverty_status", "exit_year"):  # fmt: skip
        lines.append(f"      {field}: {POVERTY_COLUMNS[field]}")
    for dept in DEPARTMENTS.values():
        lines += [
            f"  {dept.registry}:",
            f"    department: {dept.department}",
            f"    path: data/{dept.filename}",
        ]
        lines += [f"    {k}: {v}" for k, v in dept.extra.items()]
        lines += [f"    key: {dept.key}", "    fields:"]
        identity = {"name": dept.name, "id_number": dept.id_number, "birth_date": dept.birth_date}
        for field, column in {**identity, **dept.identity_extra, **dept.fields}.items():
            lines.append(f"      {field}: {column}")
    return "\n".join(lines) + "\n"


def write_json(data: object, path: Path) -> None:
    """Pretty JSON, UTF-8, stable key order as given."""
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
