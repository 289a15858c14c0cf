"""Dates as registries write them: ISO, slashes, dots, 年月日, YYYYMMDD, year-months, years and
Excel serials — each with its precision, and never a guess.

A value is read as one of:
- a day: ``2015-03-02``, ``2015/3/2``, ``2015.3.2``, ``2015年3月2日``, ``20150302``, a native date;
- a month: ``1998-07``, ``1998/7``, ``1998.07``, ``1998年7月``, ``199807`` (stored as its first day);
- a year: ``1998``, ``1998年`` (stored as 1 January). Short forms need a year 1900..2099;
- an Excel serial: only a number that was a numeric cell of a workbook (``numeric_cell``), or
  any number in a column the manifest declares ``excel_serial`` (``serial``). A workbook number
  that also reads as a year or year-month (``1998``, ``1998.07``, ``199807``) is ambiguous and
  refused, unless the column is declared. Serials follow :func:`openpyxl.utils.datetime.from_excel`
  (1..59 count Excel's phantom 1900-02-29); serial 60, that phantom day itself, is refused.
Text of digits is never taken for a serial on its own: in a CSV ``2015`` is a year, ``42064`` is
unreadable (declare the column ``excel_serial`` if it holds serials).
"""

from __future__ import annotations

import datetime
import math
import numbers
import re
from typing import NamedTuple

import polars as pl

from linkaudit.normalize.distinct import per_distinct

__all__ = [
    "AMBIGUOUS_DATE",
    "EXCEL_EPOCH",
    "PHANTOM_SERIAL",
    "UNREADABLE_DATE",
    "DateValue",
    "date_expr",
    "parse_date",
    "parse_dates",
    "read_date",
    "read_dates",
    "read_dates_rows",
]

# Excel's 1900 date system counts a 29 February 1900 that never was: from serial 61
# (1900-03-01) on, counting days from 1899-12-30 is right; below 60 it is one day off.
EXCEL_EPOCH = datetime.date(1899, 12, 30)
EXCEL_MAX_SERIAL = 2958465  # 9999-12-31
_PHANTOM = 60
_EPOCH_DAYS = (EXCEL_EPOCH - datetime.date(1970, 1, 1)).days
# A fraction of a day that rounds (to the millisecond, as openpyxl does) to a whole day.
_FULL_DAY_MS = 86_399_999.5
_SHORT_YEARS = (1900, 2099)

UNREADABLE_DATE = "unreadable date"
AMBIGUOUS_DATE = "ambiguous date (a year or year-month, or an Excel serial?)"
PHANTOM_SERIAL = "Excel serial 60 is 1900-02-29, a day that does not exist"

# Full-width ASCII (U+FF01..U+FF5E) to ASCII and the ideographic space to a space.
_HALF_WIDTH = {chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)} | {"\u3000": " "}
_HALF_WIDTH_TABLE = str.maketrans(_HALF_WIDTH)
# Explicit set, not \s or str.strip(): Python and polars disagree on what counts as space.
_SPACE = " \t\n\r\f\v\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"

_TIME = r"(?:[ T]+(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?)?"
# One pattern shared by the scalar and the bulk parser; no backreferences (polars' regex has
# none), so each separator gets its own month group. y1..y3: days; y4..y6: months; y7: years.
_DATE_PATTERN = (
    r"^(?:"
    r"(?P<y1>[0-9]{4})"
    r"(?:-(?P<m1>[0-9]{1,2})-|/(?P<m2>[0-9]{1,2})/|\.(?P<m3>[0-9]{1,2})\.)"
    rf"(?P<d1>[0-9]{{1,2}}){_TIME}"
    r"|(?P<y2>[0-9]{4}) *年 *(?P<m4>[0-9]{1,2}) *月 *(?P<d2>[0-9]{1,2}) *日?"
    r"|(?P<y3>[0-9]{4})(?P<m5>[0-9]{2})(?P<d3>[0-9]{2})(?:\.0+)?"
    r"|(?P<y4>[0-9]{4})[-/.](?P<m6>[0-9]{1,2})"
    r"|(?P<y5>[0-9]{4}) *年 *(?P<m7>[0-9]{1,2}) *月"
    r"|(?P<y6>[0-9]{4})(?P<m8>[0-9]{2})"
    r"|(?P<y7>[0-9]{4}) *年?"
    r")$"
)
_DATE_RE = re.compile(_DATE_PATTERN)
_DAY_GROUPS = (("y1", "y2", "y3"), ("m1", "m2", "m3", "m4", "m5"), ("d1", "d2", "d3"))
_MONTH_GROUPS = (("y4", "y5", "y6"), ("m6", "m7", "m8"))
# How a number looks as text (a workbook's numeric cell as read, or a declared serial column).
_NUMBER_PATTERN = r"^-?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?$"
_NUMBER_RE = re.compile(_NUMBER_PATTERN)


