"""`audit`: load + link + rules in one run, then the outputs a county needs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import xlsxwriter.exceptions

from linkaudit import state_sql
from linkaudit.audit.catalogue import rule_paths
from linkaudit.audit.engine import (
    RuleResult,
    RulesReport,
    adapt_rules,
    check_rules,
    run_rules,
)
from linkaudit.audit.rerun import (
    Fingerprint,
    fails_on,
    fingerprint,
    output_names,
    record_fingerprint,
)
from linkaudit.audit.rules import Rule, load_rules, ruleset_hash
from linkaudit.audit.unknown_values import unknown_values
from linkaudit.config import Manifest
from linkaudit.engines.duckdb import Workspace
from linkaudit.engines.factory import close_data_engine, data_engine
from linkaudit.errors import environment_fault
from linkaudit.faults import fault_point
from linkaudit.history import (
    HistoryOutcome,
    apply_history,
    ensure_history,
    load_exemptions,
    record_run,
    resolve_run,
)
from linkaudit.link.engine import LinkReport, link_inputs_hash, link_workspace
from linkaudit.load import LoadReport, load_workspace
from linkaudit.privacy import id_column_warnings
from linkaudit.report.html import build_report_data, render_page, write_page
from linkaudit.report.outputs import (
    EXCEPTION_COLUMNS,
    build_exceptions,
    write_csv,
    write_json,
    write_xlsx,
)
from linkaudit.report.publish import OutputSet, check_output, timed
from linkaudit.report.workbook import split_workbooks

if TYPE_CHECKING:
    from linkaudit.engines.base import Engine

Progress = Callable[[str, str, int, int], None]


@dataclass
class AuditResult:
    run_id: str
    summary: dict[str, Any]
    rules: RulesReport
    load: LoadReport
    link: LinkReport
    history: HistoryOutcome
    outputs: dict[str, str] = field(default_factory=dict)

    def fails(self, fail_on: str) -> bool:
        """Whether a nightly `--fail-on` condition holds: new (or reopened) cases, or any."""
        return fails_on(self.history.counts, fail_on)


def load_manifest_rules(
    manifest: Manifest, override: list[Path] | None = None, notes: list[str] | None = None
) -> list[Rule]:
    """The rules of an audit, shipped ones adapted to the manifest (see audit.engine.
    adapt_rules), checked before any work. What was adapted is appended to `notes`."""
    rules, adapted = adapt_rules(manifest, load_rules(rule_paths(manifest, override)))
    check_rules(manifest, rules)  # fail before any work if a rule is bad
    if notes is not None:
        notes += adapted
    return rules


def _run_id(now: dt.datetime) -> str:
    # Readable time plus a random part: two runs in the same second stay distinct.
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass
class _Computed:
    """What the heavy stages produced, for the outputs."""

    load: LoadReport
    link: LinkReport
    rules: RulesReport
    exceptions: pl.DataFrame
    links: pl.DataFrame
    timings: dict[str, float]


def run_audit(
    manifest: Manifest,
    progress: Progress | None = None,
    rules_override: list[Path] | None = None,
    baseline: str | None = "latest",
    force: bool = False,
    today: dt.date | None = None,
    record: bool = True,
    split_by: str | None = None,
) -> AuditResult:
    """One audit run. Unchanged inputs are not reloaded and unchanged links are reused
    (force=True redoes both). baseline: a run id, 'latest' (the default: the latest run of the
    same rule set; none on a first run) or None to compare with nothing. record=False is a
    trial run: outputs are written, the run history is left as it was. split_by 'township'
    or 'village' also writes one workbook per township (townships/) or village (villages/).

    The heavy stages (staging, linkage, rules, cases) run on the manifest's engine (DuckDB,
    or Spark); history and outputs are the workspace's, in one transaction and one set."""
    if split_by not in (None, "township", "village"):
        raise ValueError(f"split_by: {split_by!r}")
    started = time.perf_counter()
    manifest.require_as_of()
    check_output(manifest.output)  # before any work: an output folder we may not replace
    now = dt.datetime.now(dt.UTC)
    today = today or now.date()
    # Fingerprinted before the rules and exemptions are read (see audit.rerun).
    fp = fingerprint(manifest, rules_override, split_by, baseline, today)
    rule_notes: list[str] = []
    rules = load_manifest_rules(manifest, rules_override, notes=rule_notes)
    exemptions = load_exemptions(manifest)
    fp = replace(
        fp, expiries=tuple(sorted({e.expires.isoformat() for e in exemptions if e.expires}))
    )
    run_id = _run_id(now)
    with Workspace(manifest.database) as ws:
        ensure_history(ws)
        baseline_run = resolve_run(ws, baseline, ruleset=ruleset_hash(rules)) if baseline else None
        data = data_engine(manifest, ws)
        try:
            done = _compute(ws, data, manifest, rules, run_id, force, progress)
            t = time.perf_counter()
            if progress:
                progress("", "writing outputs", 0, 1)
            history = apply_history(ws, done.exceptions, baseline_run, exemptions, today)
            summary = _summary(run_id, now, manifest, rules, done)
            summary["baseline_run"] = baseline_run
            summary["recorded"] = record
            summary["rule_notes"] = rule_notes
            summary["warnings"] = id_column_warnings(data, manifest, rules)  # keys masked
            summary["unknown_values"] = unknown_values(data, manifest)
            _write_outputs(
                ws, manifest, rules, done, history, summary, split_by, record, t, started, fp
            )
        finally:
            close_data_engine(data, ws)
    return AuditResult(
        run_id=run_id,
        summary=summary,
        rules=done.rules,
        load=done.load,
        link=done.link,
        history=history,
        outputs={name: str(manifest.output / name) for name in output_names(split_by)},
    )


