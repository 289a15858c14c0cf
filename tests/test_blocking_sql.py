"""The blocking builders made faster give exactly the pairs of their plain definitions.

Each fast form is checked against the naive SQL it replaces, on random small tables (DuckDB,
in memory): the ID variants without DISTINCT, the birth-date-and-residence pass joined on
township, and pair counts from a beneficiary key-count table made once.
"""

from __future__ import annotations

import duckdb
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from linkaudit.link.blocking import (
    _variants_sql,
    birth_date_residence_pairs_sql,
    count_pairs_sql,
    id_code_sql,
    id_edits_sql,
    key_counts_sql,
    pairs_sql,
    parse_passes,
    x_check_count_sql,
)

_DIGITS = st.text(alphabet="0123456789", min_size=17, max_size=17)
_IDS = st.builds(lambda body, check: body + check, _DIGITS, st.sampled_from("0123456789X"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_IDS, st.sampled_from(["wei ming", "lan yu", None])), max_size=12))
def test_id_variants_have_no_repeated_rows(records: list[tuple[str, str | None]]) -> None:
    """A record's single edits are distinct by construction, so dropping DISTINCT from the
    variants keeps the same rows (record keys are unique)."""
    con = duckdb.connect()
    frame = pl.DataFrame(
        {
            "_key": [f"K{i}" for i in range(len(records))],
            "id_number": [r[0] for r in records],
            "name_pinyin": [r[1] for r in records],
            "id_suspect": [True] * len(records),
        },
        schema={
            "_key": pl.Utf8,
            "id_number": pl.Utf8,
            "name_pinyin": pl.Utf8,
            "id_suspect": pl.Boolean,
        },
    )
    con.register("t", frame.to_arrow())
    total, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT (_key, py, v)) FROM ({_variants_sql('t')})"
    ).fetchone()
    assert total == distinct
    # 17 × 9 substitutions, 10 check characters and one swap per unequal neighbour pair
    # (less the X swapped into place 17, which has no code).
    swaps = sum(sum(a != b for a, b in zip(r[0], r[0][1:], strict=False)) for r in records)
    x_swaps = sum(r[0][17] == "X" for r in records)
    assert total == len(records) * (17 * 9 + 10) + swaps - x_swaps


def _string_edits(number: str) -> list[tuple[str, str]]:
    """The reference: every single edit of an 18-character ID as text (kind, number)."""
    out = []
    for pos in range(17):
        for d in "0123456789":
            if number[pos] != d:
                out.append(("sub", number[:pos] + d + number[pos + 1 :]))
    for c in "0123456789X":
        if number[17] != c:
            out.append(("check", number[:17] + c))
    for pos in range(17):
        if number[pos] != number[pos + 1]:
            swapped = number[:pos] + number[pos + 1] + number[pos] + number[pos + 2 :]
            out.append(("swap", swapped))
    return out


def _code(number: str) -> int:
    return int(number[:17]) * 11 + (10 if number[17] == "X" else int(number[17]))


@settings(max_examples=80, deadline=None)
@given(st.lists(_IDS, min_size=1, max_size=6))
def test_id_edit_codes_are_the_codes_of_the_text_edits(numbers: list[str]) -> None:
    """The integer edits are exactly the text edits, coded; the one edit without a code (an X
    swapped into place 17) is counted, and no usable ID could equal it."""
    con = duckdb.connect()
    con.register(
        "t", pl.DataFrame({"k": list(range(len(numbers))), "id_number": numbers}).to_arrow()
    )
    got = sorted(
        con.execute(f"SELECT k, kind, v FROM ({id_edits_sql('SELECT * FROM t', ['k'])})").fetchall()
    )
    want, uncoded = [], 0
    for k, number in enumerate(numbers):
        for kind, edit in _string_edits(number):
            if edit[:17].isdigit():
                want.append((k, kind, _code(edit)))
            else:
                uncoded += 1
    assert got == sorted(want)
    assert con.execute(x_check_count_sql("SELECT * FROM t")).fetchone() == (uncoded,)
    codes = con.execute(f"SELECT {id_code_sql('id_number')} FROM t ORDER BY k").fetchall()
    assert [c for (c,) in codes] == [_code(n) for n in numbers]


