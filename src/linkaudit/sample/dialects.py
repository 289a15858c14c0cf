"""Other counties' layouts of the Mashan scenario: `linkaudit sample mashan --dialect N`.

A dialect rewrites the default scenario's department files the way another county's systems
export them (other header synonyms, encodings, file formats, department codes, a title row
above the header, a register without its own person key) and removes the manifest: a user of
such data starts with `linkaudit init`. Only the layout changes, never a value's meaning: each
code stands for exactly one canonical term (``CODES``), so the planted truth (truth/) still
holds. Where the register loses its person key, truth/register_rows.csv maps each truth
person_key to the register's row number, so an evaluation can translate the keys.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import fastexcel
import polars as pl
import xlsxwriter

from linkaudit.sample._write import FIXED_CREATED, write_csv

__all__ = ["CODES", "DIALECTS", "Dialect", "FileLayout", "apply_dialect"]

#: Department codes a dialect writes, per canonical field: code → the canonical term. A user
#: of the dialect's files would learn these from the department (the test fills them in).
CODES: dict[str, dict[str, str]] = {
    "vehicle_status": {"A": "正常", "E": "注销", "M": "报废"},
    "entity_status": {"1": "存续", "2": "在业", "3": "吊销", "4": "注销"},
}
_SEX_CODES = {"男": "1", "女": "2"}
# The default files' text columns that hold each coded field.
_CODED_COLUMNS = {
    "vehicles": ("机动车状态", "vehicle_status"),
    "business": ("登记状态", "entity_status"),
}


@dataclass(frozen=True)
class FileLayout:
    """How one registry's file is written in a dialect."""

    filename: str
    #: csv (with `encoding`), xlsx, parquet or jsonl.
    format: str
    encoding: str = "utf-8"
    #: Default header → this dialect's header.
    renames: dict[str, str] = field(default_factory=dict)
    #: Default columns left out.
    drop: tuple[str, ...] = ()
    #: A title line above the header (csv and xlsx).
    title: str | None = None
    sheet: str = "Sheet1"
    #: A notes sheet in front of the data sheet (xlsx).
    notes: tuple[str, ...] = ()
    codes: bool = False
    sex_codes: bool = False


@dataclass(frozen=True)
class Dialect:
    number: int
    description: str
    files: dict[str, FileLayout]


