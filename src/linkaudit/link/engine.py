"""`link`: find every beneficiary in every department registry, in bulk SQL.

Pipeline per department registry: blocking passes (counted first) → candidate pairs →
comparison levels; then one Fellegi-Sunter model for all registries (u from random pairs, m and a
match share per registry by EM on pattern counts), term-frequency adjusted name weights, and a
decision per department record: the best candidate, `match` / `review` by its probability, and
`review` when two different beneficiaries are both confident matches.

Tables written: `links` (every candidate that is a department record's best, at or above the
review threshold, with per-comparison levels and weights), `link_model` (m, u, weight per
level; λ per registry), `link_passes` (pairs per blocking pass), `entities` (person id per
record: the beneficiary key shared by every record of one person).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from linkaudit.config import LinkageConfig, Manifest, RegistryConfig
from linkaudit.engines.duckdb import Workspace
from linkaudit.errors import WorkspaceError
from linkaudit.faults import fault_point
from linkaudit.link.blocking import (
    BIRTH_DATE_RESIDENCE_COLUMNS,
    DEFAULT_PASSES,
    BlockingPass,
    birth_date_residence_count_sql,
    birth_date_residence_pairs_sql,
    count_pairs_sql,
    id_edits_sql,
    id_variant_pairs_sql,
    key_column,
    pairs_sql,
    parse_passes,
)
from linkaudit.link.comparisons import Comparison, build, default_comparisons
from linkaudit.link.model import LevelParams, Model, estimate_u, run_em
from linkaudit.store import quote_ident, table_name

Progress = Callable[[str, str, int, int], None]


@dataclass
class PassCount:
    registry: str
    name: str
    pairs: int
    skipped: bool


@dataclass
class RegistryLinks:
    registry: str
    records: int
    candidates: int
    matches: int
    reviews: int
    persons: int


@dataclass
class LinkReport:
    registries: list[RegistryLinks] = field(default_factory=list)
    passes: list[PassCount] = field(default_factory=list)
    model: Model | None = None
    weight_histogram: list[tuple[float, int]] = field(default_factory=list)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    reused: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any], reused: bool = False) -> LinkReport:
        """A stored report (the model's level table is not rebuilt)."""
        return cls(
            registries=[RegistryLinks(**r) for r in data["registries"]],
            passes=[PassCount(**p) for p in data["passes"]],
            weight_histogram=[(h["weight"], h["records"]) for h in data["weight_histogram"]],
            seconds=data["seconds"],
            warnings=data["warnings"],
            reused=reused,
        )

    def as_dict(self) -> dict[str, object]:
        model = self.model
        return {
            "registries": [r.__dict__ for r in self.registries],
            "passes": [p.__dict__ for p in self.passes],
            "model": None
            if model is None
            else {
                "lambdas": model.lambdas,
                "iterations": model.iterations,
                "converged": model.converged,
                "levels": [
                    {
                        "comparison": lv.comparison,
                        "level": lv.label,
                        "m": lv.m,
                        "u": lv.u,
                        "weight": round(lv.weight, 3),
                    }
                    for levels in model.levels
                    for lv in levels
                ],
            },
            "weight_histogram": [{"weight": w, "records": n} for w, n in self.weight_histogram],
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
        }


def comparisons_for(manifest: Manifest) -> list[Comparison]:
    specs = manifest.linkage.comparisons
    return default_comparisons() if not specs else [build(s) for s in specs]


def _side_view(
    ws: Workspace, table: str, needed: set[str], reg: RegistryConfig | None = None
) -> str:
    """A subquery exposing every needed column, NULL where the registry lacks it (and the
    address NULL where the registry's address is not the person's: `residence: none`)."""
    have = set(ws.columns(table))
    if reg is not None and reg.residence == "none":
        have.discard("address")
    cols = ["_key"] + [
        quote_ident(c) if c in have else f"NULL AS {quote_ident(c)}" for c in sorted(needed)
    ]
    return f"(SELECT {', '.join(cols)} FROM {quote_ident(table)})"


def _needed_columns(comparisons: list[Comparison]) -> set[str]:
    cols: set[str] = set()
    for c in comparisons:
        cols.update(c.columns)
        if c.tf_column:
            cols.add(c.tf_column)
    return cols


def link_inputs_hash(ws: Workspace, manifest: Manifest) -> str:
    """What the links depend on: every loaded file's checksum and settings, the linkage
    settings and the tool version."""
    from linkaudit import __version__

    rows = ws.rows("SELECT registry, checksum, fields_hash FROM load_log ORDER BY registry")
    spec = {
        "loads": [list(r) for r in rows if r[0] in manifest.registries],
        "linkage": manifest.linkage.model_dump(mode="json"),
        "beneficiaries": manifest.beneficiaries.name,
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def link_workspace(
    manifest: Manifest,
    progress: Progress | None = None,
    ws: Workspace | None = None,
    force: bool = True,
) -> LinkReport:
    """Link the loaded registries. With force=False, links computed from the same inputs and
    settings are reused instead of recomputed."""
    own = ws is None
    ws = ws or Workspace(manifest.database)
    try:
        inputs = link_inputs_hash(ws, manifest)
        if not force and ws.has_table("link_state") and ws.has_table("links"):
            row = ws.row("SELECT inputs_hash, report FROM link_state")
            if row and row[0] == inputs:
                return LinkReport.from_dict(json.loads(row[1]), reused=True)
        # The links are rebuilt table by table: until the new state is written, no state may
        # vouch for them (a run killed half-way must not leave half the links 'reusable').
        ws.run("DROP TABLE IF EXISTS link_state")
        report = _link(ws, manifest, progress)
        fault_point("link_half")
        with ws.transaction():
            ws.run("CREATE TABLE link_state (inputs_hash VARCHAR, report VARCHAR)")
            ws.run(
                "INSERT INTO link_state VALUES (?, ?)",
                [inputs, json.dumps(report.as_dict(), ensure_ascii=False, default=str)],
            )
        return report
    finally:
        if own:
            ws.close()


def _link(ws: Workspace, manifest: Manifest, progress: Progress | None) -> LinkReport:
    started = time.perf_counter()
    report = LinkReport()
    cfg = manifest.linkage
    ben = manifest.beneficiaries
    left = table_name("reg", ben.name)
    if not ws.has_table(left):
        raise WorkspaceError(
            f"{manifest.database}: registry {ben.name!r} is not loaded",
            hint="run `linkaudit load MANIFEST` first",
        )
    sources = [r for r in manifest.sources if ws.has_table(table_name("reg", r.name))]
    missing = [r.name for r in manifest.sources if r not in sources]
    if missing:
        raise WorkspaceError(
            f"{manifest.database}: registries not loaded: {', '.join(missing)}",
            hint="run `linkaudit load MANIFEST` first",
        )
    comparisons = comparisons_for(manifest)
    passes = parse_passes(cfg.blocking if cfg.blocking is not None else DEFAULT_PASSES)
    needed = _needed_columns(comparisons) | {"id_number", "id_status", "id_usable", "id_suspect"}
    for p in passes:
        needed.update(key_column(k) for k in p.keys)
    level_cols = [f"g{i}" for i in range(len(comparisons))]
    steps = len(sources) + 2
    lview = _side_view(ws, left, needed)

    # 1. Candidates and comparison levels, per department registry.
    for i, reg in enumerate(sources):
        if progress:
            progress(reg.name, "blocking", i, steps)
        right = table_name("reg", reg.name)
        rview = _side_view(ws, right, needed, reg)
        selects = []
        for j, p in enumerate(passes):
            if p.is_id_variants:
                sql = id_variant_pairs_sql(left, right)
                pairs = int(ws.value(f"SELECT count(*) FROM ({sql})"))
                report.passes.append(PassCount(reg.name, p.name, pairs, False))
                selects.append(f"SELECT l_key, r_key, {j} AS pass FROM ({sql})")
                continue
            if p.is_birth_date_residence:
                lacks = any(
                    c not in ws.columns(t)
                    for side, t in (("left", left), ("right", right))
                    for c in BIRTH_DATE_RESIDENCE_COLUMNS[side]
                )
                if lacks or reg.residence == "none":
                    continue  # no address of the person's to open a candidate from
                count_sql = birth_date_residence_count_sql(left, right)
                select_sql = birth_date_residence_pairs_sql(left, right)
            elif any(key_column(k) not in ws.columns(t) for k in p.keys for t in (left, right)):
                continue  # a pass on a field one side lacks finds nothing
            else:
                count_sql = count_pairs_sql(p, left, right)
                select_sql = pairs_sql(p, left, right)
            pairs = int(ws.value(count_sql))
            skipped = pairs > cfg.max_block_pairs
            report.passes.append(PassCount(reg.name, p.name, pairs, skipped))
            if skipped:
                report.warnings.append(
                    f"{reg.name}: blocking pass '{p.name}' would produce {pairs:,} pairs "
                    f"(limit linkage.max_block_pairs = {cfg.max_block_pairs:,}); skipped"
                )
                continue
            selects.append(f"SELECT l_key, r_key, {j} AS pass FROM ({select_sql})")
        cand = (
            "\nUNION ALL\n".join(selects)
            if selects
            else ("SELECT NULL::VARCHAR AS l_key, NULL::VARCHAR AS r_key, 0 AS pass WHERE FALSE")
        )
        levels_sql = ", ".join(f"{c.level_sql()} AS g{k}" for k, c in enumerate(comparisons))
        tf_sql = ", ".join(
            f"l.{quote_ident(c.tf_column)} AS tf{k}"
            for k, c in enumerate(comparisons)
            if c.tf_column
        )
        ws.run(
            f"""
            CREATE OR REPLACE TEMP TABLE cmp_{reg.name} AS
            WITH cand AS (
                SELECT l_key, r_key, min(pass) AS pass FROM ({cand}) GROUP BY l_key, r_key
            )
            SELECT c.l_key, c.r_key, c.pass, {levels_sql}{", " + tf_sql if tf_sql else ""}
            FROM cand c
            JOIN {lview} l ON l._key = c.l_key
            JOIN {rview} r ON r._key = c.r_key
            """
        )

    # 2. u from random pairs across all department registries.
    if progress:
        progress("", "estimating model", len(sources), steps)
    level_counts = [np.zeros(len(c.levels)) for c in comparisons]
    n_left = int(ws.value(f"SELECT count(*) FROM {quote_ident(left)}"))
    per_source = max(cfg.u_sample_pairs // max(len(sources), 1), 1000)
    side = max(int(math.sqrt(per_source)), 30)
    for reg in sources:
        right = table_name("reg", reg.name)
        rview = _side_view(ws, right, needed, reg)
        lv = ", ".join(f"{c.level_sql()} AS g{k}" for k, c in enumerate(comparisons))
        counts = ws.frame(
            f"""
            SELECT {", ".join(level_cols)}, count(*) AS n FROM (
              SELECT {lv} FROM
                ({_sample(lview, min(side, n_left), cfg.seed)}) l,
                ({_sample(rview, side, cfg.seed)}) r
            ) GROUP BY ALL
            """
        )
        for k in range(len(comparisons)):
            g = counts.get_column(f"g{k}")
            n = counts.get_column("n")
            for level, cnt in zip(g.to_list(), n.to_list(), strict=True):
                if level is not None:
                    level_counts[k][int(level)] += cnt
    u = estimate_u(level_counts)
    typo_u = _id_neighbour_u(ws, left, sources, n_left, cfg.seed)
    for k, c in enumerate(comparisons):
        for i, lvl in enumerate(c.levels):
            if lvl.u_cap is not None:
                u[k][i] = min(u[k][i], lvl.u_cap)
            if c.name == "citizen_id" and lvl.label in typo_u:
                u[k][i] = typo_u[lvl.label]

    # 3. m and λ by EM on comparison patterns: first over every candidate pair, then over
    #    each department record's best candidate under that first model (one-to-one).
    group_names = [r.name for r in sources]
    rare = [[lvl.rare_for_matches for lvl in c.levels] for c in comparisons]
    floors = [[lvl.m_floor for lvl in c.levels] for c in comparisons]
    pats = _patterns(ws, sources, level_cols, None) if sources else pl.DataFrame()
    if pats.height:
        patterns, counts_arr, groups = _pattern_arrays(pats, level_cols, group_names)
        m, lambdas, iters, converged, history = run_em(
            patterns, counts_arr, groups, group_names, u, rare, floors
        )
        weights = [np.log2(np.asarray(mk) / np.asarray(uk)) for mk, uk in zip(m, u, strict=True)]
        pats = _patterns(ws, sources, level_cols, weights)
        patterns, counts_arr, groups = _pattern_arrays(pats, level_cols, group_names)
        m, lambdas, more, converged, more_history = run_em(
            patterns, counts_arr, groups, group_names, u, rare, floors, initial=m
        )
        iters, history = iters + more, history + more_history
    else:
        m = [np.full(len(c.levels), 1 / len(c.levels)) for c in comparisons]
        lambdas, iters, converged, history = {g: 0.5 for g in group_names}, 0, True, []
    # Score with the prior of a *random* pair (Splink's λ): u came from random pairs, and a
    # candidate pair already agrees on its blocking keys, so the share of matches among
    # candidates would count that agreement twice.
    n_right = {
        r.name: int(ws.value(f"SELECT count(*) FROM {quote_ident(table_name('reg', r.name))}"))
        for r in sources
    }
    n_cand = {r.name: int(ws.value(f"SELECT count(*) FROM cmp_{r.name}")) for r in sources}
    # λ was estimated over best candidates: one pair per department record with candidates.
    n_best = {
        r.name: int(ws.value(f"SELECT count(DISTINCT r_key) FROM cmp_{r.name}")) for r in sources
    }
    lambdas = {
        name: min(max(lam * n_best[name] / max(n_left * n_right[name], 1), 1e-12), 0.5)
        for name, lam in lambdas.items()
    }

    def level_params(mk: list[np.ndarray]) -> list[list[LevelParams]]:
        return [
            [
                LevelParams(c.name, i, lvl.label, float(mk[k][i]), float(u[k][i]))
                for i, lvl in enumerate(c.levels)
            ]
            for k, c in enumerate(comparisons)
        ]

    model = Model(
        levels=level_params(m),
        lambdas=lambdas,
        iterations=iters,
        converged=converged,
        history=history,
        registry_levels=(
            {
                name: level_params(mr)
                for name, mr in _registry_m(
                    patterns, counts_arr, groups, group_names, u, rare, floors, m
                ).items()
            }
            if pats.height
            else {}
        ),
    )
    report.model = model
    _store_model(ws, model)

    # 4. Term frequencies for tf-adjusted comparisons (over every loaded record).
    tf_tables = {}
    for k, c in enumerate(comparisons):
        if not c.tf_column:
            continue
        parts = [
            f"SELECT {quote_ident(c.tf_column)} AS v FROM {quote_ident(t)}"
            for t in [left] + [table_name("reg", r.name) for r in sources]
            if c.tf_column in ws.columns(t)
        ]
        ws.run(
            f"CREATE OR REPLACE TEMP TABLE tf{k} AS SELECT v, count(*) / sum(count(*)) OVER () AS tf "
            f"FROM ({' UNION ALL '.join(parts)}) WHERE v IS NOT NULL GROUP BY v"
        )
        tf_tables[k] = f"tf{k}"

    # 5. Score, pick the best candidate per department record, decide.
    ws.run(
        "CREATE OR REPLACE TABLE links (registry VARCHAR, record_key VARCHAR, person_key VARCHAR, "
        "match_weight DOUBLE, match_probability DOUBLE, decision VARCHAR, pass VARCHAR, "
        "candidates INTEGER, "
        + ", ".join(
            f"{quote_ident('level_' + c.name)} VARCHAR, {quote_ident('weight_' + c.name)} DOUBLE"
            for c in comparisons
        )
        + ", weight_prior DOUBLE)"
    )
    for reg in sources:
        if progress:
            progress(reg.name, "scoring", len(sources) + 1, steps)
        _score_registry(ws, reg.name, left, comparisons, model, tf_tables, passes, cfg)
        records, cand_n = n_right[reg.name], n_cand[reg.name]
        row = ws.row(
            "SELECT count(*) FILTER (decision = 'match'), count(*) FILTER (decision = 'review'), "
            "count(DISTINCT person_key) FILTER (decision = 'match') FROM links WHERE registry = ?",
            [reg.name],
        )
        assert row is not None
        report.registries.append(
            RegistryLinks(reg.name, records, cand_n, int(row[0]), int(row[1]), int(row[2]))
        )
    report.weight_histogram = _weight_histogram(ws, sources)
    _build_entities(ws, left, sources)
    if progress:
        progress("", "done", steps, steps)
    report.seconds = time.perf_counter() - started
    return report


#: Department IDs whose single-edit typos are simulated, and beneficiaries they are tried on.
_TYPO_SAMPLE_IDS = 4000
_TYPO_SAMPLE_BENEFICIARIES = 20_000


def _id_neighbour_u(
    ws: Workspace, left: str, sources: list[RegistryConfig], n_left: int, seed: int
) -> dict[str, float]:
    """u of the ID near-miss levels, measured under the comparison's own definitions.

    Two different people's pair reaches a near-miss level only when one side's ID is a typo
    (it fails its check) that lands one edit from the other person's ID. So the chance is
    simulated: take valid department IDs, form every single-edit typo of each (as
    `blocking.id_edits_sql` defines them, all 18 characters), and count the sampled
    beneficiaries other than the ID's owner that each typo reaches at each level (via the
    beneficiaries' own single edits of that kind). Per typo'd record and beneficiary that is
    P(level | typo, non-match); times the share of suspect IDs (on either side) it is u, the
    chance for a random non-matching pair."""
    per_source = _TYPO_SAMPLE_IDS // max(len(sources), 1)
    parts = [
        f"SELECT id_number FROM {quote_ident(table_name('reg', r.name))} "
        f"WHERE id_status = 'valid' ORDER BY hash(_key || '|{int(seed)}'), _key LIMIT {per_source}"
        for r in sources
    ]
    if not parts or n_left == 0:
        return {}
    sample = " UNION ALL ".join(f"({p})" for p in parts)
    ben = (
        f"SELECT id_number AS b_id FROM {quote_ident(left)} WHERE id_usable "
        f"ORDER BY hash(_key || '|{int(seed)}'), _key LIMIT {_TYPO_SAMPLE_BENEFICIARIES}"
    )
    suspect = f"(SELECT coalesce(avg(id_suspect::INT), 0) FROM {quote_ident(left)} WHERE id_usable)"
    dept_suspect = " UNION ALL ".join(
        f"SELECT id_suspect FROM {quote_ident(table_name('reg', r.name))} WHERE id_usable"
        for r in sources
    )
    row = ws.row(
        f"""
        WITH typos AS ({id_edits_sql(f"SELECT id_number AS x_id, id_number FROM ({sample})")}),
        ben_edits AS ({id_edits_sql(f"SELECT b_id, b_id AS id_number FROM ({ben})")})
        SELECT (SELECT count(*) FROM typos),
               (SELECT count(*) FROM ({ben})),
               count(*) FILTER (b.kind = 'check'),
               count(*) FILTER (b.kind = 'sub'),
               count(*) FILTER (b.kind = 'swap'),
               {suspect} + (SELECT coalesce(avg(id_suspect::INT), 0) FROM ({dept_suspect}))
        FROM typos t JOIN ben_edits b ON b.v18 = t.v18 AND b.b_id <> t.x_id
        """
    )
    if row is None or not row[0] or not row[1]:
        return {}
    typos, sampled_ben, check, substitution, swap = (int(x) for x in row[:5])
    share = max(float(row[5]), 1e-4)
    pairs = typos * sampled_ben
    # Half a hit as a floor: a county too sparse to show any still has neighbours somewhere.
    return {
        "id check character typo": share * max(check, 0.5) / pairs,
        "id one digit mistyped": share * max(substitution, 0.5) / pairs,
        "id two digits transposed": share * max(swap, 0.5) / pairs,
    }


def _patterns(
    ws: Workspace,
    sources: list[RegistryConfig],
    level_cols: list[str],
    weights: list[np.ndarray] | None,
) -> pl.DataFrame:
    """Distinct comparison patterns and their counts per registry: over every candidate pair
    (weights None), or over each department record's best candidate by the given level
    weights. A record is one person's at most, so a namesake who ranks second is no match:
    counting it as one (as EM over all pairs does) teaches EM that true matches often live
    elsewhere, and the address stops telling namesakes apart."""
    parts = []
    for reg in sources:
        source = f"cmp_{reg.name}"
        if weights is not None:
            score = " + ".join(
                f"coalesce({_case([repr(float(w)) for w in wk], col)}, 0.0)"
                for wk, col in zip(weights, level_cols, strict=True)
            )
            source = (
                f"(SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY r_key "
                f"ORDER BY {score} DESC, l_key) AS __rk FROM cmp_{reg.name}) WHERE __rk = 1)"
            )
        parts.append(
            f"SELECT '{reg.name}' AS registry, {', '.join(level_cols)}, count(*) AS n "
            f"FROM {source} GROUP BY ALL"
        )
    return ws.frame("\nUNION ALL\n".join(parts))


def _pattern_arrays(
    pats: pl.DataFrame, level_cols: list[str], group_names: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    patterns = np.column_stack(
        [pats.get_column(c).fill_null(-1).to_numpy().astype(int) for c in level_cols]
    )
    counts = pats.get_column("n").to_numpy().astype(float)
    groups = np.array([group_names.index(g) for g in pats.get_column("registry").to_list()])
    return patterns, counts, groups


#: Pseudo-matches of the pooled m that each registry's own EM starts from and is pulled to:
#: a registry with a few dozen matches keeps close to the pooled values, one with thousands
#: is estimated from its own records.
REGISTRY_PRIOR_MATCHES = 200.0
#: Expected matched pairs a level needs in a registry before its own m replaces the pooled.
REGISTRY_MIN_LEVEL_MATCHES = 30.0


def _registry_m(
    patterns: np.ndarray,
    counts: np.ndarray,
    groups: np.ndarray,
    group_names: list[str],
    u: list[np.ndarray],
    rare: list[list[bool]],
    floors: list[list[float | None]],
    pooled: list[np.ndarray],
) -> dict[str, list[np.ndarray]]:
    """m per registry, by EM on the registry's own patterns with the pooled m as the prior.

    Departments record differently: a business registry's 住所 is the premises, a death
    register's address is the home, some departments blank IDs more often. One pooled m per
    level charges every department the same; per-registry m (MAP, see `run_em`) lets each
    field weigh what it is worth in that department, while a thin registry stays pooled."""
    out: dict[str, list[np.ndarray]] = {}
    for g, name in enumerate(group_names):
        rows = groups == g
        if not rows.any():
            continue
        m, lam, _, _, _ = run_em(
            patterns[rows],
            counts[rows],
            np.zeros(int(rows.sum()), dtype=int),
            [name],
            u,
            rare,
            floors,
            prior=pooled,
            prior_strength=REGISTRY_PRIOR_MATCHES,
        )
        # A level this registry's matches show fewer than a few dozen times is thin data: a
        # handful of pairs (a coincidental namesake among them) would set its weight, so it
        # keeps the pooled value.
        matches = lam[name] * float(counts[rows].sum())
        for k, mk in enumerate(m):
            thin = matches * mk < REGISTRY_MIN_LEVEL_MATCHES
            mk[thin] = pooled[k][thin]
            m[k] = mk / mk.sum()
        out[name] = m
    return out


def _sample(view: str, n: int, seed: int) -> str:
    """n rows picked by a seeded hash of the record key: the same rows on every run (DuckDB's
    reservoir sample is not reproducible across threads)."""
    return f"SELECT * FROM {view} v ORDER BY hash(v._key || '|{int(seed)}'), v._key LIMIT {int(n)}"


def _store_model(ws: Workspace, model: Model) -> None:
    rows = [
        (lv.comparison, lv.level, lv.label, lv.m, lv.u, lv.weight)
        for levels in model.levels
        for lv in levels
    ]
    frame = pl.DataFrame(
        rows,
        schema={
            "comparison": pl.Utf8,
            "level": pl.Int64,
            "label": pl.Utf8,
            "m": pl.Float64,
            "u": pl.Float64,
            "weight": pl.Float64,
        },
        orient="row",
    )
    ws.put("link_model", frame)
    ws.put(
        "link_lambda",
        pl.DataFrame(
            {"registry": list(model.lambdas), "lambda": list(model.lambdas.values())},
            schema={"registry": pl.Utf8, "lambda": pl.Float64},
        ),
    )


def _case(values: list[str], expr: str) -> str:
    whens = " ".join(f"WHEN {i} THEN {v}" for i, v in enumerate(values))
    return f"CASE {expr} {whens} END"


def _score_registry(
    ws: Workspace,
    registry: str,
    left: str,
    comparisons: list[Comparison],
    model: Model,
    tf_tables: dict[int, str],
    passes: list[BlockingPass],
    cfg: LinkageConfig,
) -> None:
    weight_exprs = []
    level_exprs = []
    joins = []
    levels = model.levels_for(registry)
    for k in range(len(comparisons)):
        params = levels[k]
        weights = [f"{lv.weight!r}" for lv in params]
        w = _case(weights, f"g{k}")
        if k in tf_tables:
            # Agreement on a common value counts less: u of the exact level is the value's share.
            m0 = params[0].m
            joins.append(f"LEFT JOIN {tf_tables[k]} t{k} ON t{k}.v = s.tf{k}")
            w = (
                f"CASE WHEN g{k} = 0 THEN log2({m0!r} / greatest(coalesce(t{k}.tf, {params[0].u!r}), 1e-9)) "
                f"ELSE {w} END"
            )
        weight_exprs.append(f"coalesce({w}, 0.0) AS w{k}")
        labels = [f"'{lv.label}'" for lv in params]
        level_exprs.append(f"{_case(labels, f'g{k}')} AS lvl{k}")
    prior = model.prior_weight(registry)
    total = " + ".join(f"w{k}" for k in range(len(comparisons))) + f" + {prior!r}"
    pass_names = _case([f"'{p.name}'" for p in passes], "pass")
    t_match, t_review = cfg.match_threshold, cfg.review_threshold
    margin = cfg.ambiguity_margin
    cols = ", ".join(
        f"lvl{k} AS {quote_ident('level_' + c.name)}, w{k} AS {quote_ident('weight_' + c.name)}"
        for k, c in enumerate(comparisons)
    )
    ws.run(
        f"""
        INSERT INTO links
        WITH scored AS (
            SELECT s.l_key, s.r_key, s.pass, {", ".join(weight_exprs)}, {", ".join(level_exprs)}
            FROM cmp_{registry} s {" ".join(joins)}
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
            WHERE a.rk = 1 AND a.p >= {t_review!r}
            GROUP BY a.r_key
        )
        SELECT '{registry}', r.r_key, r.l_key, r.mw, r.p,
               CASE WHEN r.p >= {t_match!r} AND NOT coalesce(v.ambiguous, FALSE) THEN 'match'
                    ELSE 'review' END,
               {pass_names}, r.n_cand, {cols}, {prior!r}
        FROM ranked r LEFT JOIN rivals v USING (r_key)
        WHERE r.rk = 1 AND r.p >= {t_review!r}
        ORDER BY r.r_key
        """
    )


def _weight_histogram(ws: Workspace, sources: list[RegistryConfig]) -> list[tuple[float, int]]:
    if not sources:
        return []
    rows = ws.rows(
        "SELECT floor(match_weight / 5) * 5 AS b, count(*) FROM links GROUP BY b ORDER BY b"
    )
    return [(float(b), int(n)) for b, n in rows]


def _build_entities(ws: Workspace, left: str, sources: list[RegistryConfig]) -> None:
    """person_id per record: beneficiaries sharing a valid ID are one person (lowest key)."""
    parts = [
        f"""
        SELECT 'beneficiaries' AS registry, _key AS record_key,
               CASE WHEN id_status IN ('valid', 'upgraded_15')
                    THEN min(_key) OVER (PARTITION BY id_number, id_status IN ('valid', 'upgraded_15'))
                    ELSE _key END AS person_id
        FROM {quote_ident(left)}
        """
    ]
    ws.run(f"CREATE OR REPLACE TEMP TABLE _ben_entities AS {parts[0]}")
    ws.run(
        """
        CREATE OR REPLACE TABLE entities AS
        SELECT registry, record_key, person_id FROM _ben_entities
        UNION ALL
        SELECT k.registry, k.record_key, e.person_id
        FROM links k JOIN _ben_entities e ON e.record_key = k.person_key
        WHERE k.decision = 'match'
        """
    )
