"""Readers as parsers: whatever text a department writes, it reads back exactly (property tests)."""

from __future__ import annotations

import csv
import io
import string
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkaudit.config import RegistryConfig
from linkaudit.ingest.readers import ROW, read_registry

# Text a registry cell may hold: Chinese (GBK-encodable), ASCII, separators and quotes.
CHARS = (
    "韦蓝黄覃李陆潘蒙明华强伟芳秀英玉兰红马山县白山镇村号"
    + string.ascii_letters
    + string.digits
    + " ,\"'-·　"
)
cell = st.text(alphabet=CHARS, min_size=1, max_size=12).filter(lambda s: s.strip() == s and s != "")
header = st.lists(
    st.text(alphabet="姓名证件号码户编号地址车辆类型", min_size=1, max_size=5),
    min_size=1,
    max_size=5,
    unique=True,
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    cols = draw(header)
    rows = draw(
        st.lists(st.lists(cell, min_size=len(cols), max_size=len(cols)), min_size=1, max_size=8)
    )
    return cols, rows


def _write(path: Path, cols: list[str], rows: list[list[str]], encoding: str, sep: str) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\r\n")
    writer.writerow(cols)
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    table=tables(),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk"]),
    sep=st.sampled_from([",", "\t"]),
)
def test_csv_round_trip(tmp_path: Path, table, encoding: str, sep: str) -> None:
    cols, rows = table
    path = tmp_path / ("r.tsv" if sep == "\t" else "r.csv")
    _write(path, cols, rows, encoding, sep)
    reg = RegistryConfig(name="r", path=path, fields={"name": cols[0]})
    frame = read_registry(reg).frame
    assert frame.columns == [ROW, *cols]
    assert frame.drop(ROW).rows() == [tuple(r) for r in rows]
    assert frame.get_column(ROW).to_list() == list(range(2, len(rows) + 2))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(table=tables())
def test_jsonl_and_parquet_round_trip(tmp_path: Path, table) -> None:
    cols, rows = table
    frame = pl.DataFrame(rows, schema=cols, orient="row")
    frame.write_ndjson(tmp_path / "r.jsonl")
    frame.write_parquet(tmp_path / "r.parquet")
    for name in ("r.jsonl", "r.parquet"):
        reg = RegistryConfig(name="r", path=tmp_path / name, fields={"name": cols[0]})
        back = read_registry(reg).frame
        assert back.drop(ROW).rows() == frame.rows(), name


def test_xlsx_reader_keeps_which_cells_were_numbers(tmp_path: Path) -> None:
    import datetime as dt

    import xlsxwriter

    path = tmp_path / "p.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["姓名", " 日期", "身份证号", "备注"])
    ws.write_row(1, 0, ["韦一"])
    ws.write_number(1, 1, 42064)
    ws.write_number(1, 2, 4.50124198703021e17)
    ws.write_number(1, 3, 7)
    ws.write_row(2, 0, ["韦二", "42064", "450124198703021234", "x"])
    ws.write_datetime(3, 1, dt.datetime(2015, 3, 1), wb.add_format({"num_format": "yyyy-mm-dd"}))
    ws.write_boolean(3, 2, True)
    wb.close()
    reg = RegistryConfig(
        name="p", path=path, fields={"name": "姓名", "start_date": "日期", "id_number": "身份证号"}
    )
    result = read_registry(reg)
    # Read as text, the numeric and the text cells look alike ...
    assert result.frame.get_column("日期").to_list() == ["42064", "42064", "2015-03-01 00:00:00"]
    assert result.frame.get_column("身份证号").to_list()[:2] == [
        "450124198703020992",
        "450124198703021234",
    ]
    # ... the reader says which were numbers: not text, not date-formatted, not boolean cells.
    # Only columns whose cell type matters (dates and the ID) are looked at.
    assert set(result.numeric_cells) == {"日期", "身份证号"}
    assert result.numeric_cells["日期"].to_list() == [True, False, False]
    assert result.numeric_cells["身份证号"].to_list() == [True, False, False]
    # CSV has no cell types.
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("姓名,日期\n韦一,42064\n", encoding="utf-8")
    assert (
        read_registry(
            RegistryConfig(name="c", path=csv_path, fields={"name": "姓名", "start_date": "日期"})
        ).numeric_cells
        == {}
    )


def test_every_format_has_exactly_one_reader() -> None:
    from linkaudit.config import FORMATS, SUFFIX_FORMATS
    from linkaudit.ingest.readers import READERS

    assert set(READERS) == set(FORMATS)
    assert set(SUFFIX_FORMATS.values()) <= set(READERS)
