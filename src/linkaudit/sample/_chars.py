"""Character tables for generating names and their clerical variants, as code-point arrays.

Names are held as ``(n, 3)`` arrays of Unicode code points (0 = no character), so that every
substitution is an array lookup rather than a Python loop over names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import opencc
from pypinyin import lazy_pinyin

from linkaudit.sample import _pools

NAME_WIDTH = 3


@dataclass(frozen=True)
class CharTables:
    """Lookup tables keyed by code point: homophones, look-alikes, traditional forms."""

    surnames: np.ndarray  # code points of the surname pool
    surname_p: np.ndarray  # their probabilities
    given_male: np.ndarray
    given_female: np.ndarray
    # Homophones in CSR form: for sorted key code point k[i], alternatives are
    # homo_values[homo_start[i]:homo_start[i + 1]].
    homo_keys: np.ndarray
    homo_start: np.ndarray
    homo_values: np.ndarray
    look_keys: np.ndarray
    look_values: np.ndarray
    trad_keys: np.ndarray
    trad_values: np.ndarray

    def reading(self, chars: str) -> str:
        """Toneless default reading of each character, joined (for 'is this a homophone')."""
        return " ".join(lazy_pinyin(chars))


def _codes(text: str) -> np.ndarray:
    return np.array([ord(ch) for ch in text], dtype=np.uint32)


def _gbk_safe(ch: str) -> bool:
    try:
        ch.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


@functools.cache
def char_tables() -> CharTables:
    """Build the tables once per process; deterministic (all inputs sorted)."""
    surnames = "".join(s for s, _ in _pools.SURNAMES)
    weights = np.array([w for _, w in _pools.SURNAMES], dtype=np.float64)
    male = "".join(dict.fromkeys(_pools.GIVEN_MALE))
    female = "".join(dict.fromkeys(_pools.GIVEN_FEMALE))
    base = set(surnames + male + female)
    pool = sorted(base | set(_pools.HOMOPHONE_EXTRA))

    groups: dict[str, list[str]] = {}
    for ch in pool:
        groups.setdefault(lazy_pinyin(ch)[0], []).append(ch)
    homo_keys: list[int] = []
    homo_start: list[int] = [0]
    homo_values: list[int] = []
    for ch in sorted(base):
        alternatives = [c for c in groups[lazy_pinyin(ch)[0]] if c != ch]
        if alternatives:
            homo_keys.append(ord(ch))
            homo_values.extend(ord(c) for c in alternatives)
            homo_start.append(len(homo_values))

    look = sorted((k, v) for k, v in _pools.LOOKALIKES.items() if k in base)

    converter = opencc.OpenCC("s2t")
    trad: list[tuple[int, int]] = []
    every = sorted(set(pool) | {v for _, v in look})
    for ch in every:
        converted = converter.convert(ch)
        # Only single-character conversions that the GBK vehicle export can still encode.
        if len(converted) == 1 and converted != ch and _gbk_safe(converted):
            trad.append((ord(ch), ord(converted)))

    return CharTables(
        surnames=_codes(surnames),
        surname_p=weights / weights.sum(),
        given_male=_codes(male),
        given_female=_codes(female),
        homo_keys=np.array(homo_keys, dtype=np.uint32),
        homo_start=np.array(homo_start, dtype=np.int64),
        homo_values=np.array(homo_values, dtype=np.uint32),
        look_keys=np.array([ord(k) for k, _ in look], dtype=np.uint32),
        look_values=np.array([ord(v) for _, v in look], dtype=np.uint32),
        trad_keys=np.array([k for k, _ in trad], dtype=np.uint32),
        trad_values=np.array([v for _, v in trad], dtype=np.uint32),
    )


def lookup(keys: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each code in the sorted ``keys`` and whether it is there."""
    pos = np.searchsorted(keys, codes)
    pos = np.minimum(pos, max(len(keys) - 1, 0))
    found = keys[pos] == codes if len(keys) else np.zeros(codes.shape, dtype=bool)
    return pos, found


def names_to_str(codes: np.ndarray) -> np.ndarray:
    """``(n, 3)`` code points → numpy unicode array (trailing zeros drop out)."""
    flat = np.ascontiguousarray(codes, dtype=np.uint32)
    return flat.view(f"<U{flat.shape[1]}").ravel()


def random_names(
    rng: np.random.Generator, male: np.ndarray, surnames: np.ndarray | None = None
) -> np.ndarray:
    """Names for people of the given sex; ``surnames`` (code points) fixes the surname."""
    tables = char_tables()
    n = len(male)
    codes = np.zeros((n, NAME_WIDTH), dtype=np.uint32)
    if surnames is None:
        surnames = tables.surnames[rng.choice(len(tables.surnames), size=n, p=tables.surname_p)]
    codes[:, 0] = surnames
    pick_m = tables.given_male[rng.integers(0, len(tables.given_male), size=(n, 2))]
    pick_f = tables.given_female[rng.integers(0, len(tables.given_female), size=(n, 2))]
    given = np.where(male[:, None], pick_m, pick_f)
    codes[:, 1] = given[:, 0]
    two_chars = rng.random(n) < 0.78
    codes[:, 2] = np.where(two_chars, given[:, 1], 0)
    return codes
