"""Money amounts and whole numbers as clerks type them: '1,234.5', '￥1,234.00', '１２３４元'."""

from __future__ import annotations

import math
import numbers
import re

import polars as pl

from linkaudit.normalize.distinct import per_distinct

__all__ = [
    "AMOUNT_LIMIT",
    "parse_amount",
    "parse_amounts",
    "parse_int",
    "parse_ints",
    "read_amounts",
    "read_amounts_rows",
    "read_ints",
    "read_ints_rows",
]

# Full-width ASCII (U+FF01..U+FF5E) to ASCII, the ideographic space to a space, ￥ to ¥.
_HALF_WIDTH = {chr(code): chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)} | {
    "\u3000": " ",
    "\uffe5": "¥",
}
_HALF_WIDTH_TABLE = str.maketrans(_HALF_WIDTH)
# Listed explicitly because Python's and polars' ideas of whitespace differ.
_SPACE = " \t\n\r\f\v\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u202f\u205f\ufeff"
_NUMBER = (
    r"(?:[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?"
    r"|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?"
    r"|\.[0-9]+)"
)
# A sign before or after the currency mark (not both); '元' may follow. No '万': a ten-thousand
# multiplier is a unit problem for the manifest, not something to guess.
_AMOUNT_PATTERN = rf"^(?:(?P<s1>[-+]?) *¥? *|¥ *(?P<s2>[-+]) *)(?P<num>{_NUMBER}) *元?$"
_AMOUNT_RE = re.compile(_AMOUNT_PATTERN)
# A whole number written without exponent or fraction digits: read digit by digit, exactly.
_WHOLE_PATTERN = r"^([0-9]+)(?:\.0*)?$"
_WHOLE_RE = re.compile(_WHOLE_PATTERN)

#: Amounts are stored as DECIMAL(20, 4): sixteen digits before the point, so |amount| < 1e16.
AMOUNT_LIMIT = 1e16
# Below 2**53 a binary float holds every whole number; from there on digits may be lost.
_FLOAT_EXACT = 2**53
_INT64_MAX = 2**63 - 1

UNREADABLE_AMOUNT = "unreadable amount"
AMOUNT_OUT_OF_RANGE = "amount too large for DECIMAL(20,4)"
UNREADABLE_INT = "unreadable whole number"
INT_OUT_OF_RANGE = "whole number out of range"


def _amount_parts(value: str) -> tuple[bool, str] | None:
    """(negative, digits with commas removed) of an amount's text; None when it is empty."""
    text = value.translate(_HALF_WIDTH_TABLE).strip(_SPACE)
    if not text:
        return None
    match = _AMOUNT_RE.match(text)
    if not match:
        raise ValueError(f"{UNREADABLE_AMOUNT}: {value!r}")
    return "-" in (match["s1"] or match["s2"] or ""), match["num"].replace(",", "")


def parse_amount(value: object) -> float | None:
    """Parse one amount cell; None for empty, ValueError for anything else unreadable."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{UNREADABLE_AMOUNT}: {value!r}")
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None
        if math.isinf(number):
            raise ValueError(f"{UNREADABLE_AMOUNT}: {value!r}")
    else:
        parts = _amount_parts(str(value))
        if parts is None:
            return None
        negative, digits = parts
        number = float(digits)
        if math.isinf(number):
            raise ValueError(f"{AMOUNT_OUT_OF_RANGE}: {value!r}")
        number = -number if negative else number
    if abs(number) >= AMOUNT_LIMIT:
        raise ValueError(f"{AMOUNT_OUT_OF_RANGE}: {value!r}")
    return number


def parse_int(value: object) -> int | None:
    """Parse a whole number (years, household sizes); '2014.0' is fine, '2014.5' is not.

    Digits are read exactly (no trip through a float); the result must fit a signed 64-bit
    integer, the type it is stored as.
    """
    if isinstance(value, bool):
        raise ValueError(f"{UNREADABLE_INT}: {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if math.isnan(value):
            return None
        if not value.is_integer() or abs(value) >= _FLOAT_EXACT:
            raise ValueError(f"{UNREADABLE_INT}: {value!r}")
        number = int(value)
    elif value is None:
        return None
    else:
        try:
            parts = _amount_parts(str(value))
        except ValueError:
            raise ValueError(f"{UNREADABLE_INT}: {value!r}") from None
        if parts is None:
            return None
        negative, digits = parts
        whole = _WHOLE_RE.match(digits)
        if whole:
            number = int(whole[1])
        else:  # an exponent or fraction digits: only exact below 2**53
            f = float(digits)
            if not f.is_integer() or abs(f) >= _FLOAT_EXACT:
                raise ValueError(f"{UNREADABLE_INT}: {value!r}")
            number = int(f)
        number = -number if negative else number
    if abs(number) > _INT64_MAX:
        raise ValueError(f"{INT_OUT_OF_RANGE}: {value!r}")
    return number


def _failed_none(n: int) -> pl.Series:
    return pl.Series("failed", [False] * n, dtype=pl.Boolean)


def _text_parts(s: pl.Series) -> pl.DataFrame:
    """Columns t (clean text), neg (sign), num (digits without commas) of an amount's text."""
    text = pl.col("v").cast(pl.Utf8).str.replace_many(_HALF_WIDTH).str.strip_chars(_SPACE)
    # Staged with_columns so the regex extraction runs once (eager selects share nothing).
    frame = s.to_frame("v").select(text.alias("t"))
    frame = frame.with_columns(pl.col("t").str.extract_groups(_AMOUNT_PATTERN).alias("g"))
    field = pl.col("g").struct.field
    return frame.select(
        "t",
        (pl.coalesce(field("s2"), field("s1")) == "-").fill_null(False).alias("neg"),
        field("num").str.replace_all(",", "", literal=True).alias("num"),
    )


