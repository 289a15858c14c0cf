"""Citizen ID numbers (GB 11643-1999): cleaning, check character, 15→18 upgrade, masking."""

from __future__ import annotations

import datetime
import math
import re
from typing import NamedTuple

import polars as pl

from linkaudit.normalize.dates import date_expr
from linkaudit.vocabulary import ID_STATUSES

__all__ = [
    "ID_PLACEHOLDERS",
    "ID_STATUSES",
    "PROVINCE_CODES",
    "IdInfo",
    "check_char",
    "mask_id",
    "mask_ids",
    "normalize_id",
    "normalize_ids",
    "upgrade_15",
]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_MIN_BIRTH = datetime.date(1900, 1, 1)

#: The first two digits of a citizen ID: the province-level codes of GB/T 2260, plus 71 (台湾),
#: 81 (香港), 82 (澳门); residence permits for Hong Kong, Macao and Taiwan residents (2018) use
#: 810000, 820000 and 830000. A number starting with 9 is a foreigner's permanent residence ID
#: (2023 format), whose next two digits are the mainland province of issue.
MAINLAND_PROVINCES: dict[str, str] = {
    "11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
    "21": "辽宁", "22": "吉林", "23": "黑龙江",
    "31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西", "37": "山东",
    "41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
    "50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏",
    "61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏", "65": "新疆",
}  # fmt: skip
PROVINCE_CODES: dict[str, str] = MAINLAND_PROVINCES | {
    "71": "台湾",
    "81": "香港",
    "82": "澳门",
    "83": "台湾居民居住证",
}

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

#: How clerks write "no ID", as they type it. One table: every one of these is `missing`
#: (so is any run of zeros). Dashes and spaces vanish in cleaning, so `-`, `--`, `—` and
#: full-width spaces are blank by then.
ID_PLACEHOLDERS = (
    "", "-", "--", "—", "/", "\\", "?", "？", "0", "00",
    "无", "空", "不详", "未知", "暂无",
    "null", "NULL", "none", "None", "nan", "NaN", "na", "N/A", "n/a", "#N/A",
)  # fmt: skip


def _clean(text: str) -> str:
    return _DROP_RE.sub("", text).translate(_TRANSLATE_TABLE)


_PLACEHOLDERS = frozenset(_clean(p).lower() for p in ID_PLACEHOLDERS)
_ZEROS_RE = re.compile(r"0+")
_ID18_RE = re.compile(r"[0-9]{17}[0-9X]")
_ID15_RE = re.compile(r"[0-9]{15}")
# How a number looks after a trip through a float: scientific notation, or a decimal point.
_SCI_PATTERN = r"^[0-9]+(?:\.[0-9]*)?[eE]\+?[0-9]+$"
_SCI_RE = re.compile(_SCI_PATTERN)
_DEC_PATTERN = r"^([0-9]+)\.([0-9]*)$"
_DEC_RE = re.compile(_DEC_PATTERN)
_DIGITS_RE = re.compile(r"[0-9]+")
# 2**53: from here on a binary float cannot hold every whole number, so the digits are lost.
_FLOAT_EXACT_LIMIT = str(2**53)


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
        # From 2**53 on a float has lost digits (an 18-digit ID read as a number): keep its
        # repr ('4.50124198703021e+17'), which classifies as float_damaged, not invented digits.
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    try:
        return str(value)
    except Exception:
        return None


def _lost_digits(digits: str) -> bool:
    """Whether a whole number this long cannot have survived a binary float."""
    digits = digits.lstrip("0")
    return len(digits) > len(_FLOAT_EXACT_LIMIT) or (
        len(digits) == len(_FLOAT_EXACT_LIMIT) and digits >= _FLOAT_EXACT_LIMIT
    )


def _known_region(number: str) -> bool:
    if number[:1] == "9":
        return number[1:3] in MAINLAND_PROVINCES
    return number[:2] in PROVINCE_CODES


def _birth_date(yyyymmdd: str) -> datetime.date | None:
    try:
        born = datetime.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return None
    return born if born >= _MIN_BIRTH else None


def normalize_id(
    value: object, *, as_of: datetime.date | None = None, numeric_cell: bool = False
) -> IdInfo:
    """Clean and classify one ID cell. Never raises.

    ``as_of`` is the audit's reference date (today when not given): a birth date after it is
    ``future_birth``. ``numeric_cell`` says the value was a number in a workbook, so a whole
    number from 2**53 on has lost its last digits (``float_damaged``).
    """
    text = _as_text(value)
    if text is None:
        return _MISSING
    cleaned = _clean(text)
    if cleaned.lower() in _PLACEHOLDERS or _ZEROS_RE.fullmatch(cleaned):
        return _MISSING
    damaged = IdInfo(cleaned, "float_damaged", None, None, None)
    malformed = IdInfo(cleaned, "malformed", None, None, None)
    if _SCI_RE.fullmatch(cleaned):
        return damaged
    number = cleaned
    decimal = _DEC_RE.fullmatch(cleaned)
    if decimal:
        whole, fraction = decimal.groups()
        if _lost_digits(whole):
            return damaged
        if fraction.strip("0"):
            return malformed
        number = whole  # '450124850409522.0': a float that still holds every digit
    elif numeric_cell and _DIGITS_RE.fullmatch(cleaned) and _lost_digits(cleaned):
        return damaged
    if _ID18_RE.fullmatch(number):
        born = _birth_date(number[6:14])
        full = number
    elif _ID15_RE.fullmatch(number):
        born = _birth_date("19" + number[6:12])
        full = upgrade_15(number)
    else:
        return IdInfo(number, "malformed", None, None, None)
    if born is None or not _known_region(number):
        return IdInfo(number, "malformed", None, None, None)
    if born > (as_of or datetime.date.today()):
        return IdInfo(number, "future_birth", None, None, None)
    if len(number) == 15:
        status = "upgraded_15"
    else:
        status = "valid" if check_char(number[:17]) == number[17] else "bad_checksum"
    sex = "M" if int(full[16]) % 2 else "F"
    return IdInfo(full, status, born, sex, full[:6])


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


