"""Candidate generation: several blocking passes in SQL, counted before they are run, united.

A pass is a list of keys that must be equal on both sides (a canonical column, or `year(col)`,
`substr(col, start, length)`, `left(col, n)`), or the special pass `id_variants`: every number
one mistyped digit (check character kept), one wrong check character (prefix kept) or two
adjacent characters swapped away from an ID that fails its check, joined exactly (all 18
characters) against the other side.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from linkaudit.store import quote_ident

ID_VARIANTS = "id_variants"
#: The pass opening a candidate from a department row's own birth date and an address that
#: names the beneficiary's township and village (an ID typo with a corrupted surname).
BIRTH_DATE_RESIDENCE = "birth_date_residence"
#: Columns that pass reads on each side.
BIRTH_DATE_RESIDENCE_COLUMNS = {
    "left": ("birth_date", "township", "village"),
    "right": ("birth_date", "address"),
}

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_KEY_RE = re.compile(
    rf"^(?:(?P<col>{_IDENT})|(?P<func>{_IDENT})\(\s*(?P<fcol>{_IDENT})\s*(?P<args>(?:,\s*\d+\s*)*)\))$"
)

#: Functions a blocking key may apply to its column: name -> (min, max) integer arguments.
KEY_FUNCTIONS = {"year": (0, 0), "substr": (1, 2), "left": (1, 1)}

DEFAULT_PASSES: list[str | list[str]] = [
    ["id_number"],
    ID_VARIANTS,
    ["name_pinyin", "birth_date"],
    ["name", "year(birth_date)"],
    BIRTH_DATE_RESIDENCE,
]


@dataclass(frozen=True)
class BlockingPass:
    name: str
    keys: tuple[str, ...]  # empty for id_variants

    @property
    def is_id_variants(self) -> bool:
        return self.name == ID_VARIANTS

    @property
    def is_birth_date_residence(self) -> bool:
        return self.name == BIRTH_DATE_RESIDENCE


@dataclass(frozen=True)
class BlockingKey:
    """A parsed blocking key: a column, or a function of a column with integer arguments."""

    column: str
    function: str | None = None
    args: tuple[int, ...] = ()


_KEY_FORMS = "a column name, year(col), substr(col, a, b) or left(col, n)"


def parse_key(key: str) -> BlockingKey:
    """Parse a blocking key (raises ValueError naming the key if it is not allowed)."""
    m = _KEY_RE.match(key.strip())
    if not m:
        raise ValueError(f"blocking key {key!r} must be {_KEY_FORMS}")
    if m.group("col"):
        return BlockingKey(m.group("col"))
    function = m.group("func")
    args = tuple(int(a) for a in m.group("args").replace(",", " ").split())
    if function not in KEY_FUNCTIONS:
        raise ValueError(f"blocking key {key!r}: {function}() is not allowed; use {_KEY_FORMS}")
    low, high = KEY_FUNCTIONS[function]
    if not low <= len(args) <= high:
        raise ValueError(f"blocking key {key!r}: wrong number of arguments; use {_KEY_FORMS}")
    if any(a < 1 for a in args):
        raise ValueError(f"blocking key {key!r}: positions and lengths start at 1")
    return BlockingKey(m.group("fcol"), function, args)


def key_sql(key: BlockingKey, side: str) -> str:
    """The key's SQL over the table aliased `side` (built from the parts, never by rewriting
    the text: a column may be named like part of its function, as `ye` in `year(ye)`)."""
    column = f"{side}.{quote_ident(key.column)}"
    if key.function is None:
        return column
    return f"{key.function}({', '.join([column, *(str(a) for a in key.args)])})"


def key_column(key: str) -> str:
    """The column a blocking key reads (raises ValueError if the key is not allowed)."""
    return parse_key(key).column


def _key_sql(key: str, side: str) -> str:
    return key_sql(parse_key(key), side)


def parse_passes(specs: list[str | list[str]]) -> list[BlockingPass]:
    passes = []
    for spec in specs:
        if isinstance(spec, str):
            if spec in (ID_VARIANTS, BIRTH_DATE_RESIDENCE):
                passes.append(BlockingPass(spec, ()))
                continue
            spec = [spec]
        keys = tuple(k.strip() for k in spec)
        for k in keys:
            key_column(k)
        passes.append(BlockingPass(" + ".join(keys), keys))
    return passes


def _where_usable(side: str, keys: tuple[str, ...]) -> str:
    conds = [f"{_key_sql(k, side)} IS NOT NULL" for k in keys]
    if any(key_column(k) == "id_number" for k in keys):
        conds.append(f"{side}.id_usable")
    return " AND ".join(conds)


def key_counts_sql(p: BlockingPass, table: str, side: str) -> str:
    """Records per key value of an equality pass on one side (`side` is 'l' or 'r')."""
    keys = ", ".join(f"{_key_sql(k, side)} AS k{i}" for i, k in enumerate(p.keys))
    return (
        f"SELECT {keys}, count(*) AS n FROM {quote_ident(table)} {side} "
        f"WHERE {_where_usable(side, p.keys)} GROUP BY ALL"
    )


def count_pairs_sql(p: BlockingPass, left: str, right: str, left_counts: str | None = None) -> str:
    """SQL counting the pairs an equality pass would produce, without producing them.
    `left_counts`: a table of `key_counts_sql(p, left, 'l')`, made once for every registry."""
    using = ", ".join(f"k{i}" for i in range(len(p.keys)))
    lc = quote_ident(left_counts) if left_counts else f"({key_counts_sql(p, left, 'l')})"
    return (
        f"SELECT coalesce(sum(lc.n * rc.n), 0)::BIGINT FROM {lc} lc "
        f"JOIN ({key_counts_sql(p, right, 'r')}) rc USING ({using})"
    )


def pairs_sql(p: BlockingPass, left: str, right: str) -> str:
    """SQL selecting (l_key, r_key) for an equality pass."""
    on = " AND ".join(f"{_key_sql(k, 'l')} = {_key_sql(k, 'r')}" for k in p.keys)
    return (
        f"SELECT l._key AS l_key, r._key AS r_key FROM {quote_ident(left)} l "
        f"JOIN {quote_ident(right)} r ON {on} "
        f"WHERE {_where_usable('l', p.keys)} AND {_where_usable('r', p.keys)}"
    )


def id_code_sql(column: str) -> str:
    """An 18-character ID (17 digits and 0-9 or X, as every usable ID is) as one BIGINT:
    the 17 digits times 11 plus the check character (X = 10). One-to-one on such IDs, so two
    IDs are equal exactly when their codes are; integers hash and compare several times faster
    than 18-byte strings in the ID-variant joins."""
    return (
        f"(CAST(substr({column}, 1, 17) AS BIGINT) * 11 + CASE substr({column}, 18, 1) "
        f"WHEN 'X' THEN 10 ELSE CAST(substr({column}, 18, 1) AS BIGINT) END)"
    )


def _digit(column: str, pos: str) -> str:
    return f"CAST(substr({column}, {pos}, 1) AS BIGINT)"


#: (position, 11 * 10^(17 - position): what one unit of that digit adds to a code, and for
#: a swap with the next digit the difference of the two places; integers, as literals).
_PLACES = ", ".join(
    f"({pos}, {11 * 10 ** (17 - pos)}, {11 * 10 ** (17 - pos) - 11 * 10 ** (16 - pos) if pos < 17 else 0})"
    for pos in range(1, 18)
)


def id_edits_sql(source: str, carry: Sequence[str], id_column: str = "id_number") -> str:
    """The code (`id_code_sql`) of every 18-character number one edit away from `source`'s
    IDs, as `v`, with the source's columns `carry`: a substitution in the first 17
    characters (the check character kept), a substitution of the check character (the prefix
    kept) or an adjacent swap. These are exactly the near-miss levels of
    `comparisons.citizen_id`; `kind` names which. One edit has no code: swapping a check
    character X into place 17, which no usable ID can equal (their first 17 are digits);
    `x_check_count_sql` says how many such edits a source has.

    Arithmetic on the code, no division; each ID's code is computed once and each of its
    digits once per place (not once per edit: ten times less work, measured 0.48 -> 0.05 s for
    the 3.6M edits of 20,000 IDs)."""
    i = id_column
    kept = ", ".join(quote_ident(c) for c in carry)
    check = f"CASE substr({i}, 18, 1) WHEN 'X' THEN 10 ELSE {_digit(i, '18')} END"
    base = (
        f"SELECT {kept}, {id_code_sql(i)} AS __code, {check} AS __chk, {i} AS __id "
        f"FROM ({source}) s WHERE length({i}) = 18"
    )
    places = (
        f"SELECT b.*, p.pos AS __pos, p.place AS __place, p.swap AS __swap, "
        f"{_digit('b.__id', 'p.pos')} AS __dg, "
        f"CASE WHEN p.pos < 17 THEN {_digit('b.__id', 'p.pos + 1')} END AS __nx "
        f"FROM ({base}) b, (VALUES {_PLACES}) p(pos, place, swap)"
    )
    return f"""
        SELECT {kept}, 'sub' AS kind, __code + (d - __dg) * __place AS v
        FROM ({places}) e, range(0, 10) dd(d)
        WHERE __dg <> d
        UNION ALL
        SELECT {kept}, 'check' AS kind, __code - __chk + c AS v
        FROM ({base}) e, range(0, 11) cc(c)
        WHERE __chk <> c
        UNION ALL
        SELECT {kept}, 'swap' AS kind, __code + (__nx - __dg) * __swap AS v
        FROM ({places}) e
        WHERE __pos < 17 AND __dg <> __nx
        UNION ALL
        SELECT {kept}, 'swap' AS kind, __code + (__chk - __dg) * 10 AS v
        FROM ({places}) e
        WHERE __pos = 17 AND __chk < 10 AND __dg <> __chk
    """


def x_check_count_sql(source: str, id_column: str = "id_number") -> str:
    """How many of `source`'s IDs end in X: each has one edit (the swap of places 17 and 18)
    that `id_edits_sql` gives no code (see there)."""
    return f"SELECT count(*) FROM ({source}) s WHERE length({id_column}) = 18 AND substr({id_column}, 18, 1) = 'X'"


def _variants_sql(table: str) -> str:
    """The code of every number one edit away from a suspect ID (see `id_edits_sql`).

    No DISTINCT: a record's edits are distinct by construction (a substitution changes one of
    the first 17 characters, a check typo the 18th, a swap two neighbours, each at its own
    place) and record keys are unique, so the rows are too; deduplicating 2M variant rows
    cost ~1 s per registry at scale 5. The pairs' UNION below removes repeated pairs."""
    source = f"SELECT _key, name_pinyin AS py, id_number FROM {quote_ident(table)} WHERE id_suspect"
    return f"SELECT _key, py, v FROM ({id_edits_sql(source, ['_key', 'py'])})"


