"""Run history, stable case identities, baselines, verification outcomes and exemptions.

A *case* is one exception: a rule and a flagged unit (household or person) with its evidence
record keys. Its id is a hash of those, so the same case keeps its id from run to run; its
evidence hash also covers the evidence values, so a change in what a department says about the
case (a car now scrapped, a new amount) is noticed even when the record keys stay the same.

Tables (in the workspace database):
- `runs`: one row per audit run (time, manifest, input checksums, rule-set hash, version, counts).
- `run_cases`: every case of every run, with its status against the baseline.
- `verifications`: field outcomes imported from cadres' spreadsheets (latest per case wins).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from linkaudit.config import Manifest
from linkaudit.engines.duckdb import Workspace
from linkaudit.errors import InputFileError, LinkauditError, WorkspaceError
from linkaudit.faults import fault_point
from linkaudit.history_sql import (
    HISTORY_TABLES,
    baseline_case_ids_sql,
    baseline_cases_sql,
    history_schema_sql,
    insert_rows_sql,
    insert_run_sql,
    latest_outcomes_sql,
    recent_runs_sql,
    reported_cases_sql,
    run_at_sql,
    runs_with_prefix_sql,
)
from linkaudit.ingest.readers import read_small_csv

OUTCOMES = ("confirmed", "cleared", "pending")
#: Words cadres write in the outcome column, mapped to outcomes.
OUTCOME_WORDS = {
    "confirmed": "confirmed",
    "属实": "confirmed",
    "确认": "confirmed",
    "cleared": "cleared",
    "不属实": "cleared",
    "排除": "cleared",
    "已排除": "cleared",
    "pending": "pending",
    "待核实": "pending",
    "核实中": "pending",
}
STATUSES = ("new", "persisting", "reopened")


def ensure_history(ws: Workspace) -> None:
    if ws.read_only:
        if not (ws.has_table("runs") and ws.has_table("verifications")):
            raise WorkspaceError(
                f"{ws.path}: no audit runs recorded yet",
                hint="run `linkaudit audit MANIFEST` first",
            )
        return
    for sql in history_schema_sql():
        ws.run(sql)


def resolve_run(ws: Workspace, ref: str, ruleset: str | None = None) -> str | None:
    """A run id from 'latest', 'previous' or an id (prefix allowed); None if there is none.

    With `ruleset`, 'latest' and 'previous' count only runs of that rule set, so that a trial
    run of one rule (`audit --rules one.yaml`) never becomes the baseline of the full audit."""
    ensure_history(ws)
    if ref in ("latest", "previous"):
        offset = 0 if ref == "latest" else 1
        row = ws.row(run_at_sql(offset, bool(ruleset)), [ruleset] if ruleset else [])
        return None if row is None else str(row[0])
    rows = ws.rows(runs_with_prefix_sql(), [ref])
    if len(rows) == 1:
        return str(rows[0][0])
    known = [r[0] for r in ws.rows(recent_runs_sql(5))]
    raise LinkauditError(
        f"run {ref!r} {'is ambiguous' if rows else 'not found'} in {ws.path}",
        hint=f"use 'latest', 'previous' or a run id; recent runs: {', '.join(known) or 'none'}",
    )


# -- exemptions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exemption:
    rule: str  # a rule id, or '*'
    person: str | None
    household: str | None
    reason: str
    expires: dt.date | None


def load_exemptions(manifest: Manifest) -> list[Exemption]:
    """Exemptions from the manifest's `exemptions:` list and/or `exemptions_file:` CSV."""
    items: list[tuple[str, int, dict[str, Any]]] = [
        (f"{manifest.path}: exemptions.{i}", 0, dict(e)) for i, e in enumerate(manifest.exemptions)
    ]
    if manifest.exemptions_file:
        path = manifest.exemptions_file
        frame = read_small_csv(path, "exemptions_file")
        for i, row in enumerate(frame.iter_rows(named=True), start=2):
            items.append((f"{path}: row {i}", i, row))
    out: list[Exemption] = []
    problems: list[str] = []
    for where, _, raw in items:
        person = (raw.get("person") or "").strip() or None
        household = (raw.get("household") or "").strip() or None
        rule = (raw.get("rule") or "").strip()
        reason = (raw.get("reason") or "").strip()
        expires_raw = raw.get("expires")
        if not (person or household):
            problems.append(f"{where}: column person or household: one of them is required")
        if not rule:
            problems.append(f"{where}: column rule: required (a rule id, or * for all rules)")
        if not reason:
            problems.append(f"{where}: column reason: required (why the policy exempts this case)")
        expires = None
        if expires_raw not in (None, ""):
            try:
                expires = (
                    expires_raw
                    if isinstance(expires_raw, dt.date)
                    else dt.date.fromisoformat(str(expires_raw).strip())
                )
            except ValueError:
                problems.append(
                    f"{where}: column expires: {expires_raw!r} is not a date (YYYY-MM-DD)"
                )
        out.append(Exemption(rule, person, household, reason, expires))
    if problems:
        raise InputFileError("invalid exemptions:\n" + "\n".join(f"  - {p}" for p in problems))
    return out