DIALECTS: dict[int, Dialect] = {
    1: Dialect(
        1,
        "GBK exports with a title row above the register's header, full-width brackets, "
        "vehicle and business status codes, sex as 1/2, the vehicle file as a workbook",
        {
            "poverty": FileLayout(
                "poverty.csv", "csv", "gbk",
                {"人员编号": "个人编号", "户编号": "户码", "证件号码": "身份证号码", "乡镇": "乡(镇)",
                 "行政村": "村", "人均纯收入(元)": "人均纯收入（元）", "脱贫年度": "脱贫年份",
                 "贫困户状态": "贫困状态", "识别年度": "识别年份", "家庭人口数": "家庭人口"},
                title="马山县建档立卡贫困人口信息表（截至2015年12月31日）", sex_codes=True,
            ),
            "payroll": FileLayout(
                "payroll.csv", "csv", "gbk",
                {"身份证号": "公民身份号码", "单位名称": "工作单位", "人员状态": "在职状态"},
                sex_codes=True,
            ),
            "vehicles": FileLayout(
                "vehicles.xlsx", "xlsx", renames={"机动车状态": "车辆状态", "号牌号码": "车牌号",
                                                  "初次登记日期": "登记日期"},
                sheet="机动车", codes=True,
            ),
            "property": FileLayout("property.parquet", "parquet", renames={"房屋类型": "房屋性质"}),
            "business": FileLayout(
                "business.csv", "csv", "utf-8-sig",
                {"主体类型": "企业类型", "登记状态": "经营状态", "经营者姓名": "法定代表人"}, codes=True,
            ),
            "deaths": FileLayout("deaths.csv", "csv", "gbk", {"姓名": "死者姓名"}, sex_codes=True),
            "medical": FileLayout("medical.csv", "csv", "gbk", {"个人自付": "自付金额"}),
        },
    ),
    2: Dialect(
        2,
        "a register without its own person key (keyed by the ID number's column, which is not "
        "unique), UTF-8 with BOM, status codes, workbooks with title rows, other synonyms",
        {
            "poverty": FileLayout(
                "poverty.csv", "csv", "utf-8-sig",
                {"证件号码": "公民身份号码", "户编号": "户号", "脱贫年度": "脱贫时间"},
                drop=("人员编号",),
            ),
            "payroll": FileLayout(
                "payroll.xlsx", "xlsx", renames={"身份证号": "证件号"},
                title="财政供养人员名册", sheet="Sheet1",
            ),
            "vehicles": FileLayout(
                "vehicles.csv", "csv", "utf-8", {"号牌号码": "号牌号码"}, codes=True
            ),
            "property": FileLayout(
                "property.csv", "csv", "gbk", {"坐落": "房屋坐落", "房屋类型": "用途"}
            ),
            "business": FileLayout(
                "business.jsonl", "jsonl", renames={"主体类型": "市场主体类型"}, codes=True
            ),
            "deaths": FileLayout(
                "deaths.xlsx", "xlsx", renames={"公民身份号码": "身份证件号码"},
                title="死亡人员登记表", sheet="死亡登记",
            ),
            "medical": FileLayout(
                "medical.csv", "csv", "gbk", {"个人自付": "个人自付金额", "结算日期": "结算时间"}
            ),
        },
    ),
    3: Dialect(
        3,
        "every file a workbook with a title row (some with a notes sheet first), headers the "
        "synonym table does not know for a name and an ID column (found by their values), "
        "vehicle status codes",
        {
            "poverty": FileLayout(
                "poverty.xlsx", "xlsx", renames={"姓名": "人员姓名", "证件号码": "身份证号"},
                title="建档立卡贫困人口", sheet="贫困人口", notes=("填表说明：每人一行。",),
            ),
            "payroll": FileLayout(
                "payroll.xlsx", "xlsx", renames={"参加工作时间": "参加工作日期"},
                title="财政供养人员", sheet="人员",
            ),
            "vehicles": FileLayout(
                "vehicles.xlsx", "xlsx", renames={"流水号": "业务流水号"},
                title="机动车登记信息", codes=True,
            ),
            "property": FileLayout(
                "property.xlsx", "xlsx", renames={"权利人": "持有人"}, title="不动产登记信息"
            ),
            "business": FileLayout(
                "business.xlsx", "xlsx", renames={"主体名称": "企业名称"}, title="市场主体登记信息"
            ),
            "deaths": FileLayout("deaths.xlsx", "xlsx", title="死亡人员信息"),
            "medical": FileLayout(
                "medical.xlsx", "xlsx", renames={"身份证号码": "证照号码"}, title="医疗费用结算"
            ),
        },
    ),
}  # fmt: skip

_DEFAULT_FILES = {
    "poverty": "poverty.csv",
    "payroll": "payroll.xlsx",
    "vehicles": "vehicles.csv",
    "property": "property.parquet",
    "business": "business.jsonl",
    "deaths": "deaths.csv",
    "medical": "medical.csv",
}


def _read_csv(path: Path, encoding: str) -> pl.DataFrame:
    text = path.read_bytes().decode(encoding)
    return pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False)


