"""Dates as registries write them: ISO, slashes, dots, 年月日, YYYYMMDD and Excel serials."""

from __future__ import annotations

import datetime
import math
import numbers
import re

import polars as pl

__all__ = ["EXCEL_EPOCH", "date_expr", "parse_date", "parse_dates"]

# Excel's 1900 date system counted 1900-02-29, so counting from 1899-12-30 is right for
# every serial from 61 (1900-03-01) on, which is every date a registry will hold.
EXCEL_EPOCH = datetime.date(1899, 12, 30)
EXCEL_MAX_SERIAL = 2958465  # 9999-12-31
_EPOCH_DAYS = (EXCEL_EPOCH - datetime.date(1970, 1, 1)).days

# Explicit set, not \s or str.strip(): Python and polars disagree on what counts as space.
_SPACE = " \t\n\r\f\v\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"

_TIME = r"(?:[ T]+(?:[01]?[0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?)?"
# One pattern shared by the scalar and the bulk parser; no backreferences (polars' regex has
# none), so each separator gets its own month group.
_DATE_PATTERN = (
    r"^(?:"
    r"(?P<y1>[0-9]{4})"
    r"(?:-(?P<m1>[0-9]{1,2})-|/(?P<m2>[0-9]{1,2})/|\.(?P<m3>[0-9]{1,2})\.)"
    rf"(?P<d1>[0-9]{{1,2}}){_TIME}"
    r"|(?P<y2>[0-9]{4}) *年 *(?P<m4>[0-9]{1,2}) *月 *(?P<d2>[0-9]{1,2}) *日?"
    r"|(?P<y3>[0-9]{4})(?P<m5>[0-9]{2})(?P<d3>[0-9]{2})(?:\.0+)?"
    r")$"
)
_DATE_RE = re.compile(_DATE_PATTERN)
_SERIAL_PATTERN = r"^[0-9]{1,7}(?:\.[0-9]+)?$"
_SERIAL_RE = re.compile(_SERIAL_PATTERN)


def parse_date(value: object) -> datetime.date | None:
    """Parse one date cell; None for empty, ValueError for text that is not a real date."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a date: {value!r}")
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None
        return _from_number(number, value)
    text = str(value).strip(_SPACE)
    if not text:
        return None
    match = _DATE_RE.match(text)
    if match:
        groups = match.groupdict()
        year = groups["y1"] or groups["y2"] or groups["y3"]
        month = groups["m1"] or groups["m2"] or groups["m3"] or groups["m4"] or groups["m5"]
        day = groups["d1"] or groups["d2"] or groups["d3"]
        try:
            return datetime.date(int(year), int(month), int(day))
        except ValueError:
            raise ValueError(f"not a real calendar date: {value!r}") from None
    if _SERIAL_RE.match(text):
        return _from_number(float(text), value)
    raise ValueError(f"unrecognised date format: {value!r}")


def _from_number(number: float, original: object) -> datetime.date:
    """Excel serial (1..2958465) or, for 8-digit whole numbers, YYYYMMDD."""
    whole = math.floor(number) if math.isfinite(number) else 0
    if 1 <= whole <= EXCEL_MAX_SERIAL:
        return EXCEL_EPOCH + datetime.timedelta(days=whole)
    if whole == number and 10_000_000 <= whole <= 99_999_999:
        try:
            return datetime.date(whole // 10000, whole // 100 % 100, whole % 100)
        except ValueError:
            pass
    raise ValueError(f"number is neither an Excel date serial nor YYYYMMDD: {original!r}")


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


def _number_expr(number: pl.Expr) -> pl.Expr:
    whole = number.floor()
    serial = pl.when(whole.is_between(1, EXCEL_MAX_SERIAL)).then(
        (whole.cast(pl.Int64) + _EPOCH_DAYS).cast(pl.Int32).cast(pl.Date)
    )
    ymd = whole.cast(pl.Int64, strict=False)
    as_ymd = pl.when((whole == number) & whole.is_between(10_000_000, 99_999_999)).then(
        date_expr(ymd // 10000, ymd // 100 % 100, ymd % 100)
    )
    return pl.coalesce(serial, as_ymd)


def parse_dates(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Vectorised :func:`parse_date`: (Date series, ``failed`` = present but unparseable)."""
    name = s.name
    dtype = s.dtype
    if dtype == pl.Date:
        return s, pl.Series("failed", [False] * len(s), dtype=pl.Boolean)
    if isinstance(dtype, pl.Datetime):
        return s.dt.date(), pl.Series("failed", [False] * len(s), dtype=pl.Boolean)
    if dtype == pl.Null:
        return (
            pl.Series(name, [None] * len(s), dtype=pl.Date),
            pl.Series("failed", [False] * len(s), dtype=pl.Boolean),
        )
    frame = s.to_frame("v")
    # Intermediate columns are materialised stage by stage: an eager select does not share
    # common subexpressions, and the regex extraction must run once, not once per use.
    if dtype.is_numeric():
        frame = frame.select(pl.col("v").cast(pl.Float64))
        present = pl.col("v").is_not_null() & pl.col("v").is_not_nan()
        frame = frame.with_columns(_number_expr(pl.col("v")).alias("parsed"))
    else:
        text = pl.col("v").cast(pl.Utf8).str.strip_chars(_SPACE)
        frame = frame.select(text.alias("v"))
        frame = frame.with_columns(pl.col("v").str.extract_groups(_DATE_PATTERN).alias("g"))
        field = pl.col("g").struct.field
        frame = frame.with_columns(
            pl.coalesce(field("y1"), field("y2"), field("y3")).cast(pl.Int64).alias("y"),
            pl.coalesce(*(field(f"m{i}") for i in range(1, 6))).cast(pl.Int64).alias("m"),
            pl.coalesce(field("d1"), field("d2"), field("d3")).cast(pl.Int64).alias("d"),
            pl.when(pl.col("v").str.contains(_SERIAL_PATTERN))
            .then(pl.col("v").cast(pl.Float64, strict=False))
            .alias("serial"),
        )
        frame = frame.with_columns(
            date_expr(pl.col("y"), pl.col("m"), pl.col("d")).alias("ymd"),
            _number_expr(pl.col("serial")).alias("from_serial"),
        )
        present = pl.col("v").is_not_null() & (pl.col("v") != "")
        frame = frame.with_columns(pl.coalesce("ymd", "from_serial").alias("parsed"))
    out = frame.select(
        pl.col("parsed").alias(name),
        (present & pl.col("parsed").is_null()).fill_null(False).alias("failed"),
    )
    return out.get_column(name), out.get_column("failed")
