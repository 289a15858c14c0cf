"""`evaluate`: precision, recall and F1 of links against a truth folder.

The truth folder (as `linkaudit sample` writes it) holds `links.csv` with
`registry, record_key, person_key`: every department record that truly belongs to a
beneficiary. Beneficiaries registered twice (same valid ID) count as one person.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from linkaudit.config import Manifest
from linkaudit.engines.base import Engine
from linkaudit.engines.duckdb import Workspace
from linkaudit.engines.factory import close_data_engine, data_engine
from linkaudit.errors import InputFileError, WorkspaceError
from linkaudit.privacy import mask_frame
from linkaudit.store import quote_ident

# -- SQL (pure builders, DuckDB dialect; few and used only here, so kept in this module) ---


def eval_pairs_sql(truth: str) -> str:
    """Every true and every predicted (registry, record, person) link side by side, persons
    counted once (a beneficiary registered twice is one person): `truth` names the relation of
    true links (registry, record_key, person_key)."""
    return f"""
        WITH ent AS (SELECT record_key, person_id FROM entities WHERE registry = 'beneficiaries'),
        truth AS (
            SELECT t.registry, t.record_key, coalesce(e.person_id, t.person_key) AS person
            FROM {quote_ident(truth)} t LEFT JOIN ent e ON e.record_key = t.person_key
        ),
        pred AS (
            SELECT k.registry, k.record_key, coalesce(e.person_id, k.person_key) AS person,
                   k.match_probability
            FROM links k LEFT JOIN ent e ON e.record_key = k.person_key
            WHERE k.decision = 'match'
        )
        SELECT coalesce(t.registry, p.registry) AS registry,
               coalesce(t.record_key, p.record_key) AS record_key,
               t.person AS true_person, p.person AS predicted_person, p.match_probability
        FROM truth t FULL JOIN pred p
          ON t.registry = p.registry AND t.record_key = p.record_key AND t.person = p.person
        """


def registry_scores_sql(pairs: str) -> str:
    """Per registry of `pairs` (an eval_pairs_sql table): true, predicted, both."""
    return f"""
        SELECT registry, count(true_person), count(predicted_person),
               count(*) FILTER (WHERE true_person IS NOT NULL AND predicted_person IS NOT NULL)
        FROM {quote_ident(pairs)} GROUP BY registry ORDER BY registry
        """


def worst_errors_sql(pairs: str, limit: int) -> str:
    """The `limit` worst errors of `pairs`: false links first, the likeliest first, each
    with the best candidate the linker had for the record."""
    return f"""
        SELECT e.registry, e.record_key, e.true_person, e.predicted_person,
               CASE WHEN e.true_person IS NULL THEN 'false link' ELSE 'missed link' END AS error,
               coalesce(e.match_probability, k.match_probability) AS match_probability,
               k.decision AS best_decision, k.person_key AS best_candidate
        FROM {quote_ident(pairs)} e
        LEFT JOIN links k ON k.registry = e.registry AND k.record_key = e.record_key
        WHERE e.true_person IS NULL OR e.predicted_person IS NULL
        ORDER BY (e.true_person IS NULL) DESC, match_probability DESC NULLS LAST,
                 e.registry, e.record_key
        LIMIT {int(limit)}
        """


def flag_scores_sql(truth_flags: str, scopes: str) -> str:
    """Per rule: flagged units in truth, in the findings, in both. A unit is the household
    for a household-scope rule (`scopes`: rule_id, scope), else the person."""
    unit = (
        "CASE WHEN s.scope = 'household' THEN coalesce(f.household_key, f.person_key) "
        "ELSE f.person_key END"
    )
    return f"""
        WITH unit AS (
            SELECT DISTINCT 'truth' AS side, f.rule_id, {unit} AS u
            FROM {quote_ident(truth_flags)} f JOIN {quote_ident(scopes)} s
                 ON s.rule_id = f.rule_id
            UNION ALL
            SELECT DISTINCT 'pred', f.rule_id, {unit}
            FROM findings f JOIN {quote_ident(scopes)} s ON s.rule_id = f.rule_id
        ),
        t AS (SELECT DISTINCT rule_id, u FROM unit WHERE side = 'truth'),
        p AS (SELECT DISTINCT rule_id, u FROM unit WHERE side = 'pred')
        SELECT coalesce(t.rule_id, p.rule_id) AS rule_id, count(t.u), count(p.u),
               count(*) FILTER (WHERE t.u IS NOT NULL AND p.u IS NOT NULL)
        FROM t FULL JOIN p ON t.rule_id = p.rule_id AND t.u = p.u
        GROUP BY coalesce(t.rule_id, p.rule_id) ORDER BY rule_id
        """


@dataclass
class Score:
    registry: str
    true_links: int
    predicted: int
    true_positive: int

    @property
    def false_positive(self) -> int:
        return self.predicted - self.true_positive

    @property
    def false_negative(self) -> int:
        return self.true_links - self.true_positive

    @property
    def precision(self) -> float:
        return self.true_positive / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positive / self.true_links if self.true_links else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "registry": self.registry,
            "true_links": self.true_links,
            "predicted": self.predicted,
            "true_positive": self.true_positive,
            "false_positive": self.false_positive,
            "false_negative": self.false_negative,
            "precision": round(self.precision, 6),
            "recall": round(self.recall, 6),
            "f1": round(self.f1, 6),
        }


@dataclass
class EvalReport:
    scores: list[Score] = field(default_factory=list)
    overall: Score | None = None
    worst: list[dict[str, object]] = field(default_factory=list)
    #: Flags per rule (persons for person-scope rules, households for household-scope ones),
    #: when the truth folder has flags.csv and the workspace has audit findings.
    flags: list[Score] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "registries": [s.as_dict() for s in self.scores],
            "overall": self.overall.as_dict() if self.overall else None,
            "worst_errors": self.worst,
            "flags": [s.as_dict() for s in self.flags],
        }


def read_truth_links(truth_dir: Path) -> pl.DataFrame:
    path = truth_dir / "links.csv"
    if not path.exists():
        raise InputFileError(
            f"{path}: file not found",
            hint="--truth must be a folder with links.csv (registry, record_key, person_key)",
        )
    frame = pl.read_csv(path, infer_schema=False)
    missing = {"registry", "record_key", "person_key"} - set(frame.columns)
    if missing:
        raise InputFileError(
            f"{path}: column not found: {', '.join(sorted(missing))}",
            hint="truth links need columns registry, record_key, person_key",
        )
    return frame.select("registry", "record_key", "person_key")


def evaluate_links(
    manifest: Manifest, truth_dir: Path, ws: Workspace | None = None, worst: int = 20
) -> EvalReport:
    own = ws is None
    workspace = ws or Workspace(manifest.database, read_only=True)
    data: Engine = data_engine(manifest, workspace) if own else workspace
    try:
        if not data.has_table("links"):
            raise WorkspaceError(
                f"{manifest.database}: no links yet", hint="run `linkaudit link MANIFEST` first"
            )
        truth = read_truth_links(Path(truth_dir))
        with data.registered("_truth", truth):
            report = _evaluate(data, manifest, worst)
        flags_path = Path(truth_dir) / "flags.csv"
        if flags_path.exists() and data.has_table("findings"):
            report.flags = _evaluate_flags(data, manifest, flags_path)
        return report
    finally:
        if own:
            close_data_engine(data, workspace)
            workspace.close()


def _evaluate(ws: Engine, manifest: Manifest, worst: int) -> EvalReport:
    sources = [r.name for r in manifest.sources]
    # Compare at the level of persons: a beneficiary registered twice is one person.
    ws.create("_eval", eval_pairs_sql("_truth"), temp=True)
    rows = ws.rows(registry_scores_sql("_eval"))
    report = EvalReport()
    by_reg = {r[0]: r for r in rows}
    for name in sources:
        r = by_reg.get(name, (name, 0, 0, 0))
        report.scores.append(Score(name, int(r[1]), int(r[2]), int(r[3])))
    report.overall = Score(
        "overall",
        sum(s.true_links for s in report.scores),
        sum(s.predicted for s in report.scores),
        sum(s.true_positive for s in report.scores),
    )
    errors = ws.frame(worst_errors_sql("_eval", worst))
    # Keys may be ID numbers (a register keyed by its ID column): masked like every output.
    report.worst = mask_frame(errors).to_dicts()
    return report


def _evaluate_flags(ws: Engine, manifest: Manifest, path: Path) -> list[Score]:
    from linkaudit.audit.run import load_manifest_rules

    scopes = {r.id: r.scope for r in load_manifest_rules(manifest)}
    truth = pl.read_csv(path, infer_schema=False)
    missing = {"rule_id", "person_key", "household_key"} - set(truth.columns)
    if missing:
        raise InputFileError(f"{path}: column not found: {', '.join(sorted(missing))}")
    scope_frame = pl.DataFrame(
        {"rule_id": list(scopes), "scope": list(scopes.values())},
        schema={"rule_id": pl.Utf8, "scope": pl.Utf8},
    )
    flags = truth.select("rule_id", "person_key", "household_key")
    with ws.registered("_truth_flags", flags), ws.registered("_scopes", scope_frame):
        rows = ws.rows(flag_scores_sql("_truth_flags", "_scopes"))
    return [Score(r, int(t), int(p), int(tp)) for r, t, p, tp in rows]
