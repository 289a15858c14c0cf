"""Citizen ID numbers (GB 11643) as digit arrays: build, check character, render, validate."""

from __future__ import annotations

import numpy as np

WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_CHARS = "10X98765432"
_CHECK_ASCII = np.frombuffer(CHECK_CHARS.encode("ascii"), dtype=np.uint8)
_POW10 = 10 ** np.arange(16, -1, -1, dtype=np.int64)


def date_parts(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day of ``datetime64[D]`` values as int64 arrays.

    Integer civil-from-days arithmetic (H. Hinnant's algorithm): numpy's own conversion to
    months and years is an order of magnitude slower on millions of dates.
    """
    z = dates.astype("datetime64[D]").astype(np.int64) + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def code17(region: np.ndarray, birth: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """The first 17 digits as one int64: region (6) + birth date (8) + sequence (3)."""
    year, month, day = date_parts(birth)
    ymd = year * 10000 + month * 100 + day
    return region.astype(np.int64) * 10**11 + ymd * 1000 + seq.astype(np.int64)


def digits17(codes: np.ndarray) -> np.ndarray:
    """``(n, 17)`` uint8 digits of 17-digit codes."""
    return ((codes[:, None] // _POW10) % 10).astype(np.uint8)


def check_ascii(digits: np.ndarray) -> np.ndarray:
    """ASCII code of the MOD 11-2 check character for ``(n, 17)`` digits."""
    remainder = (digits.astype(np.int64) @ WEIGHTS) % 11
    return _CHECK_ASCII[remainder]


def id_ascii(digits: np.ndarray) -> np.ndarray:
    """``(n, 18)`` ASCII bytes of full IDs (17 digits + check character)."""
    out = np.empty((len(digits), 18), dtype=np.uint8)
    out[:, :17] = digits + ord("0")
    out[:, 17] = check_ascii(digits)
    return out


def ascii_to_str(chars: np.ndarray) -> np.ndarray:
    """``(n, w)`` ASCII bytes → numpy unicode strings."""
    chars = np.ascontiguousarray(chars, dtype=np.uint8)
    return chars.view(f"S{chars.shape[1]}").ravel().astype(f"U{chars.shape[1]}")


def is_valid(ids: np.ndarray) -> np.ndarray:
    """Whether each string is a well-formed 18-character ID with a real date and right check."""
    text = np.asarray(ids, dtype="U32")
    ok = np.char.str_len(text) == 18
    body = np.where(ok, text, "000000190001010000")
    # Non-ASCII characters cannot be part of a valid ID; encode them away as '?'.
    raw = np.frombuffer(
        np.char.encode(body, "ascii", errors="replace").astype("S18").tobytes(), dtype=np.uint8
    ).reshape(-1, 18)
    digits = raw[:, :17].astype(np.int16) - ord("0")
    ok &= ((digits >= 0) & (digits <= 9)).all(axis=1)
    safe = np.clip(digits, 0, 9).astype(np.uint8)
    ok &= check_ascii(safe) == raw[:, 17]
    ymd = safe[:, 6:14].astype(np.int64) @ (10 ** np.arange(7, -1, -1, dtype=np.int64))
    year, month, day = ymd // 10000, ymd // 100 % 100, ymd % 100
    ok &= (year >= 1900) & (month >= 1) & (month <= 12) & (day >= 1)
    start = ((np.clip(year, 1900, 2100) - 1970) * 12 + np.clip(month, 1, 12) - 1).astype(
        "datetime64[M]"
    )
    length = ((start + 1).astype("datetime64[D]") - start.astype("datetime64[D]")).astype(np.int64)
    ok &= day <= length
    return ok
