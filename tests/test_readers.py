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
