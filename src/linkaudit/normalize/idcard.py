"""Citizen ID numbers (GB 11643-1999): cleaning, check character, 15→18 upgrade, masking."""

from __future__ import annotations

import datetime
import math
import re
from typing import NamedTuple

import polars as pl

from linkaudit.normalize.dates import date_expr

__all__ = [
    "ID_STATUSES",
    "IdInfo",
    "check_char",
    "mask_id",
    "mask_ids",
    "normalize_id",
    "normalize_ids",
    "upgrade_15",
]

ID_STATUSES = ("valid", "upgraded_15", "bad_checksum", "malformed", "missing")

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_MIN_BIRTH = datetime.date(1900, 1, 1)
_MAX_BIRTH = datetime.date(2030, 12, 31)

# Characters dropped anywhere in the value: whitespace (listed, because Python's and polars'
# ideas of \s differ), zero-width marks, dashes, and quotes (Excel text cells start with ').
_DROP_CHARS = (
    " \t\n\r\f\v\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u200b\u200c\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff"
    "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
    "'\"`\u2018\u2019\u201c\u201d\u2032\u2033\uff02\uff07"
)
_DROP_PATTERN = "[" + "".join("\\" + ch if ch in "\\[]^-" else ch for ch in _DROP_CHARS) + "]+"
_DROP_RE = re.compile(_DROP_PATTERN)
_TRANSLATE = {chr(0xFF10 + i): str(i) for i in range(10)} | {"x": "X", "ｘ": "X", "Ｘ": "X"}
_TRANSLATE_TABLE = str.maketrans(_TRANSLATE)
# Compared after cleaning and lower-casing; these are how clerks write "no ID".
_PLACEHOLDERS = frozenset(
    {"", "0", "无", "空", "暂无", "不详", "null", "none", "nan", "na", "n/a", "#n/a", "/", "\\"}
)
_ID18_RE = re.compile(r"[0-9]{17}[0-9X]")
_ID15_RE = re.compile(r"[0-9]{15}")


class IdInfo(NamedTuple):
    """A cleaned ID number, its status, and what the number itself says about the person."""

    id_number: str | None
    status: str
    birth_date: datetime.date | None
    sex: str | None
    region: str | None


_MISSING = IdInfo(None, "missing", None, None, None)


def check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def upgrade_15(id15: str) -> str:
    """Turn a 15-digit (pre-1999) number into its 18-digit form."""
    first17 = id15[:6] + "19" + id15[6:]
    return first17 + check_char(first17)


def _as_text(value: object) -> str | None:
    """Cell value as text; None for empty cells. Floats keep their repr unless exact."""
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        # Above 2**53 a float has lost digits (an 18-digit ID read as a number), so keep the
        # float's text and let it be 'malformed' rather than invent digits.
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    try:
        return str(value)
    except Exception:
        return None


def _clean(text: str) -> str:
    return _DROP_RE.sub("", text).translate(_TRANSLATE_TABLE)


def _birth_date(yyyymmdd: str) -> datetime.date | None:
    try:
        born = datetime.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None
    return born if _MIN_BIRTH <= born <= _MAX_BIRTH else None


def normalize_id(value: object) -> IdInfo:
    """Clean and classify one ID cell. Never raises."""
    text = _as_text(value)
    if text is None:
        return _MISSING
    cleaned = _clean(text)
    if cleaned.lower() in _PLACEHOLDERS:
        return _MISSING
    status = ""
    number = cleaned
    born: datetime.date | None = None
    if _ID18_RE.fullmatch(cleaned):
        born = _birth_date(cleaned[6:14])
        if born is not None:
            status = "valid" if check_char(cleaned[:17]) == cleaned[17] else "bad_checksum"
    elif _ID15_RE.fullmatch(cleaned):
        born = _birth_date("19" + cleaned[6:12])
        if born is not None:
            number = upgrade_15(cleaned)
            status = "upgraded_15"
    if born is None:
        return IdInfo(cleaned, "malformed", None, None, None)
    sex = "M" if int(number[16]) % 2 else "F"
    return IdInfo(number, status, born, sex, number[:6])


def _text_column(s: pl.Series) -> pl.Series:
    """The series as Utf8 with the same text :func:`_as_text` would give each cell."""
    dtype = s.dtype
    if dtype == pl.Utf8:
        return s
    if dtype == pl.Null:
        return pl.Series(s.name, [None] * len(s), dtype=pl.Utf8)
    if dtype.is_integer():
        return s.cast(pl.Utf8)
    if dtype.is_float():
        f = s.cast(pl.Float64)
        exact = (f == f.floor()) & (f.abs() < 2.0**53)
        as_int = pl.select(
            pl.when(exact).then(f.cast(pl.Int64, strict=False).cast(pl.Utf8))
        ).to_series()
        # Inexact floats are rare and need Python's repr; map only the distinct ones.
        inexact = f.filter(~exact & f.is_not_nan() & f.is_not_null()).unique()
        lookup = {v: repr(v) for v in inexact.to_list()}
        other = f.replace_strict(
            list(lookup), list(lookup.values()), default=None, return_dtype=pl.Utf8
        )
        return pl.select(pl.coalesce(as_int, other)).to_series().alias(s.name)
    try:
        return s.cast(pl.Utf8)
    except Exception:
        return s.map_elements(_as_text, return_dtype=pl.Utf8)


