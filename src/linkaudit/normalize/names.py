"""Chinese personal names: a normalised form and a toneless pinyin key for fuzzy blocking.

Both work character by character through cached tables, so the bulk path only needs
Python for the distinct characters of a column, never per row. NFKC is applied per
character; the rare names where NFKC composes across characters (combining marks, Hangul
jamo) fall back to whole-string NFKC, in the scalar and the bulk path alike.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata

import opencc
import polars as pl

__all__ = [
    "COMPOUND_SURNAMES",
    "SURNAME_ALTERNATE_READINGS",
    "SURNAME_READINGS",
    "T2S_KEPT",
    "normalize_name",
    "normalize_names",
    "pinyin_key",
    "surname_alternates",
]

# -- the surname tables (data: every surname rule of the pinyin key lives here) -------------

#: Single-character surnames read differently from the character's default reading.
SURNAME_READINGS: dict[str, str] = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "区": "ou",
    "仇": "qiu",
    "朴": "piao",
    "查": "zha",
    "盖": "ge",
    "覃": "qin",
    "尉": "wei",
    "繁": "po",
    "翟": "zhai",
    "乐": "yue",
    "万": "wan",
    "员": "yun",
    "柏": "bai",
    "秘": "bi",
    "缪": "miao",
    "种": "chong",
    "任": "ren",
    "沈": "shen",
    "华": "hua",
    "那": "na",
    "句": "gou",
    "过": "guo",
    "长": "chang",
    "藏": "zang",
    "重": "chong",
    "薄": "bo",
    "黑": "he",
    "都": "du",
    "召": "shao",
    "能": "nai",
    "洗": "xian",
    "折": "she",
    "阚": "kan",
    "乜": "nie",
    "哈": "ha",
    "牟": "mou",
    "蕃": "pi",
    "眭": "sui",
}

#: Compound (two-character) surnames and their reading, used when the name is longer than
#: the surname (a two-character name '单于' is surname 单 with given name 于).
COMPOUND_SURNAMES: dict[str, str] = {
    "长孙": "zhang sun",
    "单于": "chan yu",
    "澹台": "tan tai",
    "万俟": "mo qi",
    "尉迟": "yu chi",
    "欧阳": "ou yang",
    "司马": "si ma",
    "上官": "shang guan",
    "诸葛": "zhu ge",
    "东方": "dong fang",
    "皇甫": "huang fu",
    "令狐": "ling hu",
    "宇文": "yu wen",
    "慕容": "mu rong",
    "司徒": "si tu",
    "公孙": "gong sun",
    "夏侯": "xia hou",
    "轩辕": "xuan yuan",
    "钟离": "zhong li",
    "闻人": "wen ren",
    "仲孙": "zhong sun",
    "亓官": "qi guan",
    "西门": "xi men",
    "南宫": "nan gong",
    "第五": "di wu",
    "乐正": "yue zheng",
    "宰父": "zai fu",
    "谷梁": "gu liang",
}

#: Surnames with two common readings: a name keyed under one reading also matches homophones
#: under the other (覃 is qin in most of China, tan in much of Guangxi).
SURNAME_ALTERNATE_READINGS: dict[str, str] = {
    "覃": "tan",
    "区": "qu",
    "单": "dan",
    "解": "jie",
    "查": "cha",
    "朴": "pu",
    "曾": "ceng",
}

#: Traditional characters OpenCC's t2s would merge into another character inside a name,
#: changing its reading (乾 qian -> 干 gan): kept as written.
T2S_KEPT: frozenset[str] = frozenset("乾")


def lazy_pinyin(text: str) -> list[str]:
    """pypinyin's readings, imported on first use: its phrase dictionary takes a few hundred
    milliseconds to load, which a rerun that reuses its links never needs."""
    from pypinyin import lazy_pinyin as readings

    return list(readings(text))


def surname_alternates() -> dict[str, tuple[str, str]]:
    """surname character -> (its keyed reading, the alternate reading)."""
    return {
        ch: (SURNAME_READINGS.get(ch) or lazy_pinyin(ch)[0], alt)
        for ch, alt in SURNAME_ALTERNATE_READINGS.items()
    }


MIDDLE_DOT = "·"
_DOT_VARIANTS = frozenset("\u00b7\u2022\uff0e\u30fb\u2027\u2219\u22c5\uff65\u0387")
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff\u180e")
# Han ideographs (unified, extensions A-H, compatibility), written as literal characters so
# the same class works in Python's re and in polars' regex.
_HAN = (
    "[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    "\U00020000-\U0002a6df\U0002a700-\U0002ebef\U00030000-\U0003134f]"
)
_DOT_BETWEEN_HAN = f"({_HAN})\\.({_HAN})"
_DOT_BETWEEN_HAN_RE = re.compile(_DOT_BETWEEN_HAN)

_norm_table: dict[str, str] = {}
_token_table: dict[str, str] = {}
_composing: set[str] = set()


@functools.cache
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def _is_composing(ch: str) -> bool:
    """True if NFKC may join this character with its neighbour (marks, Hangul jamo)."""
    code = ord(ch)
    return (
        unicodedata.category(ch).startswith("M")
        or unicodedata.combining(ch) != 0
        or 0x1100 <= code <= 0x11FF
        or 0xA960 <= code <= 0xA97F
        or 0xD7B0 <= code <= 0xD7FF
    )


def _after_nfkc(ch: str) -> str:
    if ch in _DOT_VARIANTS:
        return MIDDLE_DOT
    if ch.isspace() or ch in _ZERO_WIDTH:
        return ""
    if ch in T2S_KEPT:
        return ch
    # OpenCC can chain (薴 -> 苧 -> 苎); repeat so that normalising twice changes nothing.
    simplified = ch
    for _ in range(4):
        step = str(_t2s().convert(simplified))
        if step == simplified:
            break
        simplified = step
    return simplified


def _learn_chars(chars: set[str]) -> None:
    """Add unseen characters to the per-character tables."""
    for ch in chars - _norm_table.keys():
        if ch in _DOT_VARIANTS:
            _norm_table[ch] = MIDDLE_DOT
            continue
        decomposed = unicodedata.normalize("NFKC", ch)
        if any(_is_composing(c) for c in decomposed):
            _composing.add(ch)
        _norm_table[ch] = "".join(_after_nfkc(c) for c in decomposed)


def _token(ch: str) -> str:
    """Pinyin syllable of one normalised character; other characters lower-cased; '·' dropped."""
    token = _token_table.get(ch)
    if token is None:
        if ch == MIDDLE_DOT:
            token = ""
        else:
            reading = lazy_pinyin(ch)
            token = reading[0] if reading and reading[0] != ch else ch.lower()
        _token_table[ch] = token
    return token


def _first_token(ch: str) -> str:
    return SURNAME_READINGS.get(ch) or _token(ch)


def _as_text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else str(value)


def _dots_between_han(text: str) -> str:
    # Two passes: one pass cannot rewrite '王.李.张' fully, since matches may not overlap.
    for _ in range(2):
        text = _DOT_BETWEEN_HAN_RE.sub(rf"\1{MIDDLE_DOT}\2", text)
    return text


def normalize_name(value: object) -> str | None:
    """NFKC, no whitespace, one middle dot '·', simplified characters; None if empty."""
    text = _as_text(value)
    if text is None:
        return None
    chars = set(text)
    _learn_chars(chars)
    if chars & _composing:
        mapped = "".join(MIDDLE_DOT if ch in _DOT_VARIANTS else ch for ch in text)
        # Dropping a space can bring a combining mark next to a letter ('A ́'), which the
        # next NFKC would compose; repeat until stable so the result is idempotent.
        for _ in range(4):
            step = "".join(_after_nfkc(c) for c in unicodedata.normalize("NFKC", mapped))
            if step == mapped:
                break
            mapped = step
    else:
        mapped = "".join(_norm_table[ch] for ch in text)
    return _dots_between_han(mapped) or None


def _surname_length(name_norm: str) -> int:
    """1, or 2 when the name starts with a compound surname and has a given name after it."""
    return 2 if len(name_norm) > 2 and name_norm[:2] in COMPOUND_SURNAMES else 1


def pinyin_key(name_norm: str | None) -> str | None:
    """Toneless pinyin, one syllable per character: '韦小宝' -> 'wei xiao bao'; the surname
    (compound or single) read as a surname: '长孙无忌' -> 'zhang sun wu ji'."""
    if not name_norm:
        return None
    size = _surname_length(name_norm)
    surname = COMPOUND_SURNAMES[name_norm[:2]] if size == 2 else _first_token(name_norm[0])
    tokens = [surname, *(_token(ch) for ch in name_norm[size:])]
    return " ".join(t for t in tokens if t) or None


def _distinct_chars(s: pl.Series) -> set[str]:
    chars = set(s.str.split("").explode().drop_nulls().unique().to_list())
    chars.discard("")
    return chars


def _normalize_distinct(names: pl.Series) -> pl.Series:
    """name_norm for a series of distinct, non-null names."""
    chars = _distinct_chars(names)
    _learn_chars(chars)
    changed = {ch: _norm_table[ch] for ch in chars if _norm_table[ch] != ch}
    v = pl.col("v")
    # Staged with_columns: an eager select would evaluate a reused expression twice.
    frame = names.to_frame("v").with_columns(
        (v.str.replace_many(changed) if changed else v).alias("n")
    )
    if frame.get_column("n").str.contains(".", literal=True).any():
        n = pl.col("n")
        for _ in range(2):
            n = n.str.replace_all(_DOT_BETWEEN_HAN, f"${{1}}{MIDDLE_DOT}${{2}}")
        frame = frame.with_columns(n.alias("n"))
    n = pl.col("n")
    mapped: pl.Expr = pl.when(n != "").then(n)
    composing = sorted(chars & _composing)
    if composing:
        slow = names.filter(names.str.contains_any(composing))
        slow_norm = {value: normalize_name(value) for value in slow.to_list()}
        mapped = (
            pl.when(v.str.contains_any(composing))
            .then(v.replace_strict(slow_norm, default=None, return_dtype=pl.Utf8))
            .otherwise(mapped)
        )
    return frame.select(mapped.alias("name_norm")).get_column("name_norm")


def _pinyin(norms: pl.Series) -> pl.Series:
    """name_pinyin for a series of normalised names (null for null): every character
    through the per-character table, the surname (one character, or a compound surname's
    two) through the surname tables."""
    chars = _distinct_chars(norms)
    pieces = {ch: f"{t} " if (t := _token(ch)) else "" for ch in chars}
    first_chars = norms.str.slice(0, 1).drop_nulls().unique().to_list()
    first_pieces = {ch: f"{t} " if (t := _first_token(ch)) else "" for ch in first_chars}
    compounds = {k: f"{v} " for k, v in COMPOUND_SURNAMES.items()}
    v = pl.col("v")
    compound = (v.str.len_chars() > 2) & v.str.slice(0, 2).is_in(list(COMPOUND_SURNAMES))
    size = pl.when(compound).then(2).otherwise(1)
    surname = (
        pl.when(compound)
        .then(v.str.slice(0, 2).replace_strict(compounds, default="", return_dtype=pl.Utf8))
        .otherwise(v.str.slice(0, 1).replace_strict(first_pieces, return_dtype=pl.Utf8))
    )
    frame = norms.to_frame("v").with_columns(surname.alias("s"), size.alias("n"))
    key = pl.concat_str(
        pl.col("s"), v.str.slice(pl.col("n")).str.replace_many(pieces)
    ).str.strip_chars_end(" ")
    frame = frame.select(key.alias("k"))
    k = pl.col("k")
    return frame.select(pl.when(k != "").then(k).alias("name_pinyin")).get_column("name_pinyin")


def normalize_names(s: pl.Series) -> pl.DataFrame:
    """Vectorised :func:`normalize_name` and :func:`pinyin_key`: columns name_norm, name_pinyin."""
    if s.dtype == pl.Null:
        text = pl.Series("v", [None] * len(s), dtype=pl.Utf8)
    elif s.dtype.is_float():
        # str(float) differs from polars' cast; map the (few) distinct values instead.
        floats = s.cast(pl.Float64).drop_nulls().unique()
        as_text = {v: _as_text(v) for v in floats.to_list()}
        text = s.cast(pl.Float64).replace_strict(as_text, default=None, return_dtype=pl.Utf8)
        text = text.alias("v")
    else:
        text = s.cast(pl.Utf8).alias("v")
    distinct = text.drop_nulls().unique()
    norms = _normalize_distinct(distinct)
    # Pinyin straight from each distinct name's norm: a second unique and join on the norms
    # would cost more than the few names that share a norm save.
    lookup = pl.DataFrame({"v": distinct, "name_norm": norms, "name_pinyin": _pinyin(norms)})
    return text.to_frame("v").join(lookup, on="v", how="left", maintain_order="left").drop("v")
