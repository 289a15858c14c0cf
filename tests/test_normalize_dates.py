import datetime

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl.utils.datetime import from_excel

from linkaudit.normalize import DateValue, parse_date, parse_dates, read_date, read_dates
from linkaudit.normalize.dates import (
    AMBIGUOUS_DATE,
    EXCEL_EPOCH,
    EXCEL_MAX_SERIAL,
    PHANTOM_SERIAL,
    UNREADABLE_DATE,
)

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
        ("２０１５－０３－０２", D(2015, 3, 2)),  # full-width digits and hyphens
        ("２０１５年３月２日", D(2015, 3, 2)),
        ("２０１５０３０２", D(2015, 3, 2)),
        (20150302, D(2015, 3, 2)),  # a YYYYMMDD number
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
    assert read_date(raw) == (None if expected is None else DateValue(expected, "day"))


@pytest.mark.parametrize(
    ("raw", "expected", "precision"),
    [
        # Issue #9: these were Excel serials (1905-07-07, 2451-09-10, 1905-06-20).
        ("2015", D(2015, 1, 1), "year"),
        ("201503", D(2015, 3, 1), "month"),
        ("1998.07", D(1998, 7, 1), "month"),
        ("1998.7", D(1998, 7, 1), "month"),
        ("1998-07", D(1998, 7, 1), "month"),
        ("1998/7", D(1998, 7, 1), "month"),
        ("1998年7月", D(1998, 7, 1), "month"),
        ("1998 年 07 月", D(1998, 7, 1), "month"),
        ("199807", D(1998, 7, 1), "month"),
        ("1998", D(1998, 1, 1), "year"),
        ("1998年", D(1998, 1, 1), "year"),
        ("１９９８．０７", D(1998, 7, 1), "month"),
        ("１９９８", D(1998, 1, 1), "year"),
        (2015, D(2015, 1, 1), "year"),  # a number outside a workbook is read by its digits
        (201503, D(2015, 3, 1), "month"),
        (1998.07, D(1998, 7, 1), "month"),
    ],
)
def test_short_forms_have_their_precision(raw: object, expected: D, precision: str) -> None:
    assert read_date(raw) == DateValue(expected, precision)
    assert parse_date(raw) == expected
    frame = read_dates(pl.Series([raw]))
    assert frame.row(0) == (expected, precision, None)


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
        "850302",  # YYMMDD? YYYYMM of year 8503? Neither is read.
        "42064",  # text of a serial: only a workbook's number or a declared column is a serial
        "42064.5",
        "1998.13",
        "199813",
        "1850",  # short forms need a year 1900..2099
        "2100年",
        "0",
        0,
        -5,
        42064,
        2958466,
        "2958466",
        1.5e12,
        float("inf"),
        True,
    ],
)
def test_parse_date_rejects(raw: object) -> None:
    with pytest.raises(ValueError, match="unreadable date"):
        parse_date(raw)


# --- Excel serials: numeric workbook cells and declared columns ----------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (42064, D(2015, 3, 1)),
        ("42064", D(2015, 3, 1)),  # how fastexcel writes a numeric cell's text
        (42064.75, D(2015, 3, 1)),  # the fraction is the time of day
        ("42064.5", D(2015, 3, 1)),
        (42064.9999999999, D(2015, 3, 2)),  # rounds to midnight, as openpyxl rounds it
        (61, D(1900, 3, 1)),
        (59, D(1900, 2, 28)),  # below the phantom 29 February: one day more than the count
        (1, D(1900, 1, 1)),
        (2958465, D(9999, 12, 31)),
        (20150302, D(2015, 3, 2)),  # YYYYMMDD: beyond every serial
        ("20150302", D(2015, 3, 2)),
        (99999, D(2173, 10, 13)),
    ],
)
def test_workbook_numbers_are_serials(raw: object, expected: D) -> None:
    assert read_date(raw, numeric_cell=True) == DateValue(expected, "day")
    assert read_date(raw, serial=True) == DateValue(expected, "day")
    text = pl.Series([str(raw)])
    for frame in (
        read_dates(text, numeric=pl.Series([True])),
        read_dates(text, serial=True),
    ):
        assert frame.row(0) == (expected, "day", None)


