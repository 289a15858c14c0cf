"""Money amounts and whole numbers as clerks type them: '1,234.5', '￥1,234.00', '１２３４元'."""

from __future__ import annotations

import math
import numbers
import re

import polars as pl

__all__ = ["parse_amount", "parse_amounts", "parse_int", "parse_ints"]

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
_MAX_EXACT_INT = 2**53


def parse_amount(value: object) -> float | None:
    """Parse one amount cell; None for empty, ValueError for anything else unreadable."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None
        if math.isinf(number):
            raise ValueError(f"not a finite amount: {value!r}")
        return number
    text = str(value).translate(_HALF_WIDTH_TABLE).strip(_SPACE)
    if not text:
        return None
    match = _AMOUNT_RE.match(text)
    if not match:
        raise ValueError(f"unrecognised amount: {value!r}")
    number = float(match["num"].replace(",", ""))
    if math.isinf(number):
        raise ValueError(f"amount out of range: {value!r}")
    return -number if "-" in (match["s1"] or match["s2"] or "") else number


def parse_int(value: object) -> int | None:
    """Parse a whole number (years, household sizes); '2014.0' is fine, '2014.5' is not."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = parse_amount(value)
    if number is None:
        return None
    if not number.is_integer() or abs(number) > _MAX_EXACT_INT:
        raise ValueError(f"not a whole number: {value!r}")
    return int(number)


def _failed_none(n: int) -> pl.Series:
    return pl.Series("failed", [False] * n, dtype=pl.Boolean)


def parse_amounts(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Vectorised :func:`parse_amount`: (Float64 series, ``failed`` = present but unreadable)."""
    name = s.name
    if s.dtype == pl.Null:
        return pl.Series(name, [None] * len(s), dtype=pl.Float64), _failed_none(len(s))
    if s.dtype.is_numeric():
        f = pl.col("v").cast(pl.Float64)
        value = pl.when(f.is_nan() | f.is_infinite()).then(None).otherwise(f)
        failed = f.is_infinite().fill_null(False)
        out = s.to_frame("v").select(value.alias(name), failed.alias("failed"))
        return out.get_column(name), out.get_column("failed")
    # Staged with_columns so the regex extraction runs once (eager selects share nothing).
    text = pl.col("v").cast(pl.Utf8).str.replace_many(_HALF_WIDTH).str.strip_chars(_SPACE)
    frame = s.to_frame("v").select(text.alias("t"))
    frame = frame.with_columns(pl.col("t").str.extract_groups(_AMOUNT_PATTERN).alias("g"))
    field = pl.col("g").struct.field
    magnitude = field("num").str.replace_all(",", "", literal=True).cast(pl.Float64, strict=False)
    frame = frame.with_columns(
        pl.coalesce(field("s2"), field("s1")).alias("sign"), magnitude.alias("mag")
    )
    mag = pl.when(pl.col("mag").is_infinite()).then(None).otherwise(pl.col("mag"))
    frame = frame.with_columns(
        pl.when(pl.col("sign") == "-").then(-mag).otherwise(mag).alias("value")
    )
    out = frame.select(
        pl.col("value").alias(name),
        (pl.col("t").is_not_null() & (pl.col("t") != "") & pl.col("value").is_null())
        .fill_null(False)
        .alias("failed"),
    )
    return out.get_column(name), out.get_column("failed")


def parse_ints(s: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Vectorised :func:`parse_int`: (Int64 series, ``failed``)."""
    if s.dtype.is_integer():
        return s.cast(pl.Int64), _failed_none(len(s))
    amounts, failed = parse_amounts(s)
    frame = pl.DataFrame({"a": amounts, "failed": failed})
    a = pl.col("a")
    whole = (a == a.floor()) & (a.abs() <= _MAX_EXACT_INT)
    out = frame.select(
        pl.when(whole).then(a.cast(pl.Int64, strict=False)).alias(s.name),
        (pl.col("failed") | (a.is_not_null() & ~whole)).alias("failed"),
    )
    return out.get_column(s.name), out.get_column("failed")
