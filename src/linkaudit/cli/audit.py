"""`linkaudit audit`, `linkaudit rules check`, `linkaudit explain`."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

if TYPE_CHECKING:  # imported where used: `--help` loads no engine
    from linkaudit.audit.run import AuditResult
from linkaudit.cli.console import console, err_console, print_json
from linkaudit.cli.options import EngineOpt, JsonOpt, ManifestArg, QuietOpt
from linkaudit.cli.progress import step_progress
from linkaudit.cli.root import app

RulesOpt = Annotated[
    list[Path] | None,
    typer.Option("--rules", help="Rule files or folders (default: the manifest's, else shipped)."),
]


class SplitBy(StrEnum):
    township = "township"
    village = "village"


class FailOn(StrEnum):
    new = "new"
    any = "any"
    none = "none"


@app.command()
def audit(
    manifest: ManifestArg = None,
    rules: RulesOpt = None,
    baseline: Annotated[
        str,
        typer.Option(
            help="Compare with this run: a run id, 'latest' (the latest run of the same rule "
            "set) or 'none'."
        ),
    ] = "latest",
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            help="Exit 1 when there are new (or reopened) cases, or any case (nightly CI).",
        ),
    ] = FailOn.none,
    force: Annotated[
        bool, typer.Option("--force", help="Reload and relink even if nothing changed.")
    ] = False,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option(
            "--as-of",
            formats=["%Y-%m-%d"],
            help="The audit's reference date (YYYY-MM-DD); overrides the manifest's as_of.",
        ),
    ] = None,
    no_record: Annotated[
        bool,
        typer.Option(
            "--no-record",
            help="A trial run: write the outputs but record nothing in the run history.",
        ),
    ] = False,
    split_by: Annotated[
        SplitBy | None,
        typer.Option(
            "--split-by",
            help="Also write one workbook per township (out/townships/) or village "
            "(out/villages/), each holding only its own residents.",
        ),
    ] = None,
    engine: EngineOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Load, link and apply the rules; write exceptions.xlsx/.csv, links.csv, summary.json
    and report.html.

    Cases are compared with the baseline run (new, persisting, reopened, resolved); cleared
    cases stay suppressed while their evidence is unchanged. Exit code 1 when --fail-on holds.
    """
    from linkaudit.audit.rerun import check_unchanged
    from linkaudit.config import load_manifest

    config = load_manifest(manifest)
    if as_of is not None:
        config.as_of = as_of.date()
    if engine is not None:
        config.engine.name = engine.value
    options = {
        "rules_override": rules,
        "baseline": None if baseline == "none" else baseline,
        "force": force,
        "record": not no_record,
        "split_by": split_by.value if split_by else None,
    }
    # Nothing changed since the latest run: its outputs and summary stand (nothing written).
    same, _ = check_unchanged(config, **options)  # type: ignore[arg-type]
    if same is not None:
        err_console.print(
            f"unchanged since run {same.run_id} ({same.started_at}): outputs in "
            f"{escape(_shown(config.output, config.root))}/ are that run's"
        )
        if json_out:
            print_json({**same.summary, "unchanged_since": same.run_id})
        else:
            render_summary(same.summary, list(same.outputs.values()), verb="kept")
        if same.fails(fail_on.value):
            raise typer.Exit(1)
        return
    from linkaudit.audit.run import run_audit

    # Progress goes to stderr, so --json on stdout keeps it (only --quiet silences it).
    with step_progress("audit", quiet) as progress:
        result = run_audit(config, progress=progress, **options)  # type: ignore[arg-type]
    if json_out:
        print_json(result.summary)
    else:
        render_audit(result)
    if result.fails(fail_on.value):
        raise typer.Exit(1)


