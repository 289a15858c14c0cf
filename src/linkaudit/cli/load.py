"""`linkaudit load MANIFEST`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from linkaudit.cli.console import console, print_json
from linkaudit.cli.options import JsonOpt, ManifestArg, QuietOpt
from linkaudit.cli.progress import step_progress
from linkaudit.cli.root import app

if TYPE_CHECKING:  # imported where used: `--help` loads no engine
    from linkaudit.load import LoadReport


@app.command()
def load(manifest: ManifestArg = None, json_out: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Load every registry of MANIFEST into the workspace database, normalised and checked.

    Prints per registry the rows read, loaded and quarantined and the ID status counts.
    """
    from linkaudit.config import load_manifest
    from linkaudit.load import load_workspace

    config = load_manifest(manifest)
    with step_progress("load", quiet or json_out) as progress:
        report = load_workspace(config, progress=progress)  # type: ignore[arg-type]
    if json_out:
        print_json(report.as_dict())
        return
    console.print(render_load(report))


def render_load(report: LoadReport) -> Table:
    from linkaudit.vocabulary import ID_STATUSES

    table = Table(title=f"Loaded into {report.database}", title_justify="left")
    for col in ("registry", "department", "format", "read", "loaded", "quarantined"):
        table.add_column(
            col, justify="right" if col in ("read", "loaded", "quarantined") else "left"
        )
    for col in ID_STATUSES:
        table.add_column(f"ID {col}", justify="right")
    for r in report.registries:
        fmt = r.format + (f" ({r.encoding})" if r.encoding else "")
        table.add_row(
            r.registry,
            escape(r.department),
            fmt,
            f"{r.rows_read:,}",
            f"{r.rows_loaded:,}",
            f"{r.rows_quarantined:,}",
            *(f"{r.id_status.get(s, 0):,}" for s in ID_STATUSES),
        )
    return table
