"""Shared fixtures: tiny workspaces written into tmp_path, and a CLI runner."""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from pathlib import Path

import pytest
import xlsxwriter
import yaml
from hypothesis import settings
from typer.testing import CliRunner

from linkaudit.cli import app

# The test machines are shared and often busy: a property test is judged by what it finds,
# never by how long one example took (Hypothesis's 200 ms deadline flaked under load).
settings.register_profile("linkaudit", deadline=None)
settings.load_profile("linkaudit")

POVERTY_ROWS = [
    # 人员编号, 户编号, 姓名, 证件号码, 人均纯收入(元), 脱贫年度
    ("P001", "H01", "韦小宝", "450124198504095224", "2,600", "2014"),
    ("P002", "H01", "蓝 玉", "310112850409522", "2600元", "2014"),
    ("P003", "H02", "黃國榮", "45012419700101001x", "3１００", ""),
    ("P004", "H02", "覃明", "", "3100", ""),
]


def write_csv(path: Path, header: list[str], rows: list[tuple[str, ...]], encoding: str) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_manifest(root: Path, registries: dict, **extra: object) -> Path:
    manifest = {"database": "ws.duckdb", "as_of": dt.date(2015, 12, 31), **extra}
    manifest["registries"] = registries
    path = root / "linkaudit.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


POVERTY_REG = {
    "department": "扶贫办",
    "role": "beneficiaries",
    "path": "poverty.csv",
    "key": "人员编号",
    "household": "户编号",
    "fields": {
        "name": "姓名",
        "id_number": "证件号码",
        "income_per_capita": "人均纯收入(元)",
        "exit_year": "脱贫年度",
    },
}


@pytest.fixture
def poverty_workspace(tmp_path: Path) -> Path:
    """A one-registry workspace: a GBK CSV with Chinese headers."""
    write_csv(
        tmp_path / "poverty.csv",
        ["人员编号", "户编号", "姓名", "证件号码", "人均纯收入(元)", "脱贫年度"],
        POVERTY_ROWS,
        "gbk",
    )
    return write_manifest(tmp_path, {"poverty": dict(POVERTY_REG)})


def write_two_sheet_xlsx(path: Path, data_first: bool = False) -> Path:
    """An XLSX with a notes sheet and the data on sheet '车辆' under a title row."""
    wb = xlsxwriter.Workbook(str(path))
    wb.set_properties({"created": dt.datetime(2015, 1, 1)})
    if data_first:
        ws = wb.add_worksheet("车辆")
    notes = wb.add_worksheet("说明")
    notes.write(0, 0, "本表由公安交警提供")
    if not data_first:
        ws = wb.add_worksheet("车辆")
    ws.write(0, 0, "马山县机动车登记信息")
    ws.write_row(1, 0, ["登记编号", "机动车所有人", "身份证明号码", "车辆类型", "初次登记日期"])
    date_fmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(2, 0, ["V1", "韦小宝", "450124198504095224", "小型轿车"])
    ws.write_datetime(2, 4, dt.datetime(2013, 5, 7), date_fmt)
    ws.write_row(3, 0, ["V2", "蓝玉", "450124198504095232", "普通二轮摩托车", "2014/3/2"])
    ws.write_row(4, 0, ["V3", "黄国荣", "", "轮式拖拉机", "2014年3月2日"])
    wb.close()
    return path


SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "mashan"


@pytest.fixture
def sample_ws(tmp_path: Path) -> Path:
    """A private copy of the committed Mashan sample (scale 0.1), without database or outputs."""
    root = tmp_path / "mashan"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out", ".out*"))
    return root


def set_manifest(root: Path, **changes: object) -> Path:
    """Rewrite keys of root/linkaudit.yaml (None deletes a key)."""
    path = root / "linkaudit.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args])