def _lost_digits_expr(digits: pl.Expr) -> pl.Expr:
    """Vectorised :func:`_lost_digits`."""
    stripped = digits.str.strip_chars_start("0")
    n = stripped.str.len_chars()
    limit = len(_FLOAT_EXACT_LIMIT)
    return (n > limit) | ((n == limit) & (stripped >= _FLOAT_EXACT_LIMIT))


def normalize_ids(
    s: pl.Series, *, as_of: datetime.date | None = None, numeric: pl.Series | None = None
) -> pl.DataFrame:
    """Vectorised :func:`normalize_id`: id_number, id_status, id_birth_date, id_sex, id_region.

    ``numeric`` marks the cells that were numbers in a workbook (see ``normalize_id``).
    """
    as_of = as_of or datetime.date.today()
    cleaned = pl.col("v").str.replace_all(_DROP_PATTERN, "").str.replace_many(_TRANSLATE)
    numeric_cell = (
        numeric.cast(pl.Boolean).fill_null(False)
        if numeric is not None
        else pl.repeat(False, len(s), eager=True, dtype=pl.Boolean)
    )
    text = _text_column(s)
    # Most cells are clean: cleaning can change only those with a character outside [0-9X]
    # (every dropped or translated character is one), so only those are cleaned.
    dirty = text.str.contains("[^0-9X]").fill_null(False)
    if dirty.any():
        at = dirty.arg_true()
        text = text.clone().scatter(at, text.gather(at).to_frame("v").select(cleaned).to_series())
    # A decimal number ('450124850409522.0') needs a '.': only such cells are matched.
    no_text = pl.repeat(None, len(text), dtype=pl.Utf8, eager=True)
    whole_part, fraction_part = no_text, no_text
    dotted = text.str.contains(".", literal=True).fill_null(False)
    if dotted.any():
        at = dotted.arg_true()
        groups = text.gather(at).str.extract_groups(_DEC_PATTERN)
        whole_part = no_text.clone().scatter(at, groups.struct.field("1"))
        fraction_part = no_text.clone().scatter(at, groups.struct.field("2"))
    # Staged with_columns: eager selects share no subexpressions, so each stage is computed once.
    frame = pl.DataFrame(
        {"c0": text, "num": numeric_cell, "dec_whole": whole_part, "dec_fraction": fraction_part}
    )
    c0 = pl.col("c0")
    frame = frame.with_columns(
        (
            c0.is_null()
            | c0.str.to_lowercase().is_in(sorted(_PLACEHOLDERS))
            | c0.str.contains("^0+$")
        ).alias("missing"),
        c0.str.contains(_SCI_PATTERN).alias("sci"),
        c0.str.contains("^[0-9]+$").alias("digits"),
    )
    whole = pl.col("dec_whole")
    fraction = pl.col("dec_fraction")
    frame = frame.with_columns(
        whole.alias("whole"),
        _lost_digits_expr(whole).fill_null(False).alias("whole_lost"),
        fraction.str.contains("[1-9]").fill_null(False).alias("fraction"),
    )
    damaged = (
        pl.col("sci")
        | pl.col("whole_lost")
        | (pl.col("whole").is_null() & pl.col("num") & pl.col("digits") & _lost_digits_expr(c0))
    )
    frame = frame.with_columns(
        (~pl.col("missing") & damaged.fill_null(False)).alias("damaged"),
        pl.when(pl.col("whole").is_not_null() & ~pl.col("fraction") & ~pl.col("whole_lost"))
        .then(pl.col("whole"))
        .otherwise(c0)
        .alias("c"),
    )
    c = pl.col("c")
    region = (
        pl.when(c.str.slice(0, 1) == "9")
        .then(c.str.slice(1, 2).is_in(list(MAINLAND_PROVINCES)))
        .otherwise(c.str.slice(0, 2).is_in(list(PROVINCE_CODES)))
    )
    frame = frame.with_columns(
        c.str.contains(r"^[0-9]{17}[0-9X]$").alias("is18"),
        c.str.contains(r"^[0-9]{15}$").alias("is15"),
        region.alias("region_ok"),
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
    shaped = (
        (pl.col("born") >= _MIN_BIRTH).fill_null(False)
        & pl.col("region_ok").fill_null(False)
        & ~pl.col("missing")
        & ~pl.col("damaged")
        & ~(pl.col("whole").is_not_null() & pl.col("fraction"))
    )
    frame = frame.with_columns(
        shaped.alias("shaped"), (pl.col("born") > as_of).fill_null(False).alias("future")
    )
    frame = frame.with_columns((pl.col("shaped") & ~pl.col("future")).alias("ok"))
    status = (
        pl.when("missing")
        .then(pl.lit("missing"))
        .when("damaged")
        .then(pl.lit("float_damaged"))
        .when(~pl.col("shaped"))
        .then(pl.lit("malformed"))
        .when("future")
        .then(pl.lit("future_birth"))
        .when("is15")
        .then(pl.lit("upgraded_15"))
        .when(c.str.slice(17, 1) == pl.col("check"))
        .then(pl.lit("valid"))
        .otherwise(pl.lit("bad_checksum"))
    )
    ok = pl.col("ok")
    number = (
        pl.when("missing")
        .then(None)
        .when("damaged")
        .then(c0)
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
