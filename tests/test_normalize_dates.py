import datetime

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from linkaudit.normalize import parse_date, parse_dates

D = datetime.date


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2015-03-02", D(2015, 3, 2)),
        ("2015-3-2", D(2015, 3, 2)),
        ("2015-03-02 00:00:00", D(2015, 3, 2)),
        ("2015-03-02T08:00:00", D(2015, 3, 2)),
        ("2015-03-02 08:00", D(2015, 3, 2)),
        ("2015-03-02 08:00:00.000", D(2015, 3, 2)),
        ("2015/3/2", D(2015, 3, 2)),
        ("2015/03/02 0:00:00", D(2015, 3, 2)),
        ("2015.3.2", D(2015, 3, 2)),
        ("2015年3月2日", D(2015, 3, 2)),
        ("2015年03月02日", D(2015, 3, 2)),
        ("2015年3月2", D(2015, 3, 2)),
        ("20150302", D(2015, 3, 2)),
        (" 2015-03-02\u3000", D(2015, 3, 2)),
        (42064, D(2015, 3, 1)),  # Excel serial; 1899-12-30 + 42064 days
        (42064.75, D(2015, 3, 1)),  # the fraction is the time of day
        ("42064", D(2015, 3, 1)),
        ("42064.5", D(2015, 3, 1)),
        (61, D(1900, 3, 1)),
        (2958465, D(9999, 12, 31)),
        (20150302, D(2015, 3, 2)),  # a YYYYMMDD number, too big for a serial
        ("2016-02-29", D(2016, 2, 29)),
        (D(2015, 3, 2), D(2015, 3, 2)),
        (datetime.datetime(2015, 3, 2, 8, 30), D(2015, 3, 2)),
        (None, None),
        ("", None),
        ("  ", None),
        (float("nan"), None),
    ],
)
def test_parse_date_table(raw: object, expected: D | None) -> None:
    assert parse_date(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "2015-02-30",
        "2015-13-01",
        "2015-00-10",
        "2015-02-29",
        "20150230",
        "2015-03-02 24:00",
        "2015-3/2",
        "15-3-2",
        "abc",
        "2015年3月",
        "0",
        0,
        -5,
        2958466,
        "2958466",
        1.5e12,
        float("inf"),
        True,
    ],
)
def test_parse_date_rejects(raw: object) -> None:
    with pytest.raises(ValueError):
        parse_date(raw)


def _renderings(d: D) -> list[object]:
    serial = (d - D(1899, 12, 30)).days
    return [
        d.isoformat(),
        f"{d.year}-{d.month}-{d.day}",
        f"{d.isoformat()} 00:00:00",
        f"{d.isoformat()}T08:00:00",
        f"{d.year}/{d.month}/{d.day}",
        f"{d.year}.{d.month}.{d.day}",
        f"{d.year}年{d.month}月{d.day}日",
        f"{d:%Y}年{d:%m}月{d:%d}日",
        f"{d:%Y%m%d}",
        str(serial),
        f"{serial}.25",
        serial,
        serial + 0.5,
    ]


# Serials count Excel's phantom 1900-02-29, so they are only right from 1900-03-01.
_dates = st.dates(D(1900, 3, 1), D(9999, 12, 31))


@given(_dates)
def test_every_rendering_parses_back(d: D) -> None:
    renderings = _renderings(d)
    assert [parse_date(r) for r in renderings] == [d] * len(renderings)
    texts = [str(r) for r in renderings]
    parsed, failed = parse_dates(pl.Series(texts))
    assert parsed.to_list() == [d] * len(texts)
    assert not failed.any()


@given(st.lists(st.one_of(st.none(), _dates), max_size=20))
def test_bulk_serials_and_dates(dates: list[D | None]) -> None:
    serials = [None if d is None else (d - D(1899, 12, 30)).days for d in dates]
    for series in (
        pl.Series(serials, dtype=pl.Int64),
        pl.Series(serials, dtype=pl.Float64),
        pl.Series(dates, dtype=pl.Date),
        pl.Series(dates, dtype=pl.Date).cast(pl.Datetime),
    ):
        parsed, failed = parse_dates(series)
        assert parsed.dtype == pl.Date
        assert parsed.to_list() == dates
        assert not failed.any()


def _scalar(value: object) -> tuple[D | None, bool]:
    try:
        return parse_date(value), False
    except ValueError:
        return None, True


_date_like_text = st.one_of(
    st.text(alphabet="0123456789-/.年月日 T:\u3000", max_size=22),
    st.from_regex(
        r"[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}( [0-9]{1,2}:[0-9]{2}(:[0-9]{2})?)?", fullmatch=True
    ),
    st.from_regex(r"[0-9]{4}年[0-9]{1,2}月[0-9]{1,2}日", fullmatch=True),
    st.from_regex(r"[0-9]{1,8}(\.[0-9]{1,3})?", fullmatch=True),
    st.text(max_size=12),
)


@given(st.lists(st.one_of(st.none(), _date_like_text), max_size=30))
def test_bulk_agrees_with_scalar_text(values: list[str | None]) -> None:
    parsed, failed = parse_dates(pl.Series(values, dtype=pl.Utf8))
    assert list(zip(parsed.to_list(), failed.to_list(), strict=True)) == [
        _scalar(v) for v in values
    ]


@given(
    st.lists(
        st.one_of(st.none(), st.floats(-1e9, 1e9), st.integers(-(10**9), 10**9).map(float)),
        max_size=30,
    )
)
def test_bulk_agrees_with_scalar_numbers(values: list[float | None]) -> None:
    parsed, failed = parse_dates(pl.Series(values, dtype=pl.Float64))
    assert list(zip(parsed.to_list(), failed.to_list(), strict=True)) == [
        _scalar(v) for v in values
    ]


def test_bulk_null_and_failed_mask() -> None:
    parsed, failed = parse_dates(pl.Series("d", [None, None]))
    assert parsed.dtype == pl.Date and parsed.to_list() == [None, None]
    assert failed.to_list() == [False, False]
    parsed, failed = parse_dates(pl.Series("d", ["2015-03-02", "", None, "2015-02-30", "x"]))
    assert parsed.to_list() == [D(2015, 3, 2), None, None, None, None]
    assert failed.to_list() == [False, False, False, True, True]
    assert parsed.name == "d"