_READERS: dict[str, Callable[[Path], pl.DataFrame]] = {
    "poverty": lambda p: _read_csv(p, "utf-8"),
    "payroll": lambda p: (
        fastexcel.read_excel(str(p))
        .load_sheet("在编人员", header_row=1, dtypes="string")
        .to_polars()
        .with_columns(pl.col("出生日期").str.slice(0, 10))
    ),
    "vehicles": lambda p: _read_csv(p, "gbk"),
    "property": lambda p: pl.read_parquet(p),
    "business": lambda p: pl.read_ndjson(p, infer_schema_length=None),
    "deaths": lambda p: _read_csv(p, "utf-8-sig"),
    "medical": lambda p: _read_csv(p, "utf-8"),
}


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text (native dates as ISO dates, floats as written by polars)."""
    return frame.with_columns(
        pl.col(c).dt.strftime("%Y-%m-%d") if frame.schema[c] == pl.Date else pl.col(c).cast(pl.Utf8)
        for c in frame.columns
    )


def _write_xlsx(frame: pl.DataFrame, path: Path, layout: FileLayout) -> None:
    """A workbook of text cells (IDs stay text), optionally a notes sheet and a title row."""
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            "constant_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    workbook.set_properties({"created": FIXED_CREATED})
    if layout.notes:
        notes = workbook.add_worksheet("说明")
        for row, line in enumerate(layout.notes):
            notes.write_string(row, 0, line)
    sheet = workbook.add_worksheet(layout.sheet)
    first = 0
    if layout.title:
        sheet.write_string(0, 0, layout.title)
        first = 1
    sheet.write_row(first, 0, frame.columns)
    for offset, values in enumerate(frame.iter_rows()):
        for col, value in enumerate(values):
            if value is not None:
                sheet.write_string(first + 1 + offset, col, str(value))
    workbook.close()


def _encodable(frame: pl.DataFrame, encoding: str) -> str:
    """GBK when every character has a GBK code, else GB18030 (its superset), as systems do."""
    if encoding != "gbk":
        return encoding
    try:
        frame.write_csv(null_value="").encode("gbk")
    except UnicodeEncodeError:
        return "gb18030"
    return "gbk"


def _write(frame: pl.DataFrame, path: Path, layout: FileLayout) -> None:
    if layout.format == "xlsx":
        _write_xlsx(_as_text(frame), path, layout)
    elif layout.format == "parquet":
        frame.write_parquet(path, compression="zstd", statistics=False)
    elif layout.format == "jsonl":
        path.write_bytes(frame.write_ndjson().encode("utf-8"))
    else:
        text = _as_text(frame)
        encoding = _encodable(text, layout.encoding)
        if layout.title:
            body = text.write_csv(null_value="")
            data = (layout.title + "\n" + body).encode(encoding)
            path.write_bytes((b"\xef\xbb\xbf" if encoding == "utf-8-sig" else b"") + data)
        else:
            write_csv(text, path, encoding)


def _recoded(registry: str, frame: pl.DataFrame, layout: FileLayout) -> pl.DataFrame:
    if layout.codes and registry in _CODED_COLUMNS:
        column, canonical = _CODED_COLUMNS[registry]
        to_code = {term: code for code, term in CODES[canonical].items()}
        frame = frame.with_columns(pl.col(column).replace(to_code))
    if layout.sex_codes and "性别" in frame.columns:
        frame = frame.with_columns(pl.col("性别").replace(_SEX_CODES))
    return frame


def apply_dialect(out_dir: Path, number: int) -> Dialect:
    """Rewrite the default scenario in ``out_dir`` in dialect ``number`` (see DIALECTS)."""
    dialect = DIALECTS[number]
    data = Path(out_dir) / "data"
    for registry, default_name in _DEFAULT_FILES.items():
        source = data / default_name
        frame = _READERS[registry](source)
        layout = dialect.files[registry]
        if registry == "poverty" and "人员编号" in layout.drop:
            # The truth's person keys are this column: keep where each one's row is.
            rows = frame.select(
                pl.col("人员编号").alias("person_key"),
                (pl.int_range(pl.len()) + 2 + (1 if layout.title else 0)).alias("row"),
            )
            write_csv(rows, Path(out_dir) / "truth" / "register_rows.csv", "utf-8")
        frame = _recoded(registry, frame, layout).drop(list(layout.drop))
        frame = frame.rename({k: v for k, v in layout.renames.items() if k in frame.columns})
        source.unlink()
        _write(frame, data / layout.filename, layout)
    (Path(out_dir) / "linkaudit.yaml").unlink(missing_ok=True)
    return dialect