class DateValue(NamedTuple):
    """A date and how much of it the source gave: ``day``, ``month`` or ``year``."""

    date: datetime.date
    precision: str


def _first(groups: dict[str, str | None], names: tuple[str, ...]) -> str | None:
    return next((groups[n] for n in names if groups[n] is not None), None)


def _number_text(value: numbers.Real) -> str:
    """A number's digits as the bulk parser renders them (whole floats without '.0')."""
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(number)


def read_date(
    value: object, *, serial: bool = False, numeric_cell: bool = False
) -> DateValue | None:
    """Parse one date cell: a :class:`DateValue`, None for empty, ValueError when unreadable.

    ``numeric_cell``: the value was a number in a workbook, so it may be an Excel serial.
    ``serial``: the manifest declares the column's numbers to be Excel serials.
    """
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return DateValue(value.date(), "day")
    if isinstance(value, datetime.date):
        return DateValue(value, "day")
    if isinstance(value, bool):
        raise ValueError(f"{UNREADABLE_DATE}: {value!r}")
    if isinstance(value, numbers.Real):
        if math.isnan(float(value)):
            return None
        if serial or numeric_cell:
            return _from_number(float(value), value, serial)
        text = _number_text(value)
    else:
        text = str(value).translate(_HALF_WIDTH_TABLE).strip(_SPACE)
        if not text:
            return None
        if (serial or numeric_cell) and _NUMBER_RE.match(text):
            return _from_number(float(text), value, serial)
    match = _DATE_RE.match(text)
    if not match:
        raise ValueError(f"{UNREADABLE_DATE}: {value!r}")
    groups = match.groupdict()
    year, month, day = (_first(groups, names) for names in _DAY_GROUPS)
    precision = "day"
    if year is None:
        year, month = (_first(groups, names) for names in _MONTH_GROUPS)
        precision = "month"
        day = "1"
        if year is None:
            year, month, precision = groups["y7"], "1", "year"
        if not _SHORT_YEARS[0] <= int(year or 0) <= _SHORT_YEARS[1]:
            raise ValueError(f"{UNREADABLE_DATE}: {value!r}")
    try:
        return DateValue(datetime.date(int(year or 0), int(month or 0), int(day or 0)), precision)
    except ValueError:
        raise ValueError(f"{UNREADABLE_DATE}: {value!r}") from None


def parse_date(
    value: object, *, serial: bool = False, numeric_cell: bool = False
) -> datetime.date | None:
    """:func:`read_date`'s date alone (a month or a year as its first day)."""
    parsed = read_date(value, serial=serial, numeric_cell=numeric_cell)
    return None if parsed is None else parsed.date


