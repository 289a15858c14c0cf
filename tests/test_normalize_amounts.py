import math
from collections.abc import Callable

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkaudit.normalize import parse_amount, parse_amounts, parse_int, parse_ints


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1,234.5", 1234.5),
        ("1234元", 1234.0),
        ("1234.50 元", 1234.5),
        ("¥1234", 1234.0),
        ("￥1,234.00", 1234.0),
        ("¥ 1,234.00", 1234.0),
        ("１２３４．５", 1234.5),
        ("１，２３４．５元", 1234.5),
        ("  12.5\u3000", 12.5),
        ("-12", -12.0),
        ("-¥12", -12.0),
        ("¥-12", -12.0),
        ("+7", 7.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("3.", 3.0),
        ("1.2E+05", 120000.0),
        ("1,234,567", 1234567.0),
        (1234, 1234.0),
        (12.5, 12.5),
        (None, None),
        ("", None),
        ("  ", None),
        (float("nan"), None),
    ],
)
def test_parse_amount_table(raw: object, expected: float | None) -> None:
    assert parse_amount(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["1.2万", "3万元", "abc", "1,23", "12,34.5", "1.2.3", "--12", "-¥-12", "¥", "元", "nan", "inf",
     "1e999", float("inf"), True],
)  # fmt: skip
def test_parse_amount_rejects(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_amount(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2014", 2014), ("2014.0", 2014), (2014.0, 2014), (2014, 2014), ("1,200", 1200), (None, None)],
)
def test_parse_int_table(raw: object, expected: int | None) -> None:
    assert parse_int(raw) == expected


@pytest.mark.parametrize("raw", ["2014.5", 2014.5, "3人", "abc", 1e300])
def test_parse_int_rejects(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_int(raw)


def _scalar(parse: Callable[[object], object], value: object) -> tuple[object, bool]:
    try:
        return parse(value), False
    except ValueError:
        return None, True


_FULL_WIDTH = str.maketrans("0123456789,.-", "０１２３４５６７８９，．－")


@st.composite
def amount_text(draw: st.DrawFn) -> str:
    value = draw(st.decimals(-(10**9), 10**9, places=draw(st.integers(0, 3)), allow_nan=False))
    text = draw(st.sampled_from(["{:f}", "{:,f}"])).format(abs(value))
    sign = "-" if value < 0 else draw(st.sampled_from(["", "+"]))
    text = draw(
        st.sampled_from(["{s}{t}", "{s}¥{t}", "¥{s}{t}", "{s}{t}元", "{s}￥{t} 元"])
    ).format(s=sign, t=text)
    if draw(st.booleans()):
        text = text.translate(_FULL_WIDTH)
    return draw(st.sampled_from(["", " ", "\u3000"])) + text + draw(st.sampled_from(["", " "]))


_amount_cells = st.one_of(
    st.none(),
    amount_text(),
    st.text(alphabet="0123456789,.-+ ¥￥元万eE１２，．", max_size=14),
    st.text(max_size=8),
)


@given(st.lists(_amount_cells, max_size=30))
def test_bulk_agrees_with_scalar_text(values: list[str | None]) -> None:
    parsed, failed = parse_amounts(pl.Series(values, dtype=pl.Utf8))
    assert list(zip(parsed.to_list(), failed.to_list(), strict=True)) == [
        _scalar(parse_amount, v) for v in values
    ]
    ints, int_failed = parse_ints(pl.Series(values, dtype=pl.Utf8))
    assert list(zip(ints.to_list(), int_failed.to_list(), strict=True)) == [
        _scalar(parse_int, v) for v in values
    ]


@given(amount_text())
def test_generated_amounts_parse(text: str) -> None:
    value = parse_amount(text)
    assert value is not None and math.isfinite(value)


@given(
    st.lists(
        st.one_of(st.none(), st.floats(), st.integers(-(10**6), 10**6).map(float)), max_size=30
    )
)
def test_bulk_agrees_with_scalar_floats(values: list[float | None]) -> None:
    series = pl.Series(values, dtype=pl.Float64)
    parsed, failed = parse_amounts(series)
    assert list(zip(parsed.to_list(), failed.to_list(), strict=True)) == [
        _scalar(parse_amount, v) for v in values
    ]
    ints, int_failed = parse_ints(series)
    assert list(zip(ints.to_list(), int_failed.to_list(), strict=True)) == [
        _scalar(parse_int, v) for v in values
    ]


def test_numeric_dtypes_pass_through() -> None:
    parsed, failed = parse_amounts(pl.Series("a", [1, None, 3], dtype=pl.Int32))
    assert parsed.dtype == pl.Float64 and parsed.to_list() == [1.0, None, 3.0]
    assert failed.to_list() == [False, False, False]
    ints, failed = parse_ints(pl.Series("y", [2014, None], dtype=pl.Int32))
    assert ints.dtype == pl.Int64 and ints.to_list() == [2014, None]
    parsed, failed = parse_amounts(pl.Series("a", [None, None]))
    assert parsed.dtype == pl.Float64 and failed.to_list() == [False, False]
    ints, failed = parse_ints(pl.Series("y", ["2014.0", "2014.5", "x", None]))
    assert ints.to_list() == [2014, None, None, None]
    assert failed.to_list() == [False, True, True, False]
