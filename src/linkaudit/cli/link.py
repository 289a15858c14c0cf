"""`linkaudit link MANIFEST` and `linkaudit evaluate MANIFEST --truth DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from linkaudit.cli.console import console, err_console, print_json
from linkaudit.cli.options import JsonOpt, ManifestArg, QuietOpt
from linkaudit.cli.progress import step_progress
from linkaudit.cli.root import app

if TYPE_CHECKING:  # imported where used: `--help` loads no engine
    from linkaudit.evaluate import EvalReport, Score
    from linkaudit.link.engine import LinkReport


@app.command()
def link(manifest: ManifestArg = None, json_out: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Link every department registry's records to beneficiaries (run `load` first).

    Prints links per registry, decision counts, blocking passes, the model and the distribution
    of match weights.
    """
    from linkaudit.config import load_manifest
    from linkaudit.link.engine import link_workspace

    config = load_manifest(manifest)
    with step_progress("link", quiet or json_out) as progress:
        report = link_workspace(config, progress=progress)  # type: ignore[arg-type]
    if json_out:
        print_json(report.as_dict())
        return
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}")
    render_link(report)


def render_link(report: LinkReport) -> None:
    table = Table(title="Links per registry", title_justify="left")
    for col in ("registry", "records", "candidate pairs", "match", "review", "persons"):
        table.add_column(col, justify="left" if col == "registry" else "right")
    for r in report.registries:
        table.add_row(
            r.registry,
            f"{r.records:,}",
            f"{r.candidates:,}",
            f"{r.matches:,}",
            f"{r.reviews:,}",
            f"{r.persons:,}",
        )
    console.print(table)
    passes = Table(title="Blocking passes (pairs before de-duplication)", title_justify="left")
    for col in ("registry", "pass", "pairs", ""):
        passes.add_column(col, justify="right" if col == "pairs" else "left")
    for p in report.passes:
        passes.add_row(
            p.registry, p.name, f"{p.pairs:,}", "skipped: too many pairs" if p.skipped else ""
        )
    console.print(passes)
    if report.model:
        model = Table(title="Model: agreement levels and match weights", title_justify="left")
        for col in ("comparison", "level", "m", "u", "weight (bits)"):
            model.add_column(col, justify="left" if col in ("comparison", "level") else "right")
        for levels in report.model.levels:
            for lv in levels:
                model.add_row(
                    lv.comparison, lv.label, f"{lv.m:.4g}", f"{lv.u:.4g}", f"{lv.weight:+.2f}"
                )
        console.print(model)
        lambdas = ", ".join(f"{k} {v:.3g}" for k, v in report.model.lambdas.items())
        console.print(
            f"prior that a random pair matches: {lambdas} "
            f"(EM: {report.model.iterations} iterations, "
            f"{'converged' if report.model.converged else 'NOT converged'})"
        )
    if report.weight_histogram:
        console.print("[bold]Match weight of accepted and review links[/]")
        top = max(n for _, n in report.weight_histogram)
        for w, n in report.weight_histogram:
            bar = "█" * max(1, round(40 * n / top))
            console.print(f"  {w:+6.0f} … {w + 5:+4.0f}  {bar} {n:,}")
    console.print(f"linked in {report.seconds:.1f} s")


TruthOpt = Annotated[
    Path,
    typer.Option(
        "--truth",
        help="Truth folder with links.csv (as written by `linkaudit sample`).",
        show_default=False,
    ),
]


@app.command()
def evaluate(
    truth: TruthOpt,
    manifest: ManifestArg = None,
    worst: Annotated[int, typer.Option(help="How many of the worst errors to list.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Precision, recall and F1 of links (and of flags, after `audit`) against a truth folder."""
    from linkaudit.config import load_manifest
    from linkaudit.evaluate import evaluate_links

    config = load_manifest(manifest)
    report = evaluate_links(config, truth, worst=worst)
    if json_out:
        print_json(report.as_dict())
        return
    render_evaluation(report)


def _score_table(title: str, first: str, scores: list[Score], f1: bool) -> Table:
    table = Table(title=title, title_justify="left")
    cols = [first, "true", "predicted", "TP", "FP", "FN", "precision", "recall"] + (
        ["F1"] if f1 else []
    )
    for col in cols:
        table.add_column(col, justify="left" if col == first else "right")
    for s in scores:
        cells = [s.registry] + [
            f"{n:,}"
            for n in (
                s.true_links,
                s.predicted,
                s.true_positive,
                s.false_positive,
                s.false_negative,
            )
        ]
        cells += [f"{s.precision:.4f}", f"{s.recall:.4f}"] + ([f"{s.f1:.4f}"] if f1 else [])
        table.add_row(*cells, style="bold" if s.registry == "overall" else None)
    return table


def render_evaluation(report: EvalReport) -> None:
    rows = [*report.scores, *([report.overall] if report.overall else [])]
    console.print(_score_table("Link quality against truth", "registry", rows, f1=True))
    if report.flags:
        title = "Flags against truth (persons; households for household rules)"
        console.print(_score_table(title, "rule", report.flags, f1=False))
    if report.worst:
        errors = Table(title="Worst errors", title_justify="left")
        for col in (
            "error",
            "registry",
            "record",
            "true person",
            "linked to",
            "best candidate",
            "p",
            "decision",
        ):
            errors.add_column(col)
        for e in report.worst:
            p = e.get("match_probability")
            cells = [
                e["error"],
                e["registry"],
                e["record_key"],
                e["true_person"],
                e["predicted_person"],
                e["best_candidate"],
                None if p is None else f"{p:.3f}",
                e["best_decision"],
            ]
            errors.add_row(*(escape(str(c)) if c is not None else "" for c in cells))
        console.print(errors)
