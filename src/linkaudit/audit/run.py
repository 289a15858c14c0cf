"""`audit`: load + link + rules in one run, then the outputs a county needs."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from linkaudit.audit.catalogue import shipped_rules_dir
from linkaudit.audit.engine import RulesReport, check_rules, run_rules
from linkaudit.audit.rules import Rule, load_rules, ruleset_hash
from linkaudit.config import Manifest
from linkaudit.link.engine import LinkReport, link_workspace
from linkaudit.load import LoadReport, load_workspace
from linkaudit.report.outputs import (
    build_exceptions,
    write_csv,
    write_json,
    write_xlsx,
)
from linkaudit.store import Workspace

Progress = Callable[[str, str, int, int], None]


@dataclass
class AuditResult:
    run_id: str
    summary: dict[str, Any]
    rules: RulesReport
    load: LoadReport
    link: LinkReport
    outputs: dict[str, str] = field(default_factory=dict)


def rule_paths(manifest: Manifest, override: list[Path] | None = None) -> list[Path]:
    if override:
        return override
    return manifest.rules or [shipped_rules_dir()]


def load_manifest_rules(manifest: Manifest, override: list[Path] | None = None) -> list[Rule]:
    rules = load_rules(rule_paths(manifest, override))
    check_rules(manifest, rules)  # fail before any work if a rule is bad
    return rules


def _run_id(now: dt.datetime, manifest: Manifest) -> str:
    digest = hashlib.sha256(f"{now.isoformat()}|{manifest.path}".encode()).hexdigest()[:6]
    return f"{now:%Y%m%dT%H%M%S}-{digest}"


def run_audit(
    manifest: Manifest,
    progress: Progress | None = None,
    rules_override: list[Path] | None = None,
) -> AuditResult:
    started = time.perf_counter()
    rules = load_manifest_rules(manifest, rules_override)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run_id = _run_id(now, manifest)
    timings: dict[str, float] = {}
    with Workspace(manifest.database) as ws:
        t = time.perf_counter()
        load_report = load_workspace(manifest, progress=progress, ws=ws)
        timings["load"] = time.perf_counter() - t
        t = time.perf_counter()
        link_report = link_workspace(manifest, progress=progress, ws=ws)
        timings["link"] = time.perf_counter() - t
        t = time.perf_counter()
        if progress:
            progress("", "applying rules", 0, 1)
        rules_report = run_rules(ws, manifest, rules)
        timings["rules"] = time.perf_counter() - t
        t = time.perf_counter()
        if progress:
            progress("", "writing outputs", 0, 1)
        exceptions = build_exceptions(ws, manifest, rules, run_id)
        links = ws.query_pl(
            "SELECT registry, record_key, person_key, round(match_probability, 6) AS "
            "match_probability, decision FROM links ORDER BY registry, record_key"
        )
        quarantine = ws.query_pl(
            'SELECT registry, file, "row", "column", reason FROM quarantine '
            'ORDER BY registry, "row", "column"'
        )
        out = manifest.output
        out.mkdir(parents=True, exist_ok=True)
        summary_rows = [r.as_dict() for r in rules_report.results]
        write_csv(exceptions, out / "exceptions.csv")
        write_csv(links, out / "links.csv")
        write_xlsx(exceptions, rules, summary_rows, quarantine, out / "exceptions.xlsx")
        timings["outputs"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - started
        summary = _summary(
            run_id, now, manifest, rules, rules_report, load_report, link_report, timings
        )
        write_json(summary, out / "summary.json")
    return AuditResult(
        run_id=run_id,
        summary=summary,
        rules=rules_report,
        load=load_report,
        link=link_report,
        outputs={
            name: str(out / name)
            for name in ("exceptions.xlsx", "exceptions.csv", "links.csv", "summary.json")
        },
    )


def _summary(
    run_id: str,
    now: dt.datetime,
    manifest: Manifest,
    rules: list[Rule],
    rules_report: RulesReport,
    load_report: LoadReport,
    link_report: LinkReport,
    timings: dict[str, float],
) -> dict[str, Any]:
    from linkaudit import __version__

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
        "as_of": manifest.as_of.isoformat(),
        "rules": {r.rule_id: r.as_dict() for r in rules_report.results},
        "ineligible_distinct_cross_department": rules_report.ineligible_distinct_cross_department,
        "ineligible_distinct": rules_report.ineligible_distinct,
        "registries": registries,
        "input_checksums": {r.registry: r.checksum for r in load_report.registries},
        "ruleset_hash": ruleset_hash(rules),
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
        "link_warnings": link_report.warnings,
    }


def findings_frame(ws: Workspace) -> pl.DataFrame:
    return ws.query_pl("SELECT * FROM findings ORDER BY rule_id, person_key, evidence_key")