def _compute(
    ws: Workspace,
    data: Engine,
    manifest: Manifest,
    rules: list[Rule],
    run_id: str,
    force: bool,
    progress: Progress | None,
) -> _Computed:
    """Load, link, apply the rules and build the cases, each stage timed. Same links,
    rules, parameters and date as the last run: its findings and cases stand (only their
    run id changes)."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    load_report = load_workspace(manifest, progress=progress, ws=ws, force=force, data=data)
    timings["load"] = time.perf_counter() - t
    fault_point("loaded")
    t = time.perf_counter()
    link_report = link_workspace(manifest, progress=progress, ws=ws, force=force, data=data)
    timings["link"] = time.perf_counter() - t
    fault_point("linked")
    t = time.perf_counter()
    if progress:
        progress("", "applying rules", 0, 1)
    state = _rules_state(ws, manifest, rules)
    cached = None if force else _cached_findings(ws, state)
    if cached is None:
        # Any findings cache left is stale from here on, even if this run is killed.
        ws.drop("findings_state")
        rules_report = run_rules(data, manifest, rules)
        fault_point("rules_half")
        exceptions = build_exceptions(data, manifest, rules, run_id)
        _store_findings_state(ws, state, rules_report, exceptions)
    else:
        rules_report, exceptions = cached
        exceptions = exceptions.with_columns(pl.lit(run_id).alias("run_id"))
    timings["rules"] = time.perf_counter() - t
    fault_point("rules")
    links = data.frame(state_sql.published_links_sql())
    return _Computed(load_report, link_report, rules_report, exceptions, links, timings)


def _write_outputs(
    ws: Workspace,
    manifest: Manifest,
    rules: list[Rule],
    done: _Computed,
    history: HistoryOutcome,
    summary: dict[str, Any],
    split_by: str | None,
    record: bool,
    started: float,
    run_started: float,
    fp: Fingerprint,
) -> None:
    """Stage every output, record the run (cases and all, one transaction) and its
    fingerprint (audit.rerun), then publish the outputs as one set: a run whose outputs are
    out/ is in the history."""
    quarantine = ws.frame(state_sql.quarantine_rows_sql())
    out = manifest.output
    summary_rows = [r.as_dict() for r in done.rules.results]
    reported = history.exceptions.select(EXCEPTION_COLUMNS)
    reported_zh = history.exceptions.select(EXCEPTION_COLUMNS + ["evidence_zh"])
    summary["cases"] = history.counts
    summary["resolved_cases"] = history.resolved.get_column("case_id").to_list()
    outputs = OutputSet(out, summary["run_id"])
    # report.html is drawn (Python, holding the GIL) while the workbooks are compressed and the
    # CSVs written (zlib and polars, which let go of it); only this thread writes files.
    pool = ThreadPoolExecutor(1, thread_name_prefix="report")
    try:
        report_data = build_report_data(ws, summary, rules, done.link, history, manifest)
        report = pool.submit(timed, render_page, report_data)
        write_csv(reported, outputs.path("exceptions.csv"))
        fault_point("outputs_half")
        write_csv(done.links, outputs.path("links.csv"))
        changes = {k: history.counts[k] for k in ("new", "persisting", "reopened", "resolved")}
        write_xlsx(
            reported_zh,
            rules,
            summary_rows,
            quarantine,
            outputs.path("exceptions.xlsx"),
            changes=changes if summary["baseline_run"] else None,
        )
        if split_by:
            folder = "townships" if split_by == "township" else "villages"
            split_workbooks(reported_zh, rules, summary_rows, outputs.path(folder), by=split_by)
        summary["timings_seconds"]["outputs"] = round(time.perf_counter() - started, 3)
        page, seconds = report.result()
        t_report = time.perf_counter()
        write_page(outputs.path("report.html"), page)
        seconds += time.perf_counter() - t_report
        summary["timings_seconds"]["report"] = round(seconds, 3)
        summary["timings_seconds"]["total"] = round(time.perf_counter() - run_started, 3)
        write_json(summary, outputs.path("summary.json"))
        fault_point("outputs_staged")
        if record:
            record_run(ws, summary["run_id"], _started_at(summary), manifest, summary, history)
            record_fingerprint(ws, summary, fp, outputs.staging)
        fault_point("recorded")
        outputs.publish()
        fault_point("published")
    except (OSError, xlsxwriter.exceptions.XlsxWriterException) as exc:
        fault = environment_fault(exc, doing=f"cannot write the outputs under {out}")
        if fault is None:
            raise
        raise fault from None
    finally:
        pool.shutdown()  # waits for the report thread (on an error elsewhere, too)
        outputs.discard()


def _started_at(summary: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(summary["started_at"])


def _rules_state(ws: Workspace, manifest: Manifest, rules: list[Rule]) -> str:
    spec = {
        "links": link_inputs_hash(ws, manifest),
        "rules": ruleset_hash(rules),
        "parameters": manifest.parameters,
        "as_of": manifest.require_as_of().isoformat(),
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def _cached_findings(ws: Workspace, state: str) -> tuple[RulesReport, pl.DataFrame] | None:
    if not (ws.has_table("findings_state") and ws.has_table("findings_exceptions")):
        return None
    row = ws.row(state_sql.state_read_sql("findings_state", "state"))
    if row is None or row[0] != state:
        return None
    data = json.loads(row[1])
    report = RulesReport(
        results=[RuleResult(**r) for r in data["results"]],
        ineligible_distinct_cross_department=data["ineligible_distinct_cross_department"],
        ineligible_distinct=data["ineligible_distinct"],
    )
    if "evidence_zh" not in ws.columns("findings_exceptions"):
        return None  # stored by an earlier version: rebuild
    return report, ws.frame(state_sql.all_rows_sql("findings_exceptions"))


def _store_findings_state(
    ws: Workspace, state: str, report: RulesReport, exceptions: pl.DataFrame
) -> None:
    data = {
        "results": [r.as_dict() for r in report.results],
        "ineligible_distinct_cross_department": report.ineligible_distinct_cross_department,
        "ineligible_distinct": report.ineligible_distinct,
    }
    with ws.transaction():
        ws.put("findings_exceptions", exceptions)
        ws.run(state_sql.state_table_sql("findings_state", "state"))
        ws.run(
            state_sql.state_insert_sql("findings_state"),
            [state, json.dumps(data, ensure_ascii=False)],
        )


def _summary(
    run_id: str, now: dt.datetime, manifest: Manifest, rules: list[Rule], done: _Computed
) -> dict[str, Any]:
    from linkaudit._version import __version__

    rules_report, load_report, link_report = done.rules, done.load, done.link

    linked = {r.registry: r for r in link_report.registries}
    registries = {}
    for r in load_report.registries:
        lr = linked.get(r.registry)
        registries[r.registry] = {
            "department": r.department,
            "rows_read": r.rows_read,
            "rows_loaded": r.rows_loaded,
            "rows_rejected": r.rows_quarantined,
            "id_status": r.id_status,
            "linked": lr.matches if lr else None,
            "review": lr.reviews if lr else None,
            "persons_linked": lr.persons if lr else None,
        }
    return {
        "run_id": run_id,
        "started_at": now.isoformat(),
        "tool_version": __version__,
        "manifest": str(manifest.path),
        "as_of": manifest.require_as_of().isoformat(),
        "rules": {r.rule_id: r.as_dict() for r in rules_report.results},
        "ineligible_distinct_cross_department": rules_report.ineligible_distinct_cross_department,
        "ineligible_distinct": rules_report.ineligible_distinct,
        "registries": registries,
        "input_checksums": {r.registry: r.checksum for r in load_report.registries},
        "ruleset_hash": ruleset_hash(rules),
        "timings_seconds": {k: round(v, 3) for k, v in done.timings.items()},
        "link_warnings": link_report.warnings,
        "engine": manifest.engine.name,
        "reused": {
            "loads": [r.registry for r in load_report.registries if r.skipped],
            "links": link_report.reused,
        },
        "load_notes": [n for r in load_report.registries for n in r.notes],
        "rules_not_applied": {r.rule_id: r.skipped for r in rules_report.results if r.skipped},
    }


def findings_frame(ws: Workspace) -> pl.DataFrame:
    return ws.frame(state_sql.all_rows_sql("findings", ("rule_id", "person_key", "evidence_key")))