def _shown(path: Path, root: Path) -> str:
    """A path as the manifest would say it (relative to its folder), else as it is."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def render_audit(result: AuditResult) -> None:
    render_summary(result.summary, list(result.outputs.values()))


def render_summary(summary: dict[str, Any], outputs: list[str], verb: str = "wrote") -> None:
    """A run's summary for people: warnings and notes on stderr, the registries and the
    flags by rule, changes since the baseline, the files written (or kept)."""
    from linkaudit.report.labels import SEVERITY_ZH

    for warning in [*summary.get("link_warnings", []), *summary.get("warnings", [])]:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}")
    if summary.get("unknown_values"):  # its module loads polars: only when there is news
        from linkaudit.audit.unknown_values import unknown_value_warnings

        for line in unknown_value_warnings(summary["unknown_values"]):
            err_console.print(f"[yellow]warning:[/] {escape(line)}")
    for note in summary.get("load_notes", []) + summary.get("rule_notes", []):
        err_console.print(f"[yellow]note:[/] {escape(note)}")
    render_registries(summary)
    results = list(summary.get("rules", {}).values())
    table = Table(title=f"Audit {summary['run_id']}: flags by rule", title_justify="left")
    # Rule ids are what users type (explain, --rule): never cut; the title wraps instead.
    table.add_column(
        "rule",
        no_wrap=True,
        min_width=max(len(r["rule_id"]) for r in results) if results else 4,
    )
    # The title column takes what is left and wraps; severity rides with it.
    table.add_column("title · severity", overflow="fold", ratio=1, min_width=10)
    for col in ("persons", "households", "records"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in results:
        title = f"{escape(r['title_zh'])} [dim]· {SEVERITY_ZH.get(r['severity'], r['severity'])}[/]"
        if r["skipped"]:
            table.add_row(r["rule_id"], title, "-", "-", "-", style="dim")
            continue
        table.add_row(
            r["rule_id"],
            title,
            f"{r['persons']:,}",
            f"{r['households']:,}",
            f"{r['evidence_records']:,}" if r["evidence_records"] else "",
        )
    console.print(table)
    console.print(
        f"[bold]{summary['ineligible_distinct_cross_department']:,}[/] distinct registrants "
        "ineligible by other departments' data "
        f"({summary['ineligible_distinct']:,} by any ineligibility rule)"
    )
    for r in results:
        if r["skipped"]:
            console.print(f"[yellow]not applied[/] {r['rule_id']}: {escape(r['skipped'])}")
    render_changes(summary)
    console.print("Flags are suspects for field verification, not verdicts.")
    for path in outputs:
        console.print(f"  {verb} {escape(path)}")


def render_changes(summary: dict[str, Any]) -> None:
    """Quarantined rows, cases since the baseline, what was not reported, what was reused."""
    registries = summary.get("registries", {})
    quarantined = sum(r.get("rows_rejected") or 0 for r in registries.values())
    if quarantined:
        console.print(f"[yellow]{quarantined:,} rows quarantined[/] (listed in exceptions.xlsx)")
    c = summary["cases"]
    if summary.get("baseline_run"):
        console.print(
            f"since run {summary['baseline_run']}: {c['new']:,} new, {c['persisting']:,} "
            f"persisting, {c['reopened']:,} reopened, {c['resolved']:,} resolved"
        )
    if c["suppressed_cleared"] or c["exempted"]:
        console.print(
            f"not reported: {c['suppressed_cleared']:,} cleared in the field (evidence unchanged), "
            f"{c['exempted']:,} exempted by policy"
        )
    reused = summary.get("reused", {})
    if registries and len(reused.get("loads", [])) == len(registries):
        console.print("[dim]inputs unchanged: nothing reloaded[/]")
    if reused.get("links"):
        console.print("[dim]links reused (same inputs and settings)[/]")


def render_registries(summary: dict[str, Any]) -> None:
    """Per registry: rows read, quarantined (set aside, listed in exceptions.xlsx), linked."""
    table = Table(title="Registries: rows read, quarantined, linked", title_justify="left")
    table.add_column("registry", no_wrap=True)
    table.add_column("department", overflow="fold")
    for col in ("rows read", "quarantined", "linked", "review"):
        table.add_column(col, justify="right", no_wrap=True)
    for name, r in summary.get("registries", {}).items():
        quarantined = r.get("rows_rejected") or 0
        table.add_row(
            escape(name),
            escape(str(r.get("department") or "")),
            f"{r.get('rows_read') or 0:,}",
            f"[yellow]{quarantined:,}[/]" if quarantined else "0",
            "-" if r.get("linked") is None else f"{r['linked']:,}",
            "-" if r.get("review") is None else f"{r['review']:,}",
        )
    console.print(table)


rules_app = typer.Typer(help="Validate and list audit rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("check")
def rules_check(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Rule files or folders (default: shipped rules).")
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", "-m", help="Check fields against this manifest's registries."),
    ] = None,
) -> None:
    """Validate rule files: schema, expressions allowed, fields exist in the manifest's registries.

    Reports every problem together; exit code 2 when any rule is invalid.
    """
    from linkaudit.audit.catalogue import rule_paths
    from linkaudit.audit.engine import adapt_rules, check_expressions, check_rules
    from linkaudit.audit.rules import load_rules
    from linkaudit.config import load_manifest

    config = load_manifest(manifest) if manifest else None
    targets = paths or (rule_paths(config) if config else None)
    if not targets:
        from linkaudit.audit.catalogue import shipped_rules_dir

        targets = [shipped_rules_dir()]
    rules = load_rules(list(targets))
    if config is None:
        check_expressions(rules)
        console.print(
            f"{len(rules)} rules valid (expressions checked; add --manifest to check fields)"
        )
        return
    rules, notes = adapt_rules(config, rules)
    for note in notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    checks = check_rules(config, rules)
    for c in checks:
        state = f"[dim]skipped: {escape(c.skipped)}[/]" if c.skipped else "[green]ok[/]"
        console.print(f"{c.rule.id:28s} {c.rule.registry:10s} {state}")  # ids are identifiers
    console.print(f"{len(rules)} rules checked against {config.path}")


@app.command()
def explain(
    args: Annotated[
        list[str],
        typer.Argument(
            help="[MANIFEST] KEY: the manifest (or its folder; default ./linkaudit.yaml) and a "
            "person key, household key, case id (疑点编号), ID number or name (masked keys "
            "work too).",
            show_default=False,
            metavar="[MANIFEST] KEY",
        ),
    ],
    unmask: Annotated[bool, typer.Option("--unmask", help="Show full ID numbers.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Why a registrant or household was flagged: rules, evidence records, link weights."""
    from linkaudit.audit.explain import explain as explain_key
    from linkaudit.config import load_manifest
    from linkaudit.engines.duckdb import Workspace
    from linkaudit.engines.factory import close_data_engine, data_engine

    if len(args) > 2:
        raise typer.BadParameter("give at most a manifest and a key", param_hint="ARGS")
    manifest, key = (None, args[0]) if len(args) == 1 else (Path(args[0]), args[1])
    config = load_manifest(manifest)
    with Workspace(config.database, read_only=True) as ws:
        engine = data_engine(config, ws)
        try:
            data = explain_key(ws, config, key, unmask=unmask, data=engine)
        finally:
            close_data_engine(engine, ws)
    if json_out:
        print_json(data)
        return
    if data.get("matches"):
        table = Table(title=f"{len(data['matches'])} registrants named {escape(key)}")
        for col in ("person key", "household", "name", "ID number"):
            table.add_column(col)
        for m in data["matches"]:
            table.add_row(
                escape(str(m["person_key"])),
                escape(str(m["household"] or "")),
                escape(str(m["name"])),
                escape(str(m["id_number"] or "")),
            )
        console.print(table)
        console.print("give one of these person or household keys to see why it was flagged")
        return
    people = ", ".join(
        f"{p['person_key']} {p['name']} {p['id_number'] or ''}" for p in data["persons"]
    )
    lines = [f"[bold]{escape(people)}[/]"]
    if not data["findings"]:
        lines.append("no rule flags this key")
    for f in data["findings"]:
        lines.append(f"\n[bold red]{f['rule_id']}[/] — {escape(str(f['person_key']))}")
        if f.get("record"):
            rec = f["record"]
            fields = ", ".join(f"{k}={v}" for k, v in rec.items() if v is not None and k != "_key")
            where = f"{f.get('department') or f['registry']} record {f['record_key']}: {fields}"
            lines.append("  " + escape(where))
        cond = f.get("condition")
        if cond:
            for lk in cond["lookups"]:
                lines.append(
                    f"  {escape(lk['parameter'])}[{escape(str(lk['key']))}] = "
                    f"{escape(str(lk['value']))}"
                )
            shown = ", ".join(f"{k}={v}" for k, v in cond["fields"].items())
            lines.append(f"  values: {escape(shown)}")
            lines.append(f"  condition: {escape(cond['expression'])}")
            lines.append(f"  with the values: [bold]{escape(cond['with_values'])}[/]")
        agg = f.get("aggregate")
        if agg and agg.get("_shown") is None:
            agg["_shown"] = True
            lines.append(
                f"  aggregate over {len(agg['records'])} records "
                f"({escape(', '.join(agg['records']))}): {escape(agg['having'])} → "
                f"[bold]{escape(agg['with_values'])}[/]"
            )
        link = f.get("link")
        if link:
            lines.append(
                f"  link: p={f['match_probability']:.4f}, weight {link['match_weight']:+.1f} bits "
                f"(prior {link['prior_weight']:+.1f}), found by {link['found_by']}, {link['decision']}"
            )
            for c in link["comparisons"]:
                lines.append(
                    f"    {c['comparison']:12s} {c['level'] or 'not compared':32s} {c['weight']:+.2f}"
                )
    console.print(
        Panel("\n".join(lines), title=f"explain {escape(str(data['key']))}", expand=False)
    )
