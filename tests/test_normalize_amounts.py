import math
from collections.abc import Callable

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkaudit.normalize import (
    parse_amount,
    parse_amounts,
    parse_int,
    parse_ints,
    read_amounts,
    read_ints,
)
from linkaudit.normalize.amounts import AMOUNT_OUT_OF_RANGE, INT_OUT_OF_RANGE, UNREADABLE_INT


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


# --- values that do not fit (issue #9) --------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["450124198703021234", "1e16", "-10000000000000000", 1e16, 450124198703021234, "1e999"]
)
def test_amount_that_does_not_fit_decimal_20_4_is_refused(raw: object) -> None:
    with pytest.raises(ValueError, match=r"DECIMAL\(20,4\)"):
        parse_amount(raw)
    dtype = pl.Utf8 if isinstance(raw, str) else None
    frame = read_amounts(pl.Series([raw], dtype=dtype))
    assert frame.row(0) == (None, AMOUNT_OUT_OF_RANGE)


def test_largest_amounts_that_fit() -> None:
    assert parse_amount("9999999999999.5") == 9999999999999.5
    assert read_amounts(pl.Series(["-9,999,999,999,999.5"])).row(0) == (-9999999999999.5, None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("9007199254740993", 2**53 + 1),  # through a float this came back as 2**53
        ("9007199254740993.0", 2**53 + 1),
        ("9,007,199,254,740,993", 2**53 + 1),
        ("-9007199254740993", -(2**53) - 1),
        ("９００７１９９２５４７４０９９３", 2**53 + 1),
        (str(2**63 - 1), 2**63 - 1),
        (2**63 - 1, 2**63 - 1),
        ("1.2E+05", 120000),
    ],
)
def test_parse_int_is_exact(raw: object, expected: int) -> None:
    assert parse_int(raw) == expected
    assert read_ints(pl.Series([raw])).row(0) == (expected, None)


@pytest.mark.parametrize("raw", [str(2**63), "99999999999999999999", 2**63, -(2**64)])
def test_whole_number_beyond_int64_is_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_int(raw)
    if isinstance(raw, str):
        assert read_ints(pl.Series([raw])).row(0) == (None, INT_OUT_OF_RANGE)


def test_uint64_above_int64_is_reported_not_raised() -> None:
    # Issue #9: a UInt64 column above 2**63 raised (a crash with exit 3).
    frame = read_ints(pl.Series("n", [2**63, 2**64 - 1, 5, None], dtype=pl.UInt64))
    assert frame.rows() == [
        (None, INT_OUT_OF_RANGE),
        (None, INT_OUT_OF_RANGE),
        (5, None),
        (None, None),
    ]
    ints, failed = parse_ints(pl.Series("n", [2**63, 5], dtype=pl.UInt64))
    assert ints.to_list() == [None, 5] and failed.to_list() == [True, False]


def test_float_at_2_53_is_not_trusted_as_whole_number() -> None:
    with pytest.raises(ValueError):
        parse_int(float(2**53))
    assert read_ints(pl.Series([float(2**53), 2.0**52])).rows() == [
        (None, UNREADABLE_INT),
        (2**52, None),
    ]


_int_text = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(0, 2**66).map(lambda n: f"{n:,}"),
    st.integers(-(2**64), 2**64).map(lambda n: f"{n}.0"),
    st.from_regex(r"[-+]?[0-9]{1,22}(\.[0-9]{0,3})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
)


@given(st.lists(st.one_of(st.none(), _int_text, _amount_cells), max_size=30))
def test_bulk_agrees_with_scalar_big_numbers(values: list[str | None]) -> None:
    def scalar(parse: Callable[[object], object], value: object) -> tuple[object, str | None]:
        try:
            return parse(value), None
        except ValueError as exc:
            return None, str(exc).split(": ")[0]

    series = pl.Series(values, dtype=pl.Utf8)
    assert read_ints(series).rows() == [scalar(parse_int, v) for v in values]
    assert read_amounts(series).rows() == [scalar(parse_amount, v) for v in values]


@given(st.one_of(st.none(), _int_text, _amount_cells, st.text(max_size=20)))
def test_parsers_never_raise_anything_but_value_error_and_are_idempotent(value: object) -> None:
    try:
        number = parse_int(value)
    except ValueError:
        number = None
    if number is not None:
        assert parse_int(str(number)) == number
    try:
        amount = parse_amount(value)
    except ValueError:
        amount = None
    if amount is not None:
        assert parse_amount(repr(amount)) == amount
