"""Parsing on distinct values gives exactly the frame that parsing row by row gives.

read_dates, read_ints and read_amounts parse each distinct (value, numeric-cell) pair once and
join the results back to the rows; read_*_rows are the row-by-row parsers they replace. The
properties below draw columns made of a few values repeated in any order (so the distinct path
is the one taken), with nulls and workbook numeric masks, and compare values, dtypes, problems,
precision and order. canonicalize's cleaning of text columns takes a shortcut of the same kind,
checked at the end.
"""

from __future__ import annotations

import datetime

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_series_equal

from linkaudit.ingest.canonical import _text, _texts
from linkaudit.normalize import dates as dates_module
from linkaudit.normalize import read_amounts, read_dates, read_ints
from linkaudit.normalize.amounts import read_amounts_rows, read_ints_rows
from linkaudit.normalize.dates import read_dates_rows
from linkaudit.normalize.distinct import per_distinct

_date_text = st.one_of(
    st.text(alphabet="0123456789-/.年月日 T:\u3000０１９．", max_size=20),
    st.from_regex(r"[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}( [0-9]{1,2}:[0-9]{2})?", fullmatch=True),
    st.from_regex(r"(19|20)[0-9]{2}([-/.年][0-9]{1,2}月?)?", fullmatch=True),
    st.from_regex(r"-?[0-9]{1,8}(\.[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(["", " ", "60", "1998", "199807", "20150302", "2015-02-29", "42064.5"]),
    st.text(max_size=8),
)
_number_text = st.one_of(
    st.text(alphabet="0123456789,.-+ ¥￥元eE１２，．", max_size=14),
    st.from_regex(r"[-+]?[0-9]{1,20}(\.[0-9]{0,3})?", fullmatch=True),
    st.sampled_from(["", " ", "-0", "1,234.00", "9223372036854775808", "1e17", "2.5", "１２元"]),
    st.text(max_size=8),
)
_flag = st.one_of(st.none(), st.booleans())


@st.composite
def repeated(draw: st.DrawFn, values: st.SearchStrategy, with_flags: bool) -> tuple[list, list]:
    """Rows drawn from a small pool of (value, flag) pairs, each pair at least twice, shuffled:
    at most half the rows are distinct, so the distinct path is taken."""
    pool = draw(
        st.lists(st.tuples(st.one_of(st.none(), values), _flag if with_flags else st.none()),
                 min_size=1, max_size=8)
    )  # fmt: skip
    extra = draw(st.lists(st.sampled_from(pool), max_size=20))
    rows = draw(st.permutations(pool + pool + extra))
    return [v for v, _ in rows], [f for _, f in rows]


def _mask(flags: list[bool | None], use: bool) -> pl.Series | None:
    return pl.Series("numeric", flags, dtype=pl.Boolean) if use else None


def _assert_dates_agree(
    column: tuple[list, list], dtype: pl.DataType, serial: bool, masked: bool
) -> None:
    """read_dates (distinct values) gives exactly what read_dates_rows (row by row) gives."""
    values, flags = column
    s = pl.Series("d", values, dtype=dtype)
    numeric = _mask(flags, masked)
    assert_frame_equal(
        read_dates(s, serial=serial, numeric=numeric),
        read_dates_rows(s, serial=serial, numeric=numeric),
        check_exact=True,
    )


@settings(max_examples=300)
@given(repeated(_date_text, with_flags=True), st.booleans(), st.booleans())
def test_read_dates_on_distinct_text_equals_row_by_row(
    column: tuple[list, list], serial: bool, masked: bool
) -> None:
    _assert_dates_agree(column, pl.Utf8, serial, masked)


@given(
    repeated(st.integers(-(10**9), 10**9) | st.sampled_from([60, 1998, 199807, 20150302]), True),
    st.booleans(),
    st.booleans(),
)
def test_read_dates_on_distinct_integers_equals_row_by_row(
    column: tuple[list, list], serial: bool, masked: bool
) -> None:
    _assert_dates_agree(column, pl.Int64, serial, masked)


@given(
    repeated(st.floats(allow_nan=True, allow_infinity=True), True)
    | repeated(st.dates(datetime.date(1900, 1, 1)), True),
    st.booleans(),
)
def test_read_dates_of_floats_and_dates_equals_row_by_row(
    column: tuple[list, list], serial: bool
) -> None:
    """Float columns are parsed where they stand (a float key would merge -0.0 and 0.0)."""
    values, flags = column
    s = pl.Series("d", values)
    numeric = _mask(flags, True)
    assert_frame_equal(
        read_dates(s, serial=serial, numeric=numeric),
        read_dates_rows(s, serial=serial, numeric=numeric),
        check_exact=True,
    )


@settings(max_examples=300)
@given(repeated(_number_text, with_flags=False))
def test_read_ints_and_amounts_on_distinct_text_equal_row_by_row(column: tuple[list, list]) -> None:
    s = pl.Series("n", column[0], dtype=pl.Utf8)
    assert_frame_equal(read_ints(s), read_ints_rows(s), check_exact=True)
    assert_frame_equal(read_amounts(s), read_amounts_rows(s), check_exact=True)


@pytest.mark.parametrize(
    "s",
    [
        pl.Series("x", [], dtype=pl.Utf8),
        pl.Series("x", ["2015"], dtype=pl.Utf8),
        pl.Series("x", [None, None, None], dtype=pl.Utf8),
        pl.Series("x", [None, None], dtype=pl.Null),
        pl.Series("x", ["2015", "1998", "abc", None]),  # mostly distinct: parsed row by row
    ],
)
def test_edge_columns_equal_row_by_row(s: pl.Series) -> None:
    assert_frame_equal(read_dates(s), read_dates_rows(s), check_exact=True)
    assert_frame_equal(read_ints(s), read_ints_rows(s), check_exact=True)
    assert_frame_equal(read_amounts(s), read_amounts_rows(s), check_exact=True)


def test_each_distinct_pair_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """read_dates hands read_dates_rows the distinct (value, numeric) pairs, not the rows;
    a null flag is the same pair as False."""
    seen: list[tuple[list, list | None]] = []

    def spy(s: pl.Series, *, serial: bool = False, numeric: pl.Series | None = None):
        seen.append((s.to_list(), None if numeric is None else numeric.to_list()))
        return read_dates_rows(s, serial=serial, numeric=numeric)

    monkeypatch.setattr(dates_module, "read_dates_rows", spy)
    s = pl.Series("d", ["42064", "2015", "42064", None, "2015", "42064", None, "42064"])
    numeric = pl.Series([True, False, False, None, None, True, False, True])
    out = read_dates(s, numeric=numeric)
    assert len(seen) == 1
    values, flags = seen[0]
    assert flags is not None
    pairs = sorted(zip(values, flags, strict=True), key=repr)
    assert pairs == sorted(
        [("42064", True), ("42064", False), ("2015", False), (None, False)], key=repr
    )
    assert out.rows() == [
        (datetime.date(2015, 3, 1), "day", None),
        (datetime.date(2015, 1, 1), "year", None),
        (None, None, "unreadable date"),
        (None, None, None),
        (datetime.date(2015, 1, 1), "year", None),
        (datetime.date(2015, 3, 1), "day", None),
        (None, None, None),
        (datetime.date(2015, 3, 1), "day", None),
    ]


def test_per_distinct_keeps_row_order_and_output_dtypes() -> None:
    calls: list[int] = []

    def parse(s: pl.Series, numeric: pl.Series | None) -> pl.DataFrame:
        calls.append(len(s))
        return pl.DataFrame({"len": s.str.len_chars(), "flag": numeric}, strict=False)

    s = pl.Series(["bb", "a", None, "bb", "a", None, "a", "bb"])
    numeric = pl.Series([True, True, False, True, True, False, True, True])
    out = per_distinct(parse, s, numeric)
    assert calls == [3]
    assert out.schema == pl.Schema({"len": pl.UInt32, "flag": pl.Boolean})
    assert out.rows() == [(2, True), (1, True), (None, False), (2, True), (1, True),
                          (None, False), (1, True), (2, True)]  # fmt: skip


# canonicalize's text columns: _texts skips the exact strip where no value has white space at
# either end, which must give what _text gives everywhere.
_spaces = st.sampled_from([" ", "\t", "\r", "\n", "\u3000", "\u00a0", "\u2003", "\x0b", "\x85",
                           "\u200b", "\ufeff", "\u1680", "\u202f"])  # fmt: skip
_cell_text = st.one_of(
    st.none(),
    st.text(max_size=6),
    st.tuples(
        st.lists(_spaces, max_size=2), st.text(max_size=4), st.lists(_spaces, max_size=2)
    ).map(lambda t: "".join(t[0]) + t[1] + "".join(t[2])),
)


@settings(max_examples=300)
@given(st.lists(st.lists(_cell_text, min_size=3, max_size=3), max_size=12))
def test_texts_equal_text_of_each_column(rows: list[list[str | None]]) -> None:
    frame = pl.DataFrame(
        {name: [r[i] for r in rows] for i, name in enumerate("abc")},
        schema={"a": pl.Utf8, "b": pl.Utf8, "c": pl.Utf8},
    ).with_columns(n=pl.int_range(pl.len()), d=pl.lit(None))
    sources = {"x": "a", "y": "b", "z": "c", "same": "a", "num": "n", "null": "d"}
    got = _texts(frame, sources)
    assert list(got) == list(sources)
    for name, column in sources.items():
        expected = frame.select(_text(pl.col(column)).alias(name)).to_series()
        assert_series_equal(got[name], expected, check_exact=True)


def test_texts_strip_only_the_listed_characters() -> None:
    """A column with an em space at an edge is stripped exactly: the listed spaces go, the em
    space (white space to polars, not to _text) stays."""
    frame = pl.DataFrame({"a": ["\u3000张三 ", "\u2003李四", "", " ", None, "王五"]})
    assert _texts(frame, {"a": "a"})["a"].to_list() == [
        "张三",
        "\u2003李四",
        None,
        None,
        None,
        "王五",
    ]