def _codes_sql(table: str) -> str:
    """The usable IDs of `table` as codes (`id_code_sql`), with key and surname."""
    return (
        f"(SELECT _key, name_pinyin, {id_code_sql('id_number')} AS code "
        f"FROM {quote_ident(table)} WHERE id_usable)"
    )


_SAME_SURNAME = "({a} IS NULL OR {b} IS NULL OR split_part({a}, ' ', 1) = split_part({b}, ' ', 1))"


def id_variant_pairs_sql(left: str, right: str) -> str:
    """Pairs where one side's bad-check ID is a single typo or swap away from the other's ID
    and the surnames sound alike: a county's IDs are dense, so a near-miss number alone mostly
    finds a neighbour, while a person's surname seldom changes between registries."""
    return f"""
        SELECT v._key AS l_key, r._key AS r_key
        FROM ({_variants_sql(left)}) v JOIN {_codes_sql(right)} r ON r.code = v.v
        WHERE {_SAME_SURNAME.format(a="v.py", b="r.name_pinyin")}
        UNION
        SELECT l._key AS l_key, v._key AS r_key
        FROM ({_variants_sql(right)}) v JOIN {_codes_sql(left)} l ON l.code = v.v
        WHERE {_SAME_SURNAME.format(a="v.py", b="l.name_pinyin")}
    """


