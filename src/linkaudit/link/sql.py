"""SQL of the linkage stages: pure functions returning DuckDB-dialect text, run by an engine.

Each builder takes table and column names (and model numbers) and returns one statement or one
SELECT, so every stage can be read and tested as text and sent to another engine (Spark gets
the same text through `engines.spark_sql.to_spark`). Only portable constructs, or ones that
transpile faithfully; the string-similarity functions Spark lacks are registered there as
rapidfuzz UDFs under DuckDB's names. Random samples are ordered by an md5 of the key and the
seed, which both engines compute alike (an engine's own `hash()` differs between engines).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from linkaudit.link.comparisons import Comparison
from linkaudit.store import quote_ident, quote_literal

#: Column types of `links` before the per-comparison columns.
LINK_COLUMNS = (
    ("registry", "VARCHAR"),
    ("record_key", "VARCHAR"),
    ("person_key", "VARCHAR"),
    ("match_weight", "DOUBLE"),
    ("match_probability", "DOUBLE"),
    ("decision", "VARCHAR"),
    ("pass", "VARCHAR"),
    ("candidates", "INTEGER"),
)


def count_sql(table: str) -> str:
    return f"SELECT count(*) FROM {quote_ident(table)}"


def side_view_sql(table: str, have: set[str], needed: set[str]) -> str:
    """A subquery exposing every needed column of `table`, NULL where it lacks one (`have`
    is what it has, less the address when that address is not the person's)."""
    cols = ["_key"] + [
        quote_ident(c) if c in have else f"NULL AS {quote_ident(c)}" for c in sorted(needed)
    ]
    return f"(SELECT {', '.join(cols)} FROM {quote_ident(table)})"


def pass_select_sql(pairs_sql: str, index: int) -> str:
    """One blocking pass's pairs, tagged with the pass number (lowest wins per pair)."""
    return f"SELECT l_key, r_key, {int(index)} AS pass FROM ({pairs_sql})"


def stored_pairs_sql(table: str) -> str:
    """The pairs of a pass made beforehand into a table."""
    return f"SELECT l_key, r_key FROM {quote_ident(table)}"


def comparison_levels_sql(
    pass_selects: Sequence[str], lview: str, rview: str, comparisons: Sequence[Comparison]
) -> str:
    """Candidate pairs (the union of the passes, each pair once with its first pass) and
    each comparison's level `g<k>`; the beneficiary's tf value `tf<k>` where adjusted."""
    cand = (
        "\nUNION ALL\n".join(pass_selects)
        if pass_selects
        else (
            "SELECT CAST(NULL AS VARCHAR) AS l_key, CAST(NULL AS VARCHAR) AS r_key, 0 AS pass "
            "WHERE FALSE"
        )
    )
    levels = ", ".join(f"{c.level_sql()} AS g{k}" for k, c in enumerate(comparisons))
    tf = "".join(
        f", l.{quote_ident(c.tf_column)} AS tf{k}" for k, c in enumerate(comparisons) if c.tf_column
    )
    return f"""
        WITH cand AS (
            SELECT l_key, r_key, min(pass) AS pass FROM ({cand}) GROUP BY l_key, r_key
        )
        SELECT c.l_key, c.r_key, c.pass, {levels}{tf}
        FROM cand c
        JOIN {lview} l ON l._key = c.l_key
        JOIN {rview} r ON r._key = c.r_key
    """


def sample_key_sql(key: str, seed: int) -> str:
    """A seeded pseudo-random order of keys that DuckDB and Spark compute alike."""
    return f"md5({key} || '|{int(seed)}')"


def sample_sql(view: str, n: int, seed: int) -> str:
    """n rows picked by a seeded hash of the record key: the same rows on every run and every
    engine (DuckDB's reservoir sample is not reproducible across threads)."""
    return (
        f"SELECT * FROM {view} v ORDER BY {sample_key_sql('v._key', seed)}, v._key LIMIT {int(n)}"
    )


def random_pair_levels_sql(
    left_sample: str, rview: str, n_right: int, seed: int, comparisons: Sequence[Comparison]
) -> str:
    """Level counts over random pairs (a sample of beneficiaries, the table `left_sample`
    made by `sample_sql` once for every registry, × a sample of department records): nearly
    all non-matches, so their level shares estimate u."""
    levels = ", ".join(f"{c.level_sql()} AS g{k}" for k, c in enumerate(comparisons))
    cols = ", ".join(f"g{k}" for k in range(len(comparisons)))
    return f"""
        SELECT {cols}, count(*) AS n FROM (
          SELECT {levels} FROM
            {quote_ident(left_sample)} l,
            ({sample_sql(rview, n_right, seed)}) r
        ) GROUP BY {cols}
    """


def id_typo_sample_sql(sources: Sequence[str], per_source: int, seed: int) -> str:
    """Valid department IDs whose typos are simulated (a seeded sample of each registry; an
    ID in two registries is two samples)."""
    order = f"ORDER BY {sample_key_sql('_key', seed)}, _key"
    return " UNION ALL ".join(
        f"(SELECT id_number FROM {quote_ident(t)} WHERE id_status = 'valid' {order} "
        f"LIMIT {int(per_source)})"
        for t in sources
    )


def id_beneficiary_sample_sql(left: str, beneficiaries: int, seed: int) -> str:
    """The beneficiaries' usable IDs the simulated typos are tried on (a seeded sample)."""
    order = f"ORDER BY {sample_key_sql('_key', seed)}, _key"
    return (
        f"SELECT id_number AS b_id FROM {quote_ident(left)} WHERE id_usable "
        f"{order} LIMIT {int(beneficiaries)}"
    )


def id_neighbour_counts_sql(
    edits_sql: Callable[[str, Sequence[str]], str],
    x_check_count_sql: Callable[[str], str],
    left: str,
    sources: Sequence[str],
    typo_sample: str,
    beneficiary_sample: str,
) -> str:
    """Counts for the simulated u of the ID near-miss levels (see engine._id_neighbour_u):
    typos of sampled valid department IDs (table `typo_sample`, from `id_typo_sample_sql`),
    sampled beneficiaries (`beneficiary_sample`, from `id_beneficiary_sample_sql`), their
    single-edit hits per kind, and the share of suspect IDs on either side. `edits_sql(source)`
    is `blocking.id_edits_sql`, `x_check_count_sql` its count of the edits it gives no code
    (they are typos too, and reach no one). The samples are tables, each read by every edit
    kind."""
    ts, bs = quote_ident(typo_sample), quote_ident(beneficiary_sample)
    dept_suspect = " UNION ALL ".join(
        f"SELECT id_suspect FROM {quote_ident(t)} WHERE id_usable" for t in sources
    )
    suspect = (
        f"(SELECT coalesce(avg(CAST(id_suspect AS INT)), 0) FROM {quote_ident(left)} "
        f"WHERE id_usable)"
    )
    return f"""
        WITH typos AS ({edits_sql(f"SELECT id_number AS x_id, id_number FROM {ts}", ["x_id"])}),
        ben_edits AS ({edits_sql(f"SELECT b_id, b_id AS id_number FROM {bs}", ["b_id"])})
        SELECT (SELECT count(*) FROM typos)
               + ({x_check_count_sql(f"SELECT id_number FROM {ts}")}),
               (SELECT count(*) FROM {bs}),
               count(*) FILTER (WHERE b.kind = 'check'),
               count(*) FILTER (WHERE b.kind = 'sub'),
               count(*) FILTER (WHERE b.kind = 'swap'),
               {suspect} + (SELECT coalesce(avg(CAST(id_suspect AS INT)), 0) FROM ({dept_suspect}))
        FROM typos t JOIN ben_edits b ON b.v = t.v AND b.b_id <> t.x_id
    """


def case_sql(values: Sequence[str], expr: str) -> str:
    """`CASE expr WHEN 0 THEN values[0] ...`: a level index mapped to a value."""
    whens = " ".join(f"WHEN {i} THEN {v}" for i, v in enumerate(values))
    return f"CASE {expr} {whens} END"


def patterns_sql(
    cmp_tables: Sequence[tuple[str, str]],
    level_cols: Sequence[str],
    weights: Sequence[Sequence[float]] | None,
) -> str:
    """Distinct comparison patterns and their counts per registry ((registry, cmp table)
    pairs): over every candidate pair (weights None), or over each department record's best
    candidate by the given level weights."""
    cols = ", ".join(level_cols)
    parts = []
    for registry, table in cmp_tables:
        source = quote_ident(table)
        if weights is not None:
            score = " + ".join(
                f"coalesce({case_sql([repr(float(w)) for w in wk], col)}, 0.0)"
                for wk, col in zip(weights, level_cols, strict=True)
            )
            source = (
                f"(SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY r_key "
                f"ORDER BY {score} DESC, l_key) AS __rk FROM {quote_ident(table)}) "
                f"WHERE __rk = 1)"
            )
        parts.append(
            f"SELECT {quote_literal(registry)} AS registry, {cols}, count(*) AS n "
            f"FROM {source} GROUP BY {cols}"
        )
    return "\nUNION ALL\n".join(parts)


def distinct_records_sql(table: str) -> str:
    """Department records with at least one candidate."""
    return f"SELECT count(DISTINCT r_key) FROM {quote_ident(table)}"


def term_frequency_sql(column: str, tables: Sequence[str]) -> str:
    """Each value's share of all loaded values of `column` (over every table that has it)."""
    parts = [f"SELECT {quote_ident(column)} AS v FROM {quote_ident(t)}" for t in tables]
    return (
        f"SELECT v, count(*) / sum(count(*)) OVER () AS tf "
        f"FROM ({' UNION ALL '.join(parts)}) WHERE v IS NOT NULL GROUP BY v"
    )


def empty_links_sql(comparisons: Sequence[Comparison]) -> str:
    """`links` with no rows, its columns typed (no department registry to link)."""
    cols = [f"CAST(NULL AS {t}) AS {quote_ident(n)}" for n, t in LINK_COLUMNS]
    for c in comparisons:
        cols.append(f"CAST(NULL AS VARCHAR) AS {quote_ident('level_' + c.name)}")
        cols.append(f"CAST(NULL AS DOUBLE) AS {quote_ident('weight_' + c.name)}")
    cols.append("CAST(NULL AS DOUBLE) AS weight_prior")
    return f"SELECT {', '.join(cols)} WHERE FALSE"


def score_sql(
    registry: str,
    cmp_table: str,
    left: str,
    comparisons: Sequence[Comparison],
    weights: Sequence[Sequence[float]],
    labels: Sequence[Sequence[str]],
    tf: dict[int, tuple[str, float, float]],
    prior: float,
    pass_names: Sequence[str],
    match_threshold: float,
    review_threshold: float,
    margin: float,
) -> str:
    """One registry's rows of `links`: score every candidate (sum of level weights, the
    exact level of a tf-adjusted comparison weighted by the value's frequency, plus the
    prior), keep each department record's best, and decide: `match` at or above the match
    threshold unless a different person scores within the margin (then `review`), `review`
    between the thresholds. `tf[k]` = (tf table, m of level 0, u of level 0)."""
    # Decided on the weight, not the probability: p >= t exactly when the weight is at least
    # log2(t / (1 - t)), and a weight is a sum both engines compute to the same bits, while
    # pow() may differ in the last bit between engines (the probability is only reported).
    w_match = math.log2(match_threshold / (1 - match_threshold))
    w_review = math.log2(review_threshold / (1 - review_threshold))
    weight_exprs, level_exprs, joins = [], [], []
    for k in range(len(comparisons)):
        w = case_sql([repr(float(x)) for x in weights[k]], f"g{k}")
        if k in tf:
            table, m0, u0 = tf[k]
            # Agreement on a common value counts less: u of the exact level is its share.
            joins.append(f"LEFT JOIN {quote_ident(table)} t{k} ON t{k}.v = s.tf{k}")
            w = (
                f"CASE WHEN g{k} = 0 THEN log2({m0!r} / greatest(coalesce(t{k}.tf, {u0!r}), 1e-9)) "
                f"ELSE {w} END"
            )
        weight_exprs.append(f"coalesce({w}, 0.0) AS w{k}")
        level_exprs.append(f"{case_sql([quote_literal(x) for x in labels[k]], f'g{k}')} AS lvl{k}")
    total = " + ".join(f"w{k}" for k in range(len(comparisons))) + f" + {prior!r}"
    names = case_sql([quote_literal(p) for p in pass_names], "pass")
    cols = ", ".join(
        f"lvl{k} AS {quote_ident('level_' + c.name)}, w{k} AS {quote_ident('weight_' + c.name)}"
        for k, c in enumerate(comparisons)
    )
    return f"""
        WITH scored AS (
            SELECT s.l_key, s.r_key, s.pass, {", ".join(weight_exprs)}, {", ".join(level_exprs)}
            FROM {quote_ident(cmp_table)} s {" ".join(joins)}
        ),
        weighted AS (
            SELECT *, {total} AS mw, 1.0 / (1.0 + pow(2.0, -({total}))) AS p FROM scored
        ),
        ranked AS (
            SELECT w.*, l.id_number AS l_id,
                   row_number() OVER (PARTITION BY r_key ORDER BY mw DESC, l_key) AS rk,
                   count(*) OVER (PARTITION BY r_key) AS n_cand
            FROM weighted w JOIN {quote_ident(left)} l ON l._key = w.l_key
        ),
        rivals AS (
            -- A second candidate who is a different person and scores within the decision
            -- margin of the best makes the link ambiguous: the data cannot tell them apart.
            SELECT a.r_key, bool_or(b.mw > a.mw - {margin!r} AND (a.l_id IS NULL
                                 OR b.l_id IS NULL OR a.l_id <> b.l_id)) AS ambiguous
            FROM ranked a JOIN ranked b ON a.r_key = b.r_key AND b.rk > 1
            WHERE a.rk = 1 AND a.mw >= {w_review!r}
            GROUP BY a.r_key
        )
        SELECT CAST({quote_literal(registry)} AS VARCHAR) AS registry, r.r_key AS record_key,
               r.l_key AS person_key, r.mw AS match_weight, r.p AS match_probability,
               CASE WHEN r.mw >= {w_match!r} AND NOT coalesce(v.ambiguous, FALSE)
                    THEN 'match' ELSE 'review' END AS decision,
               {names} AS pass, CAST(r.n_cand AS INTEGER) AS candidates, {cols},
               CAST({prior!r} AS DOUBLE) AS weight_prior
        FROM ranked r LEFT JOIN rivals v ON v.r_key = r.r_key
        WHERE r.rk = 1 AND r.mw >= {w_review!r}
    """


def links_sql(registry_tables: Sequence[str]) -> str:
    """`links`: every registry's scored rows (one table each), in a stable order."""
    union = "\nUNION ALL\n".join(f"SELECT * FROM {quote_ident(t)}" for t in registry_tables)
    return f"SELECT * FROM ({union}) ORDER BY registry, record_key"


def registry_link_counts_sql() -> str:
    """Matches, reviews and matched persons per registry."""
    return (
        "SELECT registry, count(*) FILTER (WHERE decision = 'match'), "
        "count(*) FILTER (WHERE decision = 'review'), "
        "count(DISTINCT person_key) FILTER (WHERE decision = 'match') "
        "FROM links GROUP BY registry"
    )


def weight_histogram_sql() -> str:
    return "SELECT floor(match_weight / 5) * 5 AS b, count(*) FROM links GROUP BY b ORDER BY b"


def entities_sql(left: str) -> str:
    """person_id per record: beneficiaries sharing a valid ID are one person (lowest key);
    a department record matched to a beneficiary is that beneficiary's person. (A GROUP BY
    and a join, not a window over the whole register: half the time at scale 5.)"""
    return f"""
        WITH ok AS (
            SELECT _key, id_number, id_status IN ('valid', 'upgraded_15') AS ok
            FROM {quote_ident(left)}
        ),
        rep AS (SELECT id_number, min(_key) AS person_id FROM ok WHERE ok GROUP BY id_number),
        ben AS (
            SELECT 'beneficiaries' AS registry, o._key AS record_key,
                   CASE WHEN o.ok THEN r.person_id ELSE o._key END AS person_id
            FROM ok o LEFT JOIN rep r ON r.id_number = o.id_number
        )
        SELECT registry, record_key, person_id FROM ben
        UNION ALL
        SELECT k.registry, k.record_key, e.person_id
        FROM links k JOIN ben e ON e.record_key = k.person_key
        WHERE k.decision = 'match'
    """
