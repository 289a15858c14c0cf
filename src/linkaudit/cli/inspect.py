"""`linkaudit inspect FILE...` and `linkaudit init DIR`: a county's own files, before a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from linkaudit.cli.console import console, err_console, print_json
from linkaudit.cli.options import JsonOpt
from linkaudit.cli.root import app
from linkaudit.ingest import SAMPLE_ROWS

if TYPE_CHECKING:  # imported where used: `--help` loads no engine
    from linkaudit.ingest.profile import ColumnProfile, FileProfile


def _pct(share: float | None) -> str:
    return "" if share is None else f"{100 * share:.1f}%"


def _values_cell(c: ColumnProfile) -> str:
    parts = []
    if c.unknown_values:
        parts.append(
            "unknown to the rules: " + ", ".join(f"{v} ({n})" for v, n in c.unknown_values.items())
        )
    if c.known_values:
        parts.append("known: " + ", ".join(f"{v} ({n})" for v, n in c.known_values.items()))
    if not parts and c.top_values:
        parts.append(", ".join(f"{v} ({n})" for v, n in c.top_values.items()))
    if c.date_forms:
        parts.append("forms: " + ", ".join(c.date_forms))
    return "; ".join(parts)


def render_profile(p: FileProfile) -> None:
    where = f"sheet {p.sheet} of {', '.join(p.sheets)}; " if p.sheet is not None else ""
    console.print(
        f"[bold]{escape(str(p.path))}[/]: {p.format}"
        + (f", encoding {p.encoding}" if p.encoding else "")
        + f"; {where}header row {p.header_row}; {p.rows:,} rows"
        + f" (values sniffed on the first {p.sampled_rows:,})"
    )
    console.print(
        f"looks like: {p.registry or 'no canonical registry'} ({escape(p.registry_evidence)})"
    )
    table = Table(title_justify="left")
    for col in ("column", "field", "evidence", "null", "distinct", "IDs", "dates", "names"):
        table.add_column(col, justify="right" if col in ("null", "distinct") else "left")
    table.add_column("values", overflow="fold")
    for c in p.columns:
        table.add_row(
            escape(c.header),
            c.field or "",
            escape(c.evidence),
            _pct(c.null_share),
            f"{c.distinct:,}" + (" (unique)" if c.unique else ""),
            _pct(c.id_share),
            _pct(c.date_share),
            _pct(c.name_share),
            escape(_values_cell(c)),
        )
    console.print(table)
    for c in p.columns:
        if c.unknown_values:
            err_console.print(
                f"[yellow]warning:[/] {escape(str(p.path))}: column {escape(c.header)} "
                f"({c.field}) holds values the shipped rules do not know: "
                + escape(", ".join(c.unknown_values))
                + f"; map them with `values: {{{c.field}: {{...}}}}` in the manifest"
            )


@app.command("inspect")
def inspect(
    files: Annotated[list[Path], typer.Argument(help="Department data files to look at.")],
    rows: Annotated[
        int, typer.Option("--rows", help="Rows whose values are sniffed (IDs, dates, names).")
    ] = SAMPLE_ROWS,
    json_output: JsonOpt = False,
) -> None:
    """What the tool sees in a department's file: format, encoding, sheet, header row, each
    column's likely canonical field, value profiles, values the shipped rules do not know."""
    from linkaudit.ingest.profile import profile_file

    profiles = [profile_file(f, sample_rows=rows) for f in files]
    if json_output:
        print_json({"files": [p.as_dict() for p in profiles]})
        return
    for p in profiles:
        render_profile(p)


@app.command("init")
def init(
    folder: Annotated[Path, typer.Argument(help="Folder holding the department files.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing linkaudit.yaml.")
    ] = False,
    json_output: JsonOpt = False,
) -> None:
    """Draft FOLDER/linkaudit.yaml for the data files in FOLDER (and one level below): each
    registry, its key, header row, encoding and fields, each guess with its evidence; you fill
    in as_of, the county's parameters and the meaning of department codes."""
    from linkaudit.ingest.draft import write_draft

    draft = write_draft(folder, force=force)
    if json_output:
        print_json(draft.as_dict())
        return
    table = Table(title=f"Drafted {folder / 'linkaudit.yaml'}", title_justify="left")
    for col in ("registry", "file", "key", "fields", "codes to map"):
        table.add_column(col)
    for r in draft.registries:
        table.add_row(
            r.name,
            escape(r.path),
            escape(r.key or "(none)"),
            str(len(r.fields)),
            escape("; ".join(f"{f}: {', '.join(c)}" for f, c in r.codes.items())),
        )
    console.print(table)
    for rel, why in draft.skipped.items():
        err_console.print(f"[yellow]skipped:[/] {escape(rel)}: {escape(why)}")
    console.print(
        "next: check the guesses, set as_of (and the county's parameters and code meanings "
        f"marked ←) in {folder / 'linkaudit.yaml'}, then: linkaudit audit {folder}"
    )