def read_amounts(s: pl.Series) -> pl.DataFrame:
    """Vectorised :func:`parse_amount`: columns ``value`` (Float64) and ``problem`` (the reason
    a present value was not read, null when it was). Text is parsed once per distinct value."""
    if s.dtype == pl.Utf8:
        return per_distinct(lambda v, _: read_amounts_rows(v), s)
    return read_amounts_rows(s)


def read_amounts_rows(s: pl.Series) -> pl.DataFrame:
    """:func:`read_amounts` computed row by row, every value parsed where it stands."""
    n = len(s)
    if s.dtype == pl.Null:
        return pl.DataFrame(
            {"value": pl.Series([None] * n, dtype=pl.Float64), "problem": [None] * n},
            schema={"value": pl.Float64, "problem": pl.Utf8},
        )
    if s.dtype.is_numeric():
        frame = s.to_frame("v").select(
            pl.col("v").cast(pl.Float64).alias("f"), pl.lit(False).alias("unreadable")
        )
        frame = frame.with_columns(
            pl.when(pl.col("f").is_nan()).then(None).otherwise(pl.col("f")).alias("f"),
            pl.col("f").is_infinite().fill_null(False).alias("unreadable"),
        )
    else:
        frame = _text_parts(s).with_columns(
            pl.col("num").cast(pl.Float64, strict=False).alias("mag")
        )
        frame = frame.select(
            pl.when(pl.col("neg")).then(-pl.col("mag")).otherwise(pl.col("mag")).alias("f"),
            (pl.col("t").is_not_null() & (pl.col("t") != "") & pl.col("num").is_null()).alias(
                "unreadable"
            ),
        )
    too_large = (pl.col("f").abs() >= AMOUNT_LIMIT).fill_null(False) & ~pl.col("unreadable")
    problem = (
        pl.when("unreadable")
        .then(pl.lit(UNREADABLE_AMOUNT))
        .when(too_large)
        .then(pl.lit(AMOUNT_OUT_OF_RANGE))
    )
    return frame.select(
        pl.when(problem.is_null()).then(pl.col("f")).alias("value"),
        problem.alias("problem"),
    )


def parse_amounts(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Vectorised :func:`parse_amount`: (Float64 series, ``failed`` = present but unreadable)."""
    frame = read_amounts(s)
    return frame.get_column("value").alias(s.name), frame.get_column("problem").is_not_null()


def read_ints(s: pl.Series) -> pl.DataFrame:
    """Vectorised :func:`parse_int`: columns ``value`` (Int64) and ``problem``. Text is parsed
    once per distinct value."""
    if s.dtype == pl.Utf8:
        return per_distinct(lambda v, _: read_ints_rows(v), s)
    return read_ints_rows(s)


def read_ints_rows(s: pl.Series) -> pl.DataFrame:
    """:func:`read_ints` computed row by row, every value parsed where it stands."""
    n = len(s)
    schema = {"value": pl.Int64, "problem": pl.Utf8}
    if s.dtype == pl.Null:
        return pl.DataFrame({"value": [None] * n, "problem": [None] * n}, schema=schema)
    if s.dtype.is_integer():
        # UInt64 holds values above the Int64 range: those are reported, never raised on.
        cast = s.cast(pl.Int64, strict=False)
        lost = s.is_not_null() & cast.is_null()
        return pl.DataFrame({"value": cast, "lost": lost}).select(
            "value", pl.when("lost").then(pl.lit(INT_OUT_OF_RANGE)).alias("problem")
        )
    if s.dtype.is_numeric():
        f = pl.col("v").cast(pl.Float64)
        whole = (f == f.floor()) & (f.abs() < float(_FLOAT_EXACT))
        present = f.is_not_null() & ~f.is_nan()
        return s.to_frame("v").select(
            pl.when(whole).then(f.cast(pl.Int64, strict=False)).alias("value"),
            pl.when(present & ~whole).then(pl.lit(UNREADABLE_INT)).alias("problem"),
        )
    frame = _text_parts(s)
    frame = frame.with_columns(
        pl.col("num").str.extract(_WHOLE_PATTERN, 1).alias("digits"),
        pl.col("num").cast(pl.Float64, strict=False).alias("f"),
    )
    frame = frame.with_columns(
        pl.col("digits").cast(pl.Int64, strict=False).alias("exact"),
    )
    f = pl.col("f")
    via_float = (f == f.floor()) & (f.abs() < float(_FLOAT_EXACT))
    magnitude = (
        pl.when(pl.col("digits").is_not_null())
        .then(pl.col("exact"))
        .when(via_float)
        .then(f.cast(pl.Int64, strict=False))
    )
    frame = frame.with_columns(magnitude.alias("m"))
    present = pl.col("t").is_not_null() & (pl.col("t") != "")
    problem = (
        pl.when(present & pl.col("num").is_null())
        .then(pl.lit(UNREADABLE_INT))
        .when(pl.col("digits").is_not_null() & pl.col("exact").is_null())
        .then(pl.lit(INT_OUT_OF_RANGE))
        .when(present & pl.col("m").is_null())
        .then(pl.lit(UNREADABLE_INT))
    )
    return frame.select(
        pl.when(pl.col("neg")).then(-pl.col("m")).otherwise(pl.col("m")).alias("value"),
        problem.alias("problem"),
    )


def parse_ints(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Vectorised :func:`parse_int`: (Int64 series, ``failed``)."""
    frame = read_ints(s)
    return frame.get_column("value").alias(s.name), frame.get_column("problem").is_not_null()