def exemption_mask(
    exceptions: pl.DataFrame, exemptions: list[Exemption], today: dt.date
) -> pl.Series:
    """True for exceptions covered by an exemption in force today."""
    mask = pl.Series("exempt", [False] * exceptions.height, dtype=pl.Boolean)
    if not exemptions or exceptions.height == 0:
        return mask
    frame = pl.DataFrame(
        {
            "rule": [e.rule for e in exemptions if not e.expires or e.expires >= today],
            "person": [e.person for e in exemptions if not e.expires or e.expires >= today],
            "household": [e.household for e in exemptions if not e.expires or e.expires >= today],
        },
        schema={"rule": pl.Utf8, "person": pl.Utf8, "household": pl.Utf8},
    )
    if frame.height == 0:
        return mask
    members = exceptions.select(
        pl.int_range(pl.len()).alias("i"),
        "rule_id",
        "household_key",
        pl.col("person_key").str.split(";").alias("p"),
    ).explode("p")
    # Equi-joins on the person and on the household (not a cross join): exemption lists and
    # exception lists can both run to thousands.
    by_person = members.join(
        frame.filter(pl.col("person").is_not_null()), left_on="p", right_on="person"
    )
    by_household = members.join(
        frame.filter(pl.col("household").is_not_null()),
        left_on="household_key",
        right_on="household",
    )
    rule_applies = (pl.col("rule") == "*") | (pl.col("rule") == pl.col("rule_id"))
    hit = pl.concat(
        [by_person.filter(rule_applies).select("i"), by_household.filter(rule_applies).select("i")]
    ).get_column("i")
    return pl.int_range(0, exceptions.height, eager=True).is_in(hit.implode()).alias("exempt")


# -- applying history to a run's exceptions -------------------------------------------------


@dataclass
class HistoryOutcome:
    exceptions: pl.DataFrame  # the cases reported this run, with status and outcome columns
    suppressed: pl.DataFrame  # cleared cases whose evidence is unchanged
    exempted: pl.DataFrame
    resolved: pl.DataFrame  # cases of the baseline run no longer flagged
    baseline_run: str | None
    counts: dict[str, int] = field(default_factory=dict)


def apply_history(
    ws: Workspace,
    exceptions: pl.DataFrame,
    baseline: str | None,
    exemptions: list[Exemption],
    today: dt.date,
) -> HistoryOutcome:
    """Mark each case new / persisting / reopened, attach the last field outcome, suppress
    cleared cases whose evidence is unchanged, drop exempted ones, list resolved ones."""
    ensure_history(ws)
    exempt = exemption_mask(exceptions, exemptions, today)
    exempted = exceptions.filter(exempt)
    frame = _with_latest_outcome(ws, exceptions.filter(~exempt))
    unchanged_clear = (pl.col("outcome") == "cleared") & (
        pl.col("verified_hash") == pl.col("evidence_hash")
    )
    suppressed = frame.filter(unchanged_clear)
    frame = frame.filter(~unchanged_clear.fill_null(False))
    # A case still flagged but suppressed (cleared in the field, evidence unchanged) or exempted
    # is counted once, as such: it has not gone from the data, so it is not 'resolved'.
    still_flagged = pl.concat(
        [
            frame.get_column("case_id"),
            suppressed.get_column("case_id"),
            exempted.get_column("case_id"),
        ]
    ).implode()
    prior_ids, resolved = _baseline_cases(ws, baseline, still_flagged)
    frame = _case_status(frame, prior_ids)
    counts = {
        "exceptions": frame.height,
        "new": int((frame.get_column("status") == "new").sum()),
        "persisting": int((frame.get_column("status") == "persisting").sum()),
        "reopened": int((frame.get_column("status") == "reopened").sum()),
        "resolved": resolved.height,
        "suppressed_cleared": suppressed.height,
        "exempted": exempted.height,
        "confirmed": int((frame.get_column("outcome") == "confirmed").sum()),
    }
    return HistoryOutcome(frame, suppressed, exempted, resolved, baseline, counts)