def birth_date_residence_count_sql(left: str, right: str) -> str:
    """An upper bound of the pairs of the birth-date-and-address pass: pairs sharing a birth
    date (the address test is applied to those only)."""
    return (
        f"SELECT coalesce(sum(lc.n * rc.n), 0)::BIGINT FROM "
        f"(SELECT birth_date, count(*) AS n FROM {quote_ident(left)} WHERE birth_date IS NOT NULL "
        f"AND township IS NOT NULL AND village IS NOT NULL GROUP BY ALL) lc "
        f"JOIN (SELECT birth_date, count(*) AS n FROM {quote_ident(right)} "
        f"WHERE birth_date IS NOT NULL AND address IS NOT NULL GROUP BY ALL) rc USING (birth_date)"
    )


def birth_date_residence_pairs_sql(left: str, right: str) -> str:
    """Pairs whose birth dates agree and whose department address names the beneficiary's
    township and village: evidence enough to compare the pair even when both the ID and the
    surname were mistyped (the comparisons then weigh it)."""
    # The same pairs as `l.birth_date = r.birth_date AND contains(r.address, l.village) AND
    # contains(r.address, l.township)`, found without testing every pair sharing a birth date
    # (5.3M at scale 5): each department address is first matched to the beneficiaries'
    # townships it names (distinct addresses × distinct townships), then the join is on birth
    # date and township. A beneficiary has one township, so no pair comes twice.
    lt, rt = quote_ident(left), quote_ident(right)
    # Subqueries, not CTEs: this SELECT is nested in the candidates' own WITH.
    return f"""
        SELECT l._key AS l_key, r._key AS r_key
        FROM {rt} r
        JOIN (
            SELECT a.address, t.township
            FROM (SELECT DISTINCT address FROM {rt} WHERE address IS NOT NULL) a
            JOIN (SELECT DISTINCT township FROM {lt} WHERE township IS NOT NULL) t
              ON contains(a.address, t.township)
        ) n ON n.address = r.address
        JOIN {lt} l ON l.birth_date = r.birth_date AND l.township = n.township
        WHERE contains(r.address, l.village)
    """
