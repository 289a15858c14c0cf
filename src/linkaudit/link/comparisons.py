"""Comparisons: small named pieces that turn a candidate pair into an ordered agreement level.

Each comparison is a SQL CASE expression over the beneficiary row `l` and the department row
`r` that yields a level index (0 = strongest agreement) or NULL when it cannot be compared
(a value missing). Levels are named so that `explain` can say what agreed. The SQL is built by
pure functions and is portable (DuckDB functions only where noted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from linkaudit.store import quote_ident


@dataclass(frozen=True)
class Level:
    label: str
    condition: str  # SQL boolean over l.* and r.*
    #: A level that, for true matches, should essentially never occur (two valid, different
    #: IDs); its m probability is floored very low rather than estimated up from noise.
    rare_for_matches: bool = False
    #: Upper bound of u for levels two different people essentially never reach (the same
    #: valid citizen ID). Random pairs cannot measure so small a u: the few true matches among
    #: them dominate it, and the link would lean on the prior instead of on the ID.
    u_cap: float | None = None
    #: Lower bound of m for disagreement levels that true matches do show in real data even
    #: when a sample has none (people move house): keeps one field from vetoing a link.
    m_floor: float | None = None


@dataclass(frozen=True)
class Comparison:
    """An ordered list of levels; the first whose condition holds is the pair's level."""

    name: str
    columns: tuple[str, ...]
    levels: tuple[Level, ...]
    null_condition: str
    #: Column whose value frequency adjusts the weight of level 0 (term-frequency adjustment).
    tf_column: str | None = None
    description: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    def level_sql(self) -> str:
        parts = [f"WHEN {self.null_condition} THEN NULL"]
        parts += [f"WHEN {lvl.condition} THEN {i}" for i, lvl in enumerate(self.levels[:-1])]
        return f"CASE {' '.join(parts)} ELSE {len(self.levels) - 1} END"

    @property
    def labels(self) -> list[str]:
        return [lvl.label for lvl in self.levels]


def _c(side: str, column: str) -> str:
    return f"{side}.{quote_ident(column)}"


def citizen_id() -> Comparison:
    """Citizen ID agreement, falling back to birth dates when either side has no usable ID.

    Every single-digit typo and every adjacent transposition breaks the MOD 11-2 check, so a
    near-miss counts only when one side fails its check; two valid numbers that differ belong
    to two people, however close they are.
    """
    l17 = "substr(l.id_number, 1, 17)"
    r17 = "substr(r.id_number, 1, 17)"
    both = "l.id_usable AND r.id_usable"
    one_bad = "(l.id_suspect OR r.id_suspect)"
    no_id = "NOT (l.id_usable AND r.id_usable)"
    birth_str_l = "strftime(l.birth_date, '%Y%m%d')"
    birth_str_r = "strftime(r.birth_date, '%Y%m%d')"
    levels = (
        Level("id exact", f"{both} AND l.id_number = r.id_number", u_cap=1e-9),
        Level(
            "id check character typo",
            f"{both} AND {one_bad} AND {l17} = {r17}",
            u_cap=1e-8,
        ),
        Level(
            "id one digit mistyped",
            f"{both} AND {one_bad} AND hamming({l17}, {r17}) = 1",
            u_cap=1e-8,
        ),
        Level(
            "id two digits transposed",
            f"{both} AND {one_bad} AND hamming({l17}, {r17}) = 2 "
            f"AND damerau_levenshtein({l17}, {r17}) = 1",
            u_cap=1e-8,
        ),
        Level("no id, birth date exact", f"{no_id} AND l.birth_date = r.birth_date"),
        Level(
            "no id, birth date one digit off",
            f"{no_id} AND levenshtein({birth_str_l}, {birth_str_r}) = 1",
        ),
        Level("no id, birth date differs", f"{no_id}"),
        Level("id different", "TRUE", rare_for_matches=True),
    )
    null = "NOT (l.id_usable AND r.id_usable) AND (l.birth_date IS NULL OR r.birth_date IS NULL)"
    return Comparison(
        "citizen_id",
        ("id_number", "id_usable", "id_suspect", "birth_date"),
        levels,
        null,
        description="citizen ID (birth date when either ID is missing)",
    )


_MAX_NAME = 8


def _char_mismatches(a: str, b: str) -> str:
    """Positions where two equal-length names differ, counted on characters (DuckDB's
    levenshtein counts UTF-8 bytes, so one Chinese character would count as up to three)."""
    terms = [f"(substr({a}, {i}, 1) <> substr({b}, {i}, 1))::INT" for i in range(1, _MAX_NAME + 1)]
    return "(" + " + ".join(terms) + ")"


def chinese_name(column: str = "name", pinyin: str = "name_pinyin") -> Comparison:
    """Chinese names: exact, homophone (same toneless pinyin), one character off, similar."""
    lc, rc, lp, rp = _c("l", column), _c("r", column), _c("l", pinyin), _c("r", pinyin)
    levels = (
        Level("name exact", f"{lc} = {rc}"),
        Level("name homophone", f"{lp} = {rp}"),
        Level(
            "name one character off",
            # In a two-character name one character off leaves only the surname: not evidence.
            f"length({lc}) = length({rc}) AND length({lc}) BETWEEN 3 AND {_MAX_NAME} "
            f"AND {_char_mismatches(lc, rc)} = 1",
        ),
        # Two-character names sharing one character share little more than a surname; a level
        # of its own lets EM weigh it (weak, yet enough beside an exact ID for a look-alike).
        Level(
            "name one of two characters off",
            f"length({lc}) = 2 AND length({rc}) = 2 AND {_char_mismatches(lc, rc)} = 1",
        ),
        Level("name pinyin similar", f"jaro_winkler_similarity({lp}, {rp}) >= 0.9"),
        Level("name differs", "TRUE"),
    )
    return Comparison(
        f"{column}",
        (column, pinyin),
        levels,
        f"{lc} IS NULL OR {rc} IS NULL",
        tf_column=column,
        description="Chinese name on characters and toneless pinyin",
    )