def normalize_ids(s: pl.Series) -> pl.DataFrame:
    """Vectorised :func:`normalize_id`: id_number, id_status, id_birth_date, id_sex, id_region."""
    cleaned = pl.col("v").str.replace_all(_DROP_PATTERN, "").str.replace_many(_TRANSLATE)
    # Staged with_columns: eager selects share no subexpressions, so each stage is computed once.
    frame = _text_column(s).to_frame("v").select(cleaned.alias("c"))
    c = pl.col("c")
    frame = frame.with_columns(
        (c.is_null() | c.str.to_lowercase().is_in(sorted(_PLACEHOLDERS))).alias("missing"),
        c.str.contains(r"^[0-9]{17}[0-9X]$").alias("is18"),
        c.str.contains(r"^[0-9]{15}$").alias("is15"),
    )
    # The first 17 digits as one integer (15-digit numbers get '19' inserted), so digits,
    # birth date and sex come from integer arithmetic rather than 17 string slices.
    n15 = c.cast(pl.Int64, strict=False)
    frame = frame.with_columns(
        pl.when("is18")
        .then(c.str.slice(0, 17).cast(pl.Int64, strict=False))
        .when("is15")
        .then(n15 // 10**9 * 10**11 + 19 * 10**9 + n15 % 10**9)
        .alias("n17")
    )
    n17 = pl.col("n17")
    total = pl.sum_horizontal(
        *((n17 // 10 ** (16 - i)) % 10 * weight for i, weight in enumerate(_WEIGHTS))
    )
    check_of = dict(enumerate(_CHECK_CHARS))
    frame = frame.with_columns(
        (n17 // 10**7 % 10000).alias("year"),
        (n17 // 10**5 % 100).alias("month"),
        (n17 // 10**3 % 100).alias("day"),
        (total % 11).replace_strict(check_of, return_dtype=pl.Utf8).alias("check"),
    )
    frame = frame.with_columns(
        date_expr(pl.col("year"), pl.col("month"), pl.col("day")).alias("born")
    )
    ok = pl.col("born").is_between(_MIN_BIRTH, _MAX_BIRTH).fill_null(False) & ~pl.col("missing")
    frame = frame.with_columns(ok.alias("ok"))
    ok = pl.col("ok")
    status = (
        pl.when("missing")
        .then(pl.lit("missing"))
        .when(~ok)
        .then(pl.lit("malformed"))
        .when("is15")
        .then(pl.lit("upgraded_15"))
        .when(c.str.slice(17, 1) == pl.col("check"))
        .then(pl.lit("valid"))
        .otherwise(pl.lit("bad_checksum"))
    )
    number = (
        pl.when("missing")
        .then(None)
        .when(ok & pl.col("is15"))
        .then(pl.concat_str(c.str.slice(0, 6), pl.lit("19"), c.str.slice(6, 9), pl.col("check")))
        .otherwise(c)
    )
    sex = pl.when(n17 % 2 == 1).then(pl.lit("M")).otherwise(pl.lit("F"))
    return frame.select(
        number.alias("id_number"),
        status.alias("id_status"),
        pl.when(ok).then(pl.col("born")).alias("id_birth_date"),
        pl.when(ok).then(sex).alias("id_sex"),
        pl.when(ok).then(c.str.slice(0, 6)).alias("id_region"),
    )


def _mask_keep(value: str) -> tuple[int, int]:
    if _ID18_RE.fullmatch(value):
        return 6, 4
    keep = min(2, len(value) // 4)
    return keep, keep


def mask_id(value: str | None) -> str | None:
    """Hide the middle of an ID: '450124********123X'; short or odd values show at most 2+2."""
    if value is None:
        return None
    head, tail = _mask_keep(value)
    hidden = len(value) - head - tail
    return value[:head] + "*" * hidden + (value[-tail:] if tail else "")


def mask_ids(s: pl.Series) -> pl.Series:
    """Vectorised :func:`mask_id`."""
    v = pl.col("v")
    n = v.str.len_chars()
    looks_like_id = v.str.contains(r"^[0-9]{17}[0-9X]$")
    head = pl.when(looks_like_id).then(6).otherwise(pl.min_horizontal(pl.lit(2), n // 4))
    tail = pl.when(looks_like_id).then(4).otherwise(pl.min_horizontal(pl.lit(2), n // 4))
    masked = pl.concat_str(
        v.str.head(head).str.pad_end(n - tail, "*"),
        v.str.slice(n - tail),
    )
    text = s.cast(pl.Utf8) if s.dtype != pl.Utf8 else s
    return pl.DataFrame({"v": text}).select(masked.alias(s.name)).to_series()