def _from_number(number: float, original: object, serial: bool) -> DateValue:
    """A workbook number or a declared serial: YYYYMMDD when 8 digits, else an Excel serial."""
    if not math.isfinite(number) or number < 1:
        raise ValueError(f"{UNREADABLE_DATE}: {original!r}")
    whole = math.floor(number)
    if whole == number and 10_000_000 <= whole <= 99_999_999:
        try:
            return DateValue(datetime.date(whole // 10000, whole // 100 % 100, whole % 100), "day")
        except ValueError:
            raise ValueError(f"{UNREADABLE_DATE}: {original!r}") from None
    if not serial and (
        _SHORT_YEARS[0] <= whole <= _SHORT_YEARS[1]
        or (
            whole == number
            and _SHORT_YEARS[0] * 100 <= whole <= _SHORT_YEARS[1] * 100 + 12
            and 1 <= whole % 100 <= 12
        )
    ):
        raise ValueError(f"{AMBIGUOUS_DATE}: {original!r}")
    if whole == _PHANTOM:
        raise ValueError(f"{PHANTOM_SERIAL}: {original!r}")
    days = whole + (number < _PHANTOM) + ((number - whole) * 86400.0 * 1000.0 >= _FULL_DAY_MS)
    if days > EXCEL_MAX_SERIAL:
        raise ValueError(f"{UNREADABLE_DATE}: {original!r}")
    return DateValue(EXCEL_EPOCH + datetime.timedelta(days=days), "day")


def date_expr(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    """Date from integer parts, null where they are not a real date (year 1..9999).

    Integer arithmetic (days-from-civil) instead of ``pl.date``, which raises on bad parts.
    """
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = (
        pl.when(month == 2)
        .then(pl.when(leap).then(29).otherwise(28))
        .when(month.is_in([4, 6, 9, 11]))
        .then(30)
        .otherwise(31)
    )
    valid = year.is_between(1, 9999) & month.is_between(1, 12) & (day >= 1) & (day <= month_days)
    y = year.cast(pl.Int64) - (month <= 2).cast(pl.Int64)
    era = y // 400
    year_of_era = y - era * 400
    day_of_year = (153 * (month + pl.when(month > 2).then(-3).otherwise(9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    return pl.when(valid).then(days).otherwise(None).cast(pl.Int32).cast(pl.Date)


def _number_columns(f: pl.Expr, serial: bool) -> tuple[pl.Expr, pl.Expr]:
    """(date, problem) of :func:`_from_number` for a Float64 expression."""
    whole = f.floor()
    w = whole.cast(pl.Int64, strict=False)
    usable = f.is_finite() & (f >= 1)
    ymd8 = (whole == f) & whole.is_between(10_000_000, 99_999_999)
    lo, hi = _SHORT_YEARS
    ambiguous = whole.is_between(lo, hi) | (
        (whole == f) & whole.is_between(lo * 100, hi * 100 + 12) & (w % 100).is_between(1, 12)
    )
    in_range = f.is_between(1, EXCEL_MAX_SERIAL + 1)
    days = (
        w
        + (f < _PHANTOM).cast(pl.Int64)
        + ((f - whole) * 86400.0 * 1000.0 >= _FULL_DAY_MS).cast(pl.Int64)
    )
    serial_date = (
        pl.when(in_range & (days <= EXCEL_MAX_SERIAL))
        .then((days + _EPOCH_DAYS).cast(pl.Int32).cast(pl.Date))
        .otherwise(None)
    )
    ymd_date = date_expr(w // 10000, w // 100 % 100, w % 100)
    date = (
        pl.when(~usable)
        .then(None)
        .when(ymd8)
        .then(ymd_date)
        .when(pl.lit(not serial) & ambiguous)
        .then(None)
        .when(whole == _PHANTOM)
        .then(None)
        .otherwise(serial_date)
    )
    problem = (
        pl.when(~usable | ymd8)
        .then(None)
        .when(pl.lit(not serial) & ambiguous)
        .then(pl.lit(AMBIGUOUS_DATE))
        .when(whole == _PHANTOM)
        .then(pl.lit(PHANTOM_SERIAL))
    )
    return date, problem


def _number_text_expr(v: pl.Expr) -> pl.Expr:
    """Vectorised :func:`_number_text` of a Float64 expression."""
    whole = (v == v.floor()) & (v.abs() < 1e15)
    return (
        pl.when(whole).then(v.cast(pl.Int64, strict=False).cast(pl.Utf8)).otherwise(v.cast(pl.Utf8))
    )


def read_dates(
    s: pl.Series, *, serial: bool = False, numeric: pl.Series | None = None
) -> pl.DataFrame:
    """Vectorised :func:`read_date`: columns ``value`` (Date), ``precision`` (day, month, year)
    and ``problem`` (why a present value was not read; null when it was).

    ``numeric`` marks the cells that were numbers in a workbook (``numeric_cell`` per row).
    Each distinct (value, numeric) pair is parsed once (:func:`read_dates_rows` on them).
    """
    return per_distinct(lambda v, cell: read_dates_rows(v, serial=serial, numeric=cell), s, numeric)


def read_dates_rows(
    s: pl.Series, *, serial: bool = False, numeric: pl.Series | None = None
) -> pl.DataFrame:
    """:func:`read_dates` computed row by row, every value parsed where it stands."""
    n = len(s)
    dtype = s.dtype
    schema = {"value": pl.Date, "precision": pl.Utf8, "problem": pl.Utf8}
    if dtype == pl.Null:
        return pl.DataFrame({"value": [None] * n, "precision": [None] * n, "problem": [None] * n},
                            schema=schema)  # fmt: skip
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        dates = s if dtype == pl.Date else s.dt.date()
        return pl.DataFrame({"value": dates}).select(
            "value",
            pl.when(pl.col("value").is_not_null()).then(pl.lit("day")).alias("precision"),
            pl.lit(None, dtype=pl.Utf8).alias("problem"),
        )
    flags = (
        numeric.cast(pl.Boolean).fill_null(False)
        if numeric is not None
        else pl.repeat(False, n, eager=True, dtype=pl.Boolean)
    )
    frame = pl.DataFrame({"v": s, "cell": flags})
    # Intermediate columns are materialised stage by stage: an eager select does not share
    # common subexpressions, and the regex extraction must run once, not once per use.
    if dtype.is_numeric():
        v = pl.col("v").cast(pl.Float64)
        frame = frame.select(
            pl.when(v.is_nan()).then(None).otherwise(v).alias("f"),
            pl.lit(serial).or_(pl.col("cell")).alias("as_number"),
            _number_text_expr(pl.when(v.is_nan()).then(None).otherwise(v)).alias("t"),
        )
    else:
        text = pl.col("v").cast(pl.Utf8).str.replace_many(_HALF_WIDTH).str.strip_chars(_SPACE)
        frame = frame.select(text.alias("t"), "cell")
        frame = frame.with_columns(
            ((pl.lit(serial) | pl.col("cell")) & pl.col("t").str.contains(_NUMBER_PATTERN)).alias(
                "as_number"
            ),
        )
        frame = frame.with_columns(
            pl.when("as_number").then(pl.col("t").cast(pl.Float64, strict=False)).alias("f")
        )
    frame = frame.with_columns(pl.col("t").str.extract_groups(_DATE_PATTERN).alias("g"))
    field = pl.col("g").struct.field

    def first(names: tuple[str, ...]) -> pl.Expr:
        return pl.coalesce(*(field(name) for name in names)).cast(pl.Int64)

    (dy, dm, dd), (my, mm) = (
        (first(names) for names in _DAY_GROUPS),
        (first(names) for names in _MONTH_GROUPS),
    )
    frame = frame.with_columns(
        dy.alias("dy"), dm.alias("dm"), dd.alias("dd"),
        my.alias("my"), mm.alias("mm"), field("y7").cast(pl.Int64).alias("yy"),
    )  # fmt: skip
    lo, hi = _SHORT_YEARS
    number_date, number_problem = _number_columns(pl.col("f"), serial)
    frame = frame.with_columns(
        date_expr(pl.col("dy"), pl.col("dm"), pl.col("dd")).alias("day_date"),
        pl.when(pl.col("my").is_between(lo, hi))
        .then(date_expr(pl.col("my"), pl.col("mm"), pl.lit(1)))
        .alias("month_date"),
        pl.when(pl.col("yy").is_between(lo, hi))
        .then(date_expr(pl.col("yy"), pl.lit(1), pl.lit(1)))
        .alias("year_date"),
        number_date.alias("number_date"),
        number_problem.alias("number_problem"),
    )
    as_number = pl.col("as_number")
    value = (
        pl.when(as_number)
        .then(pl.col("number_date"))
        .otherwise(pl.coalesce("day_date", "month_date", "year_date"))
    )
    precision = (
        pl.when(as_number)
        .then(pl.lit("day"))
        .when(pl.col("day_date").is_not_null())
        .then(pl.lit("day"))
        .when(pl.col("month_date").is_not_null())
        .then(pl.lit("month"))
        .otherwise(pl.lit("year"))
    )
    frame = frame.with_columns(value.alias("value"))
    present = pl.col("t").is_not_null() & (pl.col("t") != "")
    failed = present & pl.col("value").is_null()
    problem = (
        pl.when(~failed)
        .then(None)
        .when(as_number & pl.col("number_problem").is_not_null())
        .then(pl.col("number_problem"))
        .otherwise(pl.lit(UNREADABLE_DATE))
    )
    return frame.select(
        "value",
        pl.when(pl.col("value").is_not_null()).then(precision).alias("precision"),
        problem.fill_null(pl.lit(None, dtype=pl.Utf8)).alias("problem"),
    )


def parse_dates(
    s: pl.Series, *, serial: bool = False, numeric: pl.Series | None = None
) -> tuple[pl.Series, pl.Series]:
    """Vectorised :func:`parse_date`: (Date series, ``failed`` = present but unreadable)."""
    frame = read_dates(s, serial=serial, numeric=numeric)
    return frame.get_column("value").alias(s.name), frame.get_column("problem").is_not_null()