def _with_latest_outcome(ws: Workspace, current: pl.DataFrame) -> pl.DataFrame:
    """Each case with its latest field outcome, the evidence hash that outcome was given for
    (`verified_hash`), and whether the field ever cleared its rule and unit
    (`unit_was_cleared`: the case may come back under another id with other evidence)."""
    latest_outcome = ws.frame(latest_outcomes_sql())
    cleared_units = (
        latest_outcome.filter(pl.col("outcome") == "cleared")
        .select("rule_id", "unit_key", pl.lit(True).alias("unit_was_cleared"))
        .unique(["rule_id", "unit_key"])
    )
    return (
        current.drop("outcome", "reason", strict=False)
        .join(
            latest_outcome.select("case_id", "outcome", "reason", "verified_hash"),
            on="case_id",
            how="left",
        )
        .join(cleared_units, on=["rule_id", "unit_key"], how="left")
    )


def _baseline_cases(
    ws: Workspace, baseline: str | None, still_flagged: pl.Series
) -> tuple[pl.Series, pl.DataFrame]:
    """The case ids the baseline run reported, and those of its cases no longer flagged
    (resolved). Without a baseline, both are empty."""
    if not baseline:
        empty = pl.DataFrame(
            schema=dict.fromkeys(
                ("case_id", "rule_id", "unit_key", "household_key", "person_key", "township"),
                pl.Utf8,
            )
        )
        return pl.Series([], dtype=pl.Utf8).implode(), empty
    prior = ws.frame(baseline_case_ids_sql(), [baseline])
    prior_ids = prior.get_column("case_id").implode()
    resolved = ws.frame(baseline_cases_sql(), [baseline]).filter(
        ~pl.col("case_id").is_in(still_flagged)
    )
    return prior_ids, resolved


def _case_status(frame: pl.DataFrame, prior_ids: pl.Series) -> pl.DataFrame:
    """Status against the baseline (new, persisting, reopened); an outcome given for other
    evidence than today's is dropped (the case needs a new visit)."""
    # A 'cleared' outcome given for other evidence no longer holds: the case needs a new visit.
    stale = (pl.col("outcome") == "cleared") & (
        pl.col("verified_hash") != pl.col("evidence_hash")
    ).fill_null(True)
    in_baseline = pl.col("case_id").is_in(prior_ids)
    # A case the field cleared that comes back with other evidence is 'reopened' in the run
    # where it comes back (marked so the cadre sees it was cleared before), then persisting.
    reopened = (
        pl.col("unit_was_cleared").fill_null(False)
        & (pl.col("outcome").is_null() | stale)
        & ~in_baseline
    )
    return frame.with_columns(
        pl.when(reopened)
        .then(pl.lit("reopened"))
        .when(in_baseline)
        .then(pl.lit("persisting"))
        .otherwise(pl.lit("new"))
        .alias("status"),
        pl.when(stale.fill_null(False)).then(None).otherwise(pl.col("outcome")).alias("outcome"),
        pl.when(stale.fill_null(False)).then(None).otherwise(pl.col("reason")).alias("reason"),
    ).drop("verified_hash", "unit_was_cleared")


