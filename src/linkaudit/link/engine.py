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
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from linkaudit import state_sql
from linkaudit.config import LinkageConfig, Manifest, RegistryConfig
from linkaudit.engines.duckdb import Workspace
from linkaudit.engines.factory import close_data_engine, data_engine
from linkaudit.errors import WorkspaceError
from linkaudit.faults import fault_point
from linkaudit.link import sql
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
    key_counts_sql,
    pairs_sql,
    parse_passes,
    x_check_count_sql,
)
from linkaudit.link.comparisons import Comparison, build, default_comparisons
from linkaudit.link.model import LevelParams, Model, estimate_u, run_em
from linkaudit.store import table_name

if TYPE_CHECKING:
    from linkaudit.engines.base import Engine

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


def link_inputs_hash(ws: Workspace, manifest: Manifest) -> str:
    """What the links depend on: every loaded file's checksum and settings, the linkage
    settings and the tool version."""
    from linkaudit._version import __version__

    rows = ws.rows(state_sql.load_checksums_sql())
    spec = {
        "loads": [list(r) for r in rows if r[0] in manifest.registries],
        "linkage": manifest.linkage.model_dump(mode="json"),
        "beneficiaries": manifest.beneficiaries.name,
        "version": __version__,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def comparisons_for(manifest: Manifest) -> list[Comparison]:
    specs = manifest.linkage.comparisons
    return default_comparisons() if not specs else [build(s) for s in specs]


@dataclass
class LinkPlan:
    """What one linkage run compares: the beneficiary table, the department registries, the
    comparisons and blocking passes, and the columns each side must expose."""

    left: str
    sources: list[RegistryConfig]
    comparisons: list[Comparison]
    passes: list[BlockingPass]
    needed: set[str]
    cfg: LinkageConfig
    #: Each registry table's columns, read once (a catalog query costs ~3 ms, and the passes
    #: asked ~130 times).
    table_columns: dict[str, frozenset[str]] = field(default_factory=dict)

    #: Pass name -> temp table of the beneficiaries' records per key value (made once).
    key_counts: dict[str, str] = field(default_factory=dict)

    def columns(self, table: str) -> frozenset[str]:
        return self.table_columns[table]

    def left_counts(self, data: Engine, p: BlockingPass) -> str:
        """The beneficiaries' records per key value of pass `p`, as a temp table made on first
        use: each registry's pair count joins it instead of grouping the register again."""
        if p.name not in self.key_counts:
            table = f"key_counts_{len(self.key_counts)}"
            data.create(table, key_counts_sql(p, self.left, "l"), temp=True)
            self.key_counts[p.name] = table
        return self.key_counts[p.name]

    def drop_key_counts(self, data: Engine) -> None:
        for table in self.key_counts.values():
            data.drop(table)
        self.key_counts.clear()

    @property
    def level_cols(self) -> list[str]:
        return [f"g{k}" for k in range(len(self.comparisons))]

    def right(self, reg: RegistryConfig) -> str:
        return table_name("reg", reg.name)

    def cmp_table(self, reg: RegistryConfig) -> str:
        return f"cmp_{reg.name}"

    def view(self, table: str, reg: RegistryConfig | None = None) -> str:
        """A side of a pair: every needed column, NULL where the registry lacks it (and the
        address NULL where it is not the person's: `residence: none`)."""
        have = set(self.columns(table))
        if reg is not None and reg.residence == "none":
            have.discard("address")
        return sql.side_view_sql(table, have, self.needed)


def link_workspace(
    manifest: Manifest,
    progress: Progress | None = None,
    ws: Workspace | None = None,
    force: bool = True,
    data: Engine | None = None,
) -> LinkReport:
    """Link the loaded registries. With force=False, links computed from the same inputs and
    settings are reused instead of recomputed. `ws` keeps the link state (the workspace);
    `data` runs the linkage (the same DuckDB workspace, or a Spark engine)."""
    own = ws is None
    ws = ws or Workspace(manifest.database)
    data = data or (data_engine(manifest, ws) if own else ws)
    try:
        inputs = link_inputs_hash(ws, manifest)
        if not force and ws.has_table("link_state") and data.has_table("links"):
            row = ws.row(state_sql.state_read_sql("link_state", "inputs_hash"))
            if row and row[0] == inputs:
                return LinkReport.from_dict(json.loads(row[1]), reused=True)
        # The links are rebuilt table by table: until the new state is written, no state may
        # vouch for them (a run killed half-way must not leave half the links 'reusable').
        ws.drop("link_state")
        report = _link(data, manifest, progress)
        fault_point("link_half")
        with ws.transaction():
            ws.run(state_sql.state_table_sql("link_state", "inputs_hash"))
            ws.run(
                state_sql.state_insert_sql("link_state"),
                [inputs, json.dumps(report.as_dict(), ensure_ascii=False, default=str)],
            )
        return report
    finally:
        if own:
            close_data_engine(data, ws)
            ws.close()


def _link(data: Engine, manifest: Manifest, progress: Progress | None) -> LinkReport:
    """The stages in order; each is one function below."""
    started = time.perf_counter()
    report = LinkReport()
    plan = _plan(data, manifest)
    steps = len(plan.sources) + 2
    for i, reg in enumerate(plan.sources):
        if progress:
            progress(reg.name, "blocking", i, steps)
        _candidates(data, plan, reg, report)
    plan.drop_key_counts(data)
    if progress:
        progress("", "estimating model", len(plan.sources), steps)
    model = _estimate_model(data, plan)
    report.model = model
    _store_model(data, model)
    tf_tables = _term_frequencies(data, plan)
    if progress:
        progress("", "scoring", len(plan.sources) + 1, steps)
    _score(data, plan, model, tf_tables)
    report.registries = _registry_counts(data, plan)
    report.weight_histogram = [(float(b), int(n)) for b, n in data.rows(sql.weight_histogram_sql())]
    data.create("entities", sql.entities_sql(plan.left))
    if progress:
        progress("", "done", steps, steps)
    report.seconds = time.perf_counter() - started
    return report


def _plan(data: Engine, manifest: Manifest) -> LinkPlan:
    """The linkage of this manifest, after checking every registry it names is loaded."""
    ben = manifest.beneficiaries
    left = table_name("reg", ben.name)
    if not data.has_table(left):
        raise WorkspaceError(
            f"{manifest.database}: registry {ben.name!r} is not loaded",
            hint="run `linkaudit load MANIFEST` first",
        )
    sources = [r for r in manifest.sources if data.has_table(table_name("reg", r.name))]
    missing = [r.name for r in manifest.sources if r not in sources]
    if missing:
        raise WorkspaceError(
            f"{manifest.database}: registries not loaded: {', '.join(missing)}",
            hint="run `linkaudit load MANIFEST` first",
        )
    cfg = manifest.linkage
    comparisons = comparisons_for(manifest)
    passes = parse_passes(cfg.blocking if cfg.blocking is not None else DEFAULT_PASSES)
    needed = {"id_number", "id_status", "id_usable", "id_suspect"}
    for c in comparisons:
        needed.update(c.columns)
        if c.tf_column:
            needed.add(c.tf_column)
    for p in passes:
        needed.update(key_column(k) for k in p.keys)
    tables = [left] + [table_name("reg", r.name) for r in sources]
    columns = {t: frozenset(data.columns(t)) for t in tables}
    return LinkPlan(left, sources, comparisons, passes, needed, cfg, columns)


def _pass_pairs(
    data: Engine, plan: LinkPlan, reg: RegistryConfig, p: BlockingPass
) -> tuple[str, str | None] | None:
    """(pairs SQL, count SQL or None when not guarded) of one blocking pass on one registry,
    or None when the pass cannot find anything there (a key one side lacks)."""
    left, right = plan.left, plan.right(reg)
    if p.is_id_variants:
        return id_variant_pairs_sql(left, right), None
    if p.is_birth_date_residence:
        lacks = any(
            c not in plan.columns(t)
            for side, t in (("left", left), ("right", right))
            for c in BIRTH_DATE_RESIDENCE_COLUMNS[side]
        )
        if lacks or reg.residence == "none":
            return None  # no address of the person's to open a candidate from
        return birth_date_residence_pairs_sql(left, right), birth_date_residence_count_sql(
            left, right
        )
    if any(key_column(k) not in plan.columns(t) for k in p.keys for t in (left, right)):
        return None
    return pairs_sql(p, left, right), count_pairs_sql(p, left, right, plan.left_counts(data, p))


def _candidates(data: Engine, plan: LinkPlan, reg: RegistryConfig, report: LinkReport) -> None:
    """Blocking: each pass's pairs, counted first (a pass over `max_block_pairs` is skipped
    with a warning: a runaway block must not swamp the run), united into candidate pairs,
    and every comparison's level for each pair, into `cmp_<registry>`."""
    selects = []
    staged = []
    for j, p in enumerate(plan.passes):
        built = _pass_pairs(data, plan, reg, p)
        if built is None:
            continue
        pairs, count = built
        if count is None:
            # Not guarded (its pairs are bounded by the suspect IDs): made once, counted
            # from the table, not computed twice.
            table = f"pairs_{reg.name}_{j}"
            data.create(table, pairs, temp=True)
            staged.append(table)
            n = int(data.value(sql.count_sql(table)))
            report.passes.append(PassCount(reg.name, p.name, n, False))
            selects.append(sql.pass_select_sql(sql.stored_pairs_sql(table), j))
            continue
        n = int(data.value(count))
        skipped = n > plan.cfg.max_block_pairs
        report.passes.append(PassCount(reg.name, p.name, n, skipped))
        if skipped:
            report.warnings.append(
                f"{reg.name}: blocking pass '{p.name}' would produce {n:,} pairs "
                f"(limit linkage.max_block_pairs = {plan.cfg.max_block_pairs:,}); skipped"
            )
            continue
        selects.append(sql.pass_select_sql(pairs, j))
    lview = plan.view(plan.left)
    rview = plan.view(plan.right(reg), reg)
    data.create(
        plan.cmp_table(reg),
        sql.comparison_levels_sql(selects, lview, rview, plan.comparisons),
        temp=True,
    )
    for table in staged:
        data.drop(table)


def _estimate_u(data: Engine, plan: LinkPlan, n_left: int) -> list[np.ndarray]:
    """u, the chance of each level for two different people: level shares over random pairs
    (a seeded sample of beneficiaries × department records, per registry), capped where a
    level (the same valid ID) is too rare between strangers for a sample to measure, and for
    the ID near-miss levels simulated from the IDs themselves (`_id_neighbour_u`)."""
    cfg, comparisons = plan.cfg, plan.comparisons
    level_counts = [np.zeros(len(c.levels)) for c in comparisons]
    per_source = max(cfg.u_sample_pairs // max(len(plan.sources), 1), 1000)
    side = max(int(math.sqrt(per_source)), 30)
    left_sample = "u_sample_left"
    data.create(
        left_sample, sql.sample_sql(plan.view(plan.left), min(side, n_left), cfg.seed), temp=True
    )
    for reg in plan.sources:
        rview = plan.view(plan.right(reg), reg)
        counts = data.frame(
            sql.random_pair_levels_sql(left_sample, rview, side, cfg.seed, comparisons)
        )
        n = counts.get_column("n").to_list()
        for k in range(len(comparisons)):
            for level, cnt in zip(counts.get_column(f"g{k}").to_list(), n, strict=True):
                if level is not None:
                    level_counts[k][int(level)] += cnt
    data.drop(left_sample)
    u = estimate_u(level_counts)
    typo_u = _id_neighbour_u(data, plan.left, plan.sources, n_left, cfg.seed)
    for k, c in enumerate(comparisons):
        for i, lvl in enumerate(c.levels):
            if lvl.u_cap is not None:
                u[k][i] = min(u[k][i], lvl.u_cap)
            if c.name == "citizen_id" and lvl.label in typo_u:
                u[k][i] = typo_u[lvl.label]
    return u


def _estimate_m(
    data: Engine, plan: LinkPlan, u: list[np.ndarray]
) -> tuple[list[np.ndarray], dict[str, float], int, bool, list[Any], dict[str, list[np.ndarray]]]:
    """m and λ by EM on comparison patterns (pattern counts only, never pairs): first over
    every candidate pair, then over each department record's best candidate under that first
    model (one-to-one); then m per registry with the pooled m as its prior."""
    comparisons, level_cols = plan.comparisons, plan.level_cols
    names = [r.name for r in plan.sources]
    tables = [(r.name, plan.cmp_table(r)) for r in plan.sources]
    rare = [[lvl.rare_for_matches for lvl in c.levels] for c in comparisons]
    floors = [[lvl.m_floor for lvl in c.levels] for c in comparisons]
    pats = data.frame(sql.patterns_sql(tables, level_cols, None)) if tables else pl.DataFrame()
    if not pats.height:
        m = [np.full(len(c.levels), 1 / len(c.levels)) for c in comparisons]
        return m, {g: 0.5 for g in names}, 0, True, [], {}
    patterns, counts, groups = _pattern_arrays(pats, level_cols, names)
    m, lambdas, iters, converged, history = run_em(patterns, counts, groups, names, u, rare, floors)
    weights = [np.log2(np.asarray(mk) / np.asarray(uk)) for mk, uk in zip(m, u, strict=True)]
    best = [[float(w) for w in wk] for wk in weights]
    pats = data.frame(sql.patterns_sql(tables, level_cols, best))
    patterns, counts, groups = _pattern_arrays(pats, level_cols, names)
    m, lambdas, more, converged, more_history = run_em(
        patterns, counts, groups, names, u, rare, floors, initial=m
    )
    per_registry = _registry_m(patterns, counts, groups, names, u, rare, floors, m)
    return m, lambdas, iters + more, converged, history + more_history, per_registry


def _estimate_model(data: Engine, plan: LinkPlan) -> Model:
    """The Fellegi-Sunter model: u, m (pooled and per registry) and the prior λ per registry.

    Scoring uses the prior of a *random* pair (Splink's λ): u came from random pairs, and a
    candidate pair already agrees on its blocking keys, so the share of matches among
    candidates would count that agreement twice. EM's λ was estimated over best candidates
    (one pair per department record with candidates), so it is rescaled to all pairs."""
    n_left = int(data.value(sql.count_sql(plan.left)))
    u = _estimate_u(data, plan, n_left)
    m, lambdas, iters, converged, history, per_registry = _estimate_m(data, plan, u)
    for reg in plan.sources:
        n_right = int(data.value(sql.count_sql(plan.right(reg))))
        n_best = int(data.value(sql.distinct_records_sql(plan.cmp_table(reg))))
        lam = lambdas[reg.name] * n_best / max(n_left * n_right, 1)
        lambdas[reg.name] = min(max(lam, 1e-12), 0.5)

    def level_params(mk: list[np.ndarray]) -> list[list[LevelParams]]:
        return [
            [
                LevelParams(c.name, i, lvl.label, float(mk[k][i]), float(u[k][i]))
                for i, lvl in enumerate(c.levels)
            ]
            for k, c in enumerate(plan.comparisons)
        ]

    return Model(
        levels=level_params(m),
        lambdas=lambdas,
        iterations=iters,
        converged=converged,
        history=history,
        registry_levels={name: level_params(mr) for name, mr in per_registry.items()},
    )


def _term_frequencies(data: Engine, plan: LinkPlan) -> dict[int, str]:
    """Value shares for tf-adjusted comparisons, over every loaded record, into `tf<k>`."""
    tables = {}
    every = [plan.left] + [plan.right(r) for r in plan.sources]
    for k, c in enumerate(plan.comparisons):
        if not c.tf_column:
            continue
        have = [t for t in every if c.tf_column in plan.columns(t)]
        data.create(f"tf{k}", sql.term_frequency_sql(c.tf_column, have), temp=True)
        tables[k] = f"tf{k}"
    return tables


def _score(data: Engine, plan: LinkPlan, model: Model, tf_tables: dict[int, str]) -> None:
    """`links`: each department record's best candidate, scored and decided (see
    `sql.score_sql`), every registry with its own m."""
    cfg = plan.cfg
    parts = []
    for reg in plan.sources:
        levels = model.levels_for(reg.name)
        tf = {k: (t, levels[k][0].m, levels[k][0].u) for k, t in tf_tables.items()}
        part = f"links_{reg.name}"
        data.create(
            part,
            sql.score_sql(
                reg.name,
                plan.cmp_table(reg),
                plan.left,
                plan.comparisons,
                weights=[[lv.weight for lv in params] for params in levels],
                labels=[[lv.label for lv in params] for params in levels],
                tf=tf,
                prior=model.prior_weight(reg.name),
                pass_names=[p.name for p in plan.passes],
                match_threshold=cfg.match_threshold,
                review_threshold=cfg.review_threshold,
                margin=cfg.ambiguity_margin,
            ),
            temp=True,
        )
        parts.append(part)
    body = sql.links_sql(parts) if parts else sql.empty_links_sql(plan.comparisons)
    data.create("links", body)


def _registry_counts(data: Engine, plan: LinkPlan) -> list[RegistryLinks]:
    counts = {r[0]: r[1:] for r in data.rows(sql.registry_link_counts_sql())}
    out = []
    for reg in plan.sources:
        records = int(data.value(sql.count_sql(plan.right(reg))))
        cand = int(data.value(sql.count_sql(plan.cmp_table(reg))))
        matches, reviews, persons = (int(x) for x in counts.get(reg.name, (0, 0, 0)))
        out.append(RegistryLinks(reg.name, records, cand, matches, reviews, persons))
    return out


#: Department IDs whose single-edit typos are simulated, and beneficiaries they are tried on.
_TYPO_SAMPLE_IDS = 4000
_TYPO_SAMPLE_BENEFICIARIES = 20_000


def _id_neighbour_u(
    data: Engine, left: str, sources: list[RegistryConfig], n_left: int, seed: int
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
    if not sources or n_left == 0:
        return {}
    tables = [table_name("reg", r.name) for r in sources]
    per_source = _TYPO_SAMPLE_IDS // max(len(sources), 1)
    data.create("id_typo_sample", sql.id_typo_sample_sql(tables, per_source, seed), temp=True)
    data.create(
        "id_beneficiary_sample",
        sql.id_beneficiary_sample_sql(left, _TYPO_SAMPLE_BENEFICIARIES, seed),
        temp=True,
    )
    row = data.row(
        sql.id_neighbour_counts_sql(
            id_edits_sql,
            x_check_count_sql,
            left,
            tables,
            "id_typo_sample",
            "id_beneficiary_sample",
        )
    )
    data.drop("id_typo_sample")
    data.drop("id_beneficiary_sample")
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


def _store_model(data: Engine, model: Model) -> None:
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
    data.put("link_model", frame)
    data.put(
        "link_lambda",
        pl.DataFrame(
            {"registry": list(model.lambdas), "lambda": list(model.lambdas.values())},
            schema={"registry": pl.Utf8, "lambda": pl.Float64},
        ),
    )
