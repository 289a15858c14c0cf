"""`linkaudit diff` and `linkaudit verify import|status`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from linkaudit.cli.console import console, print_json
from linkaudit.cli.options import JsonOpt
from linkaudit.cli.root import app

if TYPE_CHECKING:  # imported where used: `--help` loads no engine
    from linkaudit.history import Diff

ManifestOpt = Annotated[
    Path,
    typer.Option("--manifest", "-m", help="The workspace manifest.", show_default=True),
]


@app.command()
def diff(
    old: Annotated[
        str, typer.Argument(help="Older run: exceptions.csv, or a run id / 'previous'.")
    ],
    new: Annotated[str, typer.Argument(help="Newer run: exceptions.csv, or a run id / 'latest'.")],
    manifest: Annotated[
        Path | None,
        typer.Option("--manifest", "-m", help="Workspace whose run history holds the run ids."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """New, persisting and resolved cases between two runs (by stable case id)."""
    from linkaudit.config import load_manifest
    from linkaudit.engines.duckdb import Workspace
    from linkaudit.history import diff_files, diff_workspace

    if manifest is not None:
        config = load_manifest(manifest)
        with Workspace(config.database, read_only=True) as ws:
            result = diff_workspace(ws, old, new)
    else:
        result = diff_files(Path(old), Path(new))
    if json_out:
        print_json(
            {
                "old": result.old,
                "new": result.new,
                "counts": result.counts(),
                "by_rule": result.by_rule().to_dicts(),
                "new_cases": result.new_cases.get_column("case_id").to_list(),
                "resolved_cases": result.resolved.get_column("case_id").to_list(),
            }
        )
        return
    render_diff(result)


def render_diff(result: Diff) -> None:
    table = Table(title=f"{result.old} → {result.new}", title_justify="left")
    for col in ("rule", "new", "persisting", "resolved"):
        table.add_column(col, justify="left" if col == "rule" else "right")
    for rule_id, *counts in (
        result.by_rule().select("rule_id", "new", "persisting", "resolved").iter_rows()
    ):
        table.add_row(rule_id, *(f"{int(n):,}" for n in counts))
    c = result.counts()
    table.add_row(
        "total", f"{c['new']:,}", f"{c['persisting']:,}", f"{c['resolved']:,}", style="bold"
    )
    console.print(table)


verify_app = typer.Typer(
    help="Field verification outcomes: import them, see the rates.", no_args_is_help=True
)
app.add_typer(verify_app, name="verify")


@verify_app.command("import")
def verify_import(
    file: Annotated[
        Path, typer.Argument(help="exceptions.xlsx or .csv with the outcome column filled.")
    ],
    manifest: ManifestOpt = Path("linkaudit.yaml"),
) -> None:
    """Store cadres' outcomes (confirmed / cleared with a reason / pending) for a run's cases.

    The file is checked against the run it came from; any unknown case id or bad value is
    reported with file, row and column, and nothing is stored.
    """
    from linkaudit.config import load_manifest
    from linkaudit.engines.duckdb import Workspace
    from linkaudit.verify import import_outcomes

    config = load_manifest(manifest)
    with Workspace(config.database) as ws:
        report = import_outcomes(ws, file)
    console.print(
        f"imported {report['imported']:,} outcomes from {file} (run {report['run_id']}): "
        + ", ".join(f"{k} {v:,}" for k, v in report["by_outcome"].items())
    )


@verify_app.command("status")
def verify_status(
    manifest: ManifestOpt = Path("linkaudit.yaml"),
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule id.")] = None,
    township: Annotated[
        str | None, typer.Option("--township", help="Only this township (乡镇).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Per rule and township: flagged, verified, confirmed, cleared and the confirmation rate,
    with totals."""
    from linkaudit.config import load_manifest
    from linkaudit.engines.duckdb import Workspace
    from linkaudit.verify import status_totals, verification_status

    config = load_manifest(manifest)
    with Workspace(config.database, read_only=True) as ws:
        frame = verification_status(ws, rule=rule, township=township)
    totals = status_totals(frame)
    if json_out:
        print_json({"rows": frame.to_dicts(), "totals": totals})
        return
    table = Table(title="Verification status (latest run)", title_justify="left")
    for col in frame.columns:
        table.add_column(col, justify="left" if col in ("rule_id", "township") else "right")
    for row in frame.iter_rows():
        table.add_row(
            *(
                ""
                if v is None
                else (
                    f"{v:.1%}"
                    if isinstance(v, float)
                    else f"{v:,}"
                    if isinstance(v, int)
                    else str(v)
                )
                for v in row
            )
        )
    rate = totals["confirmation_rate"]
    table.add_row(
        "total",
        "",
        *(f"{totals[c]:,}" for c in ("flagged", "verified", "confirmed", "cleared", "pending")),
        "" if rate is None else f"{rate:.1%}",
        style="bold",
    )
    console.print(table)