@pytest.mark.parametrize(
    ("raw", "as_serial"),
    [
        ("2015", D(1905, 7, 7)),
        ("1998.07", D(1905, 6, 20)),
        ("1998", D(1905, 6, 20)),
        ("199807", D(2447, 1, 18)),
        ("201503", D(2451, 9, 10)),
    ],
)
def test_workbook_numbers_that_read_as_years_are_ambiguous(raw: str, as_serial: D) -> None:
    with pytest.raises(ValueError, match="ambiguous date"):
        read_date(raw, numeric_cell=True)
    frame = read_dates(pl.Series([raw]), numeric=pl.Series([True]))
    assert frame.row(0) == (None, None, AMBIGUOUS_DATE)
    # Declared serials are serials, whatever else they look like.
    assert read_date(raw, serial=True) == DateValue(as_serial, "day")
    assert read_dates(pl.Series([raw]), serial=True).row(0) == (as_serial, "day", None)
    # A text cell holding the same characters is the year or year-month.
    assert read_dates(pl.Series([raw]), numeric=pl.Series([False])).get_column("problem")[0] is None


@pytest.mark.parametrize("raw", [60, "60", 60.5])
def test_serial_60_the_phantom_leap_day_is_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="Excel serial 60"):
        read_date(raw, serial=True)
    with pytest.raises(ValueError, match="Excel serial 60"):
        read_date(raw, numeric_cell=True)
    assert read_dates(pl.Series([str(raw)]), serial=True).row(0) == (None, None, PHANTOM_SERIAL)


def _openpyxl_date(serial: float) -> D | None:
    try:
        return from_excel(serial).date()
    except OverflowError:  # beyond 9999-12-31
        return None


@given(
    st.one_of(
        st.integers(1, EXCEL_MAX_SERIAL).map(float),
        st.floats(1, EXCEL_MAX_SERIAL + 1, exclude_max=True),
        st.floats(1, 120),
    ).filter(lambda v: not 60 <= v < 61)
)
def test_serials_match_openpyxl(serial: float) -> None:
    expected = _openpyxl_date(serial)
    if expected is None:
        with pytest.raises(ValueError):
            read_date(serial, serial=True)
    else:
        assert read_date(serial, serial=True) == DateValue(expected, "day")
    assert read_dates(pl.Series([serial]), serial=True).get_column("value")[0] == expected
    assert read_dates(pl.Series([repr(serial)]), serial=True).get_column("value")[0] == expected


def test_serials_1_to_59_match_openpyxl_and_are_one_day_off_the_naive_count() -> None:
    for serial in range(1, 60):
        expected = from_excel(serial).date()
        assert parse_date(serial, serial=True) == expected
        assert expected == EXCEL_EPOCH + datetime.timedelta(days=serial + 1)


def _renderings(d: D) -> list[object]:
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
        f"{d:%Y%m%d}".translate(_FULL_WIDTH),
    ]


def _serial_renderings(d: D) -> list[object]:
    serial = (d - EXCEL_EPOCH).days
    return [str(serial), f"{serial}.25", serial, serial + 0.5]


_FULL_WIDTH = str.maketrans("0123456789-./", "０１２３４５６７８９－．／")
# Serials count Excel's phantom 1900-02-29, so the naive count is only right from 1900-03-01.
_dates = st.dates(D(1900, 3, 1), D(9999, 12, 31))


@given(_dates)
def test_every_rendering_parses_back(d: D) -> None:
    renderings = _renderings(d)
    assert [parse_date(r) for r in renderings] == [d] * len(renderings)
    serials = _serial_renderings(d)
    assert [parse_date(r, serial=True) for r in serials] == [d] * len(serials)
    texts = [str(r) for r in renderings]
    parsed, failed = parse_dates(pl.Series(texts))
    assert parsed.to_list() == [d] * len(texts)
    assert not failed.any()
    parsed, failed = parse_dates(pl.Series([str(r) for r in serials]), serial=True)
    assert parsed.to_list() == [d] * len(serials)
    assert not failed.any()