def record_run(
    ws: Workspace,
    run_id: str,
    started_at: dt.datetime,
    manifest: Manifest,
    summary: dict[str, Any],
    outcome: HistoryOutcome,
) -> None:
    """Record a run and its cases in one transaction: a run is in the history whole or not at
    all (a run without its cases would make every case 'new' the next night)."""
    ensure_history(ws)
    with ws.transaction():
        ws.run(
            insert_run_sql(),
            [
                run_id,
                started_at.replace(tzinfo=None),
                str(manifest.path),
                manifest.as_of,
                json.dumps(summary.get("input_checksums", {}), sort_keys=True),
                summary.get("ruleset_hash"),
                summary.get("tool_version"),
                outcome.baseline_run,
                json.dumps(outcome.counts, sort_keys=True),
            ],
        )
        fault_point("record_half")
        _insert_cases(ws, run_id, outcome)


def _insert_cases(ws: Workspace, run_id: str, outcome: HistoryOutcome) -> None:
    cols = [
        "case_id",
        "rule_id",
        "scope",
        "unit_key",
        "household_key",
        "person_key",
        "township",
        "evidence_hash",
    ]
    reported = outcome.exceptions.select(*cols, "status").with_columns(
        pl.lit("no").alias("suppressed")
    )
    hidden = outcome.suppressed.select(*cols).with_columns(
        pl.lit("persisting").alias("status"), pl.lit("cleared").alias("suppressed")
    )
    frame = pl.concat([reported, hidden]).with_columns(pl.lit(run_id).alias("run_id"))
    frame = frame.select([c for c, _ in HISTORY_TABLES["run_cases"]])  # the table's order
    with ws.registered("_run_cases", frame):
        ws.run(insert_rows_sql("run_cases", "_run_cases"))


# -- diff -----------------------------------------------------------------------------------


@dataclass
class Diff:
    old: str
    new: str
    new_cases: pl.DataFrame
    persisting: pl.DataFrame
    resolved: pl.DataFrame

    def counts(self) -> dict[str, int]:
        return {
            "new": self.new_cases.height,
            "persisting": self.persisting.height,
            "resolved": self.resolved.height,
        }

    def by_rule(self) -> pl.DataFrame:
        parts = [
            df.group_by("rule_id").agg(pl.len().alias(name))
            for name, df in (
                ("new", self.new_cases),
                ("persisting", self.persisting),
                ("resolved", self.resolved),
            )
        ]
        out = pl.DataFrame(schema={"rule_id": pl.Utf8})
        for p in parts:
            out = out.join(p, on="rule_id", how="full", coalesce=True)
        return out.fill_null(0).sort("rule_id")


def _cases_from_csv(path: Path) -> pl.DataFrame:
    frame = read_small_csv(path, "a run's exceptions.csv")
    if "case_id" not in frame.columns:
        raise InputFileError(
            f"{path}: column not found: case_id",
            hint="diff compares exceptions.csv files of two runs",
        )
    return frame


def diff_runs(old: pl.DataFrame, new: pl.DataFrame, old_name: str, new_name: str) -> Diff:
    old_ids = old.get_column("case_id").implode()
    new_ids = new.get_column("case_id").implode()
    return Diff(
        old_name,
        new_name,
        new.filter(~pl.col("case_id").is_in(old_ids)),
        new.filter(pl.col("case_id").is_in(old_ids)),
        old.filter(~pl.col("case_id").is_in(new_ids)),
    )


def diff_files(old: Path, new: Path) -> Diff:
    for p in (old, new):
        if not p.is_file():
            raise InputFileError(
                f"{p}: file not found",
                hint="pass two exceptions.csv files, or run ids with --manifest",
            )
    return diff_runs(_cases_from_csv(old), _cases_from_csv(new), str(old), str(new))


def diff_workspace(ws: Workspace, old_ref: str, new_ref: str) -> Diff:
    old_id, new_id = resolve_run(ws, old_ref), resolve_run(ws, new_ref)
    if old_id is None or new_id is None:
        raise WorkspaceError(
            f"{ws.path}: fewer than two audit runs recorded", hint="run `linkaudit audit` twice"
        )
    query = reported_cases_sql()
    return diff_runs(ws.frame(query, [old_id]), ws.frame(query, [new_id]), old_id, new_id)