def _banded(column: str, bands: list[tuple[str, str]], tf: bool, description: str) -> Comparison:
    """exact, then the given (label, SQL over lc/rc) bands, then differs."""
    lc, rc = _c("l", column), _c("r", column)
    levels = [Level(f"{column} exact", f"{lc} = {rc}")]
    levels += [Level(f"{column} {label}", cond.format(l=lc, r=rc)) for label, cond in bands]
    levels.append(Level(f"{column} differs", "TRUE"))
    return Comparison(
        column,
        (column,),
        tuple(levels),
        f"{lc} IS NULL OR {rc} IS NULL",
        tf_column=column if tf else None,
        description=description,
    )


def string(
    column: str, thresholds: tuple[float, ...] = (0.92, 0.8), tf: bool = False
) -> Comparison:
    """Generic text: exact, then Jaro-Winkler similarity bands."""
    bands = [
        (f"jaro-winkler >= {t}", f"jaro_winkler_similarity({{l}}, {{r}}) >= {t}")
        for t in thresholds
    ]
    return _banded(column, bands, tf, f"text {column}")


def exact(column: str, tf: bool = False) -> Comparison:
    return _banded(column, [], tf, f"exact {column}")


def edit_distance(column: str, distances: tuple[int, ...] = (1, 2), tf: bool = False) -> Comparison:
    """Codes and numbers typed by hand: exact, then Damerau-Levenshtein distance bands."""
    bands = [(f"within {d} edits", f"damerau_levenshtein({{l}}, {{r}}) <= {d}") for d in distances]
    return _banded(column, bands, tf, f"edit distance on {column}")


def date(column: str = "birth_date") -> Comparison:
    lc, rc = _c("l", column), _c("r", column)
    ls, rs = f"strftime({lc}, '%Y%m%d')", f"strftime({rc}, '%Y%m%d')"
    levels = (
        Level(f"{column} exact", f"{lc} = {rc}"),
        Level(f"{column} one digit off", f"levenshtein({ls}, {rs}) = 1"),
        Level(f"{column} same year", f"year({lc}) = year({rc})"),
        Level(f"{column} differs", "TRUE"),
    )
    return Comparison(
        column, (column,), levels, f"{lc} IS NULL OR {rc} IS NULL", description=f"date {column}"
    )


def residence(address: str = "address") -> Comparison:
    """The department's address text against the beneficiary's township and village."""
    ra = _c("r", address)
    lt, lv = _c("l", "township"), _c("l", "village")
    levels = (
        Level("address in the same village", f"contains({ra}, {lv}) AND contains({ra}, {lt})"),
        Level("address in the same township", f"contains({ra}, {lt})"),
        Level("address elsewhere", "TRUE", m_floor=0.02),
    )
    return Comparison(
        "residence",
        (address, "township", "village"),
        levels,
        f"{ra} IS NULL OR {lt} IS NULL OR {lv} IS NULL",
        description="department address vs registered township and village",
    )


COMPARATORS = {
    "citizen_id": "citizen ID with birth-date fallback (uses id_number, id_status, birth_date)",
    "chinese_name": "Chinese name: exact, homophone, one character off, pinyin similar",
    "string": "text: exact, then Jaro-Winkler bands (thresholds: [0.92, 0.8])",
    "exact": "exact equality",
    "edit_distance": "exact, then Damerau-Levenshtein bands (distances: [1, 2])",
    "date": "date: exact, one digit off, same year",
    "residence": "department address vs the beneficiary's township and village",
}


def build(spec: dict[str, object]) -> Comparison:
    """A comparison from its manifest form: {field, comparator, thresholds?, distances?, tf?}."""
    comparator = str(spec.get("comparator", "string"))
    column = str(spec.get("field", ""))
    tf = bool(spec.get("tf", False))
    if comparator == "citizen_id":
        return citizen_id()
    if comparator == "chinese_name":
        return chinese_name(column or "name", str(spec.get("pinyin", "name_pinyin")))
    if comparator == "string":
        thresholds = tuple(float(t) for t in spec.get("thresholds", (0.92, 0.8)))  # type: ignore[attr-defined]
        return string(column, thresholds, tf)
    if comparator == "exact":
        return exact(column, tf)
    if comparator == "edit_distance":
        distances = tuple(int(d) for d in spec.get("distances", (1, 2)))  # type: ignore[attr-defined]
        return edit_distance(column, distances, tf)
    if comparator == "date":
        return date(column or "birth_date")
    if comparator == "residence":
        return residence(column or "address")
    raise ValueError(f"unknown comparator {comparator!r}")


def default_comparisons() -> list[Comparison]:
    return [citizen_id(), chinese_name(), residence()]