@given(st.lists(st.one_of(st.none(), _dates), max_size=20))
def test_bulk_serials_and_dates(dates: list[D | None]) -> None:
    serials = [None if d is None else (d - EXCEL_EPOCH).days for d in dates]
    for series, serial in (
        (pl.Series(serials, dtype=pl.Int64), True),
        (pl.Series(serials, dtype=pl.Float64), True),
        (pl.Series(dates, dtype=pl.Date), False),
        (pl.Series(dates, dtype=pl.Date).cast(pl.Datetime), False),
    ):
        parsed, failed = parse_dates(series, serial=serial)
        assert parsed.dtype == pl.Date
        assert parsed.to_list() == dates
        assert not failed.any()


def _scalar(value: object, **mode: bool) -> tuple[D | None, str | None, str | None]:
    try:
        parsed = read_date(value, **mode)
    except ValueError as exc:
        return None, None, str(exc).split(": ")[0]
    return (None, None, None) if parsed is None else (parsed.date, parsed.precision, None)


_date_like_text = st.one_of(
    st.text(alphabet="0123456789-/.年月日 T:\u3000０１９．", max_size=22),
    st.from_regex(
        r"[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}( [0-9]{1,2}:[0-9]{2}(:[0-9]{2})?)?", fullmatch=True
    ),
    st.from_regex(r"[0-9]{4}年[0-9]{1,2}月[0-9]{1,2}日", fullmatch=True),
    st.from_regex(r"(19|20)[0-9]{2}([-/.年][0-9]{1,2}月?)?", fullmatch=True),
    st.from_regex(r"-?[0-9]{1,8}(\.[0-9]{1,3})?", fullmatch=True),
    st.text(max_size=12),
)
_modes = st.sampled_from([{}, {"serial": True}, {"numeric_cell": True}])


@given(st.lists(st.one_of(st.none(), _date_like_text), max_size=30), _modes)
def test_bulk_agrees_with_scalar_text(values: list[str | None], mode: dict[str, bool]) -> None:
    series = pl.Series(values, dtype=pl.Utf8)
    frame = read_dates(
        series,
        serial=mode.get("serial", False),
        numeric=pl.Series([mode.get("numeric_cell", False)] * len(values)),
    )
    assert frame.rows() == [_scalar(v, **mode) for v in values]


@given(
    st.lists(
        st.one_of(st.none(), st.floats(-1e9, 1e9), st.integers(-(10**9), 10**9).map(float)),
        max_size=30,
    ),
    _modes,
)
def test_bulk_agrees_with_scalar_numbers(values: list[float | None], mode: dict[str, bool]) -> None:
    frame = read_dates(
        pl.Series(values, dtype=pl.Float64),
        serial=mode.get("serial", False),
        numeric=pl.Series([mode.get("numeric_cell", False)] * len(values)),
    )
    assert frame.rows() == [_scalar(v, **mode) for v in values]


@given(st.one_of(st.none(), st.text(max_size=30), _date_like_text), _modes)
def test_read_date_never_raises_anything_but_value_error_and_is_idempotent(
    value: str | None, mode: dict[str, bool]
) -> None:
    try:
        parsed = read_date(value, **mode)
    except ValueError:
        return
    if parsed is None:
        return
    # Writing the value back at its precision and reading it again gives the same value.
    d = parsed.date
    text = {"day": d.isoformat(), "month": f"{d:%Y-%m}", "year": f"{d:%Y}"}[parsed.precision]
    assert read_date(text) == parsed
    assert read_date(d) == DateValue(d, "day")


def test_bulk_null_and_failed_mask() -> None:
    parsed, failed = parse_dates(pl.Series("d", [None, None]))
    assert parsed.dtype == pl.Date and parsed.to_list() == [None, None]
    assert failed.to_list() == [False, False]
    parsed, failed = parse_dates(pl.Series("d", ["2015-03-02", "", None, "2015-02-30", "x"]))
    assert parsed.to_list() == [D(2015, 3, 2), None, None, None, None]
    assert failed.to_list() == [False, False, False, True, True]
    assert parsed.name == "d"
    frame = read_dates(pl.Series("d", ["1998.07", "x", None]))
    assert frame.schema == pl.Schema({"value": pl.Date, "precision": pl.Utf8, "problem": pl.Utf8})
    assert frame.rows() == [(D(1998, 7, 1), "month", None), (None, None, UNREADABLE_DATE),
                            (None, None, None)]  # fmt: skip