_TOWNS = ["白山镇", "古零镇", "白山", "", None]
_VILLAGES = ["龙昌村", "古零村", "龙", None]


def _address() -> st.SearchStrategy[str | None]:
    parts = st.lists(
        st.sampled_from(["马山县", "白山镇", "古零镇", "龙昌村", "古零村", "15号"]), max_size=4
    )
    return st.one_of(st.none(), parts.map("".join))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.sampled_from(_TOWNS), st.sampled_from(_VILLAGES)),
        max_size=10,
    ),
    st.lists(st.tuples(st.integers(0, 2), _address()), max_size=10),
)
def test_birth_date_residence_pairs_equal_the_plain_join(
    left: list[tuple[int, str | None, str | None]], right: list[tuple[int, str | None]]
) -> None:
    con = duckdb.connect()
    born = ["1980-01-01", "1980-01-02", None]
    lf = pl.DataFrame(
        {
            "_key": [f"L{i}" for i in range(len(left))],
            "birth_date": [born[b] for b, _, _ in left],
            "township": [t for _, t, _ in left],
            "village": [v for _, _, v in left],
        },
        schema={"_key": pl.Utf8, "birth_date": pl.Utf8, "township": pl.Utf8, "village": pl.Utf8},
    )
    rf = pl.DataFrame(
        {
            "_key": [f"R{i}" for i in range(len(right))],
            "birth_date": [born[b] for b, _ in right],
            "address": [a for _, a in right],
        },
        schema={"_key": pl.Utf8, "birth_date": pl.Utf8, "address": pl.Utf8},
    )
    con.register("l_in", lf.to_arrow())
    con.register("r_in", rf.to_arrow())
    con.execute(
        "CREATE TABLE lt AS SELECT _key, CAST(birth_date AS DATE) AS birth_date, township, village FROM l_in"
    )
    con.execute(
        "CREATE TABLE rt AS SELECT _key, CAST(birth_date AS DATE) AS birth_date, address FROM r_in"
    )
    plain = con.execute(
        "SELECT l._key, r._key FROM lt l JOIN rt r ON l.birth_date = r.birth_date "
        "WHERE contains(r.address, l.village) AND contains(r.address, l.township)"
    ).fetchall()
    fast = con.execute(birth_date_residence_pairs_sql("lt", "rt")).fetchall()
    assert sorted(fast) == sorted(plain)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.integers(0, 2)), max_size=12),
    st.lists(st.tuples(st.sampled_from(["a", "b", "c", None]), st.integers(0, 2)), max_size=12),
)
def test_pair_counts_from_a_key_count_table_equal_the_pairs(
    left: list[tuple[str | None, int]], right: list[tuple[str | None, int]]
) -> None:
    con = duckdb.connect()
    for name, rows in (("lt", left), ("rt", right)):
        frame = pl.DataFrame(
            {
                "_key": [f"{name}{i}" for i in range(len(rows))],
                "name": [n for n, _ in rows],
                "grp": [g for _, g in rows],
            },
            schema={"_key": pl.Utf8, "name": pl.Utf8, "grp": pl.Int64},
        )
        con.register(f"{name}_in", frame.to_arrow())
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_in")
    for p in parse_passes([["name", "grp"], "name"]):
        con.execute(f"CREATE OR REPLACE TABLE lc AS {key_counts_sql(p, 'lt', 'l')}")
        pairs = len(con.execute(pairs_sql(p, "lt", "rt")).fetchall())
        assert con.execute(count_pairs_sql(p, "lt", "rt")).fetchone() == (pairs,)
        assert con.execute(count_pairs_sql(p, "lt", "rt", left_counts="lc")).fetchone() == (pairs,)
