"""Clerical noise on the identity columns of department records (name, ID number, birth date).

Each record gets at most one *hard* error, one that changes what the value says (an ID typo or
transposition, a missing ID, a homophone or look-alike character), plus any number of *format*
variants that a normaliser can undo (15-digit legacy ID, full-width digits, lower-case x,
spaces or dashes inside, a leading apostrophe, traditional characters, spaces in the name).
So every true link stays identifiable in principle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from linkaudit.sample._chars import char_tables, lookup, names_to_str
from linkaudit.sample._ids import CHECK_CHARS, ascii_to_str, date_parts, id_ascii

# Hard errors (at most one per record).
NONE, ID_TYPO, ID_TRANSPOSED, ID_MISSING, NAME_HOMOPHONE, NAME_LOOKALIKE = range(6)
HARD_KINDS = ("none", "id_typo", "id_transposed", "id_missing", "name_homophone", "name_lookalike")
RATE_ID_TYPO = 0.03
RATE_ID_TRANSPOSED = 0.01
RATE_ID_MISSING = 0.03
RATE_NAME_HOMOPHONE = 0.03
RATE_NAME_LOOKALIKE = 0.01
# Format variants (any number per record).
RATE_ID_LEGACY15 = 0.02
RATE_ID_FORMAT = 0.03
RATE_LOWER_X = 0.3  # of the IDs that end in X
RATE_NAME_TRADITIONAL = 0.03
RATE_NAME_SPACED = 0.02
FORMAT_KINDS = ("none", "full_width", "spaces", "dashes", "apostrophe")

_CHECK_ASCII = np.frombuffer(CHECK_CHARS.encode("ascii"), dtype=np.uint8)
_LEGACY_COLUMNS = np.r_[0:6, 8:17]
_FULL_WIDTH = [chr(0xFF10 + d) for d in range(10)]


@dataclass(frozen=True)
class NoisyIdentity:
    """Identity columns as a department wrote them, and which noise each record got."""

    name: pl.Series
    id_number: pl.Series
    birth_date: np.ndarray  # datetime64[D], NaT where the department left it blank
    hard: np.ndarray  # int8, one of the hard kinds
    legacy15: np.ndarray
    id_format: np.ndarray  # int8, index into FORMAT_KINDS
    lower_x: np.ndarray
    traditional: np.ndarray
    spaced: np.ndarray


def _pick_column(rng: np.random.Generator, allowed: np.ndarray) -> np.ndarray:
    """For each row, a random column index among the allowed ones (rows need one allowed)."""
    keys = rng.random(allowed.shape)
    keys[~allowed] = -1.0
    return keys.argmax(axis=1)


def _scaled(rate: float, eligible: np.ndarray | np.bool_) -> float:
    """Per-eligible probability that yields ``rate`` over all records."""
    share = float(np.mean(eligible)) if np.size(eligible) else 0.0
    return min(1.0, rate / share) if share > 0 else 0.0


def _with_separator(col: pl.Expr, sep: str) -> pl.Expr:
    long_form = pl.concat_str(
        [col.str.slice(0, 6), col.str.slice(6, 8), col.str.slice(14, 4)], separator=sep
    )
    short_form = pl.concat_str(
        [col.str.slice(0, 6), col.str.slice(6, 6), col.str.slice(12, 3)], separator=sep
    )
    return pl.when(col.str.len_chars() == 18).then(long_form).otherwise(short_form)


def identity_noise(
    rng: np.random.Generator,
    digits: np.ndarray,
    names: np.ndarray,
    birth: np.ndarray,
    birth_fill: float,
    keep_id: np.ndarray | None = None,
) -> NoisyIdentity:
    """Apply clerical noise to ``n`` records given their true 17 ID digits, name, birth date.

    Records marked in ``keep_id`` get no hard error on the ID (no typo, transposition or
    blank): the strangers built to resemble a registrant must stay distinguishable by ID.
    """
    n = len(digits)
    tables = char_tables()
    names = names.copy()
    homo_pos, homo_found = lookup(tables.homo_keys, names)
    homo_found &= names != 0
    look_pos, look_found = lookup(tables.look_keys, names)
    look_found &= names != 0

    # --- choose the one hard error ---
    hard = np.zeros(n, dtype=np.int8)
    can_look = look_found.any(axis=1)
    lookalike = can_look & (rng.random(n) < _scaled(RATE_NAME_LOOKALIKE, can_look))
    hard[lookalike] = NAME_LOOKALIKE
    u = rng.random(n)
    edges = np.cumsum([RATE_ID_TYPO, RATE_ID_TRANSPOSED, RATE_ID_MISSING, RATE_NAME_HOMOPHONE])
    kind = np.searchsorted(edges, u, side="right") + 1  # 1..4 inside the edges, 5 beyond
    free = ~lookalike & (kind <= 4)
    free &= (kind != NAME_HOMOPHONE) | homo_found.any(axis=1)
    if keep_id is not None:
        free &= ~keep_id | (kind == NAME_HOMOPHONE)
    hard[free] = kind[free]

    # --- ID number ---
    chars = id_ascii(digits)
    rows = np.flatnonzero(hard == ID_TYPO)
    if len(rows):
        pos = rng.integers(0, 18, size=len(rows))
        step = rng.integers(1, 10, size=len(rows))
        old = chars[rows, pos]
        new_digit = ((old.astype(np.int64) - ord("0") + step) % 10 + ord("0")).astype(np.uint8)
        # The check position may hold X: move to another of its 11 possible characters.
        old_index = np.argmax(_CHECK_ASCII[None, :] == old[:, None], axis=1)
        new_check = _CHECK_ASCII[(old_index + rng.integers(1, 11, size=len(rows))) % 11]
        chars[rows, pos] = np.where(pos == 17, new_check, new_digit)
    rows = np.flatnonzero(hard == ID_TRANSPOSED)
    if len(rows):
        sub = chars[rows, :17]
        pos = _pick_column(rng, sub[:, :-1] != sub[:, 1:])
        left = sub[np.arange(len(rows)), pos].copy()
        sub[np.arange(len(rows)), pos] = sub[np.arange(len(rows)), pos + 1]
        sub[np.arange(len(rows)), pos + 1] = left
        chars[rows, :17] = sub

    year = date_parts(birth)[0]
    can_legacy = (hard != ID_TYPO) & (hard != ID_TRANSPOSED) & (hard != ID_MISSING)
    can_legacy &= (year >= 1900) & (year <= 1999)
    legacy = can_legacy & (rng.random(n) < _scaled(RATE_ID_LEGACY15, can_legacy))
    full = ascii_to_str(chars)
    short = ascii_to_str(chars[:, _LEGACY_COLUMNS])
    text = np.where(legacy, short, full)

    missing = hard == ID_MISSING
    has_x = np.char.find(text, "X") >= 0
    lower_x = has_x & ~missing & (rng.random(n) < RATE_LOWER_X)
    id_format = np.where(
        ~missing & (rng.random(n) < RATE_ID_FORMAT), rng.integers(1, len(FORMAT_KINDS), size=n), 0
    ).astype(np.int8)

    col = pl.col("id")
    frame = pl.DataFrame({"id": text, "fmt": id_format, "lower": lower_x, "missing": missing})
    col = pl.when(pl.col("lower")).then(col.str.to_lowercase()).otherwise(col)
    formatted = (
        pl.when(pl.col("fmt") == 1)
        .then(col.str.replace_many([str(d) for d in range(10)], _FULL_WIDTH))
        .when(pl.col("fmt") == 2)
        .then(_with_separator(col, " "))
        .when(pl.col("fmt") == 3)
        .then(_with_separator(col, "-"))
        .when(pl.col("fmt") == 4)
        .then(pl.lit("'") + col)
        .otherwise(col)
    )
    id_series = frame.select(
        pl.when(pl.col("missing"))
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(formatted)
        .alias("id")
    ).to_series()

    # --- name ---
    rows = np.flatnonzero(hard == NAME_HOMOPHONE)
    if len(rows):
        column = _pick_column(rng, homo_found[rows])
        key = homo_pos[rows, column]
        start = tables.homo_start[key]
        count = tables.homo_start[key + 1] - start
        choice = start + (rng.random(len(rows)) * count).astype(np.int64)
        names[rows, column] = tables.homo_values[choice]
    rows = np.flatnonzero(hard == NAME_LOOKALIKE)
    if len(rows):
        column = _pick_column(rng, look_found[rows])
        names[rows, column] = tables.look_values[look_pos[rows, column]]
    trad_pos, trad_found = lookup(tables.trad_keys, names)
    trad_found &= names != 0
    can_trad = trad_found.any(axis=1)
    traditional = can_trad & (rng.random(n) < _scaled(RATE_NAME_TRADITIONAL, can_trad))
    names = np.where(traditional[:, None] & trad_found, tables.trad_values[trad_pos], names)
    spaced = rng.random(n) < RATE_NAME_SPACED
    separator = np.where(rng.random(n) < 0.5, " ", "\u3000")
    name_frame = pl.DataFrame({"name": names_to_str(names), "spaced": spaced, "sep": separator})
    name_col = pl.col("name")
    name_series = name_frame.select(
        pl.when(pl.col("spaced"))
        .then(pl.concat_str([name_col.str.slice(0, 1), pl.col("sep"), name_col.str.slice(1)]))
        .otherwise(name_col)
        .alias("name")
    ).to_series()

    # --- birth date: always filled when the ID is missing ---
    filled = missing | (rng.random(n) < birth_fill)
    birth_out = np.where(filled, birth, np.datetime64("NaT"))

    return NoisyIdentity(
        name=name_series,
        id_number=id_series,
        birth_date=birth_out.astype("datetime64[D]"),
        hard=hard,
        legacy15=legacy,
        id_format=id_format,
        lower_x=lower_x,
        traditional=traditional,
        spaced=spaced,
    )


def noise_counts(noisy: NoisyIdentity, mask: np.ndarray) -> dict[str, int]:
    """How many of the masked records got each kind of noise."""
    counts = {"records": int(mask.sum())}
    for code, label in enumerate(HARD_KINDS):
        if code:
            counts[label] = int((mask & (noisy.hard == code)).sum())
    counts["id_legacy15"] = int((mask & noisy.legacy15).sum())
    for code, label in enumerate(FORMAT_KINDS):
        if code:
            counts[f"id_{label}"] = int((mask & (noisy.id_format == code)).sum())
    counts["id_lower_x"] = int((mask & noisy.lower_x).sum())
    counts["name_traditional"] = int((mask & noisy.traditional).sum())
    counts["name_spaced"] = int((mask & noisy.spaced).sum())
    return counts
