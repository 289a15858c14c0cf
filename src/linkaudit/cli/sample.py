"""`linkaudit sample mashan --out DIR`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from linkaudit.cli.console import console
from linkaudit.cli.root import app
from linkaudit.errors import LinkauditError

sample_app = typer.Typer(help="Write synthetic scenarios with planted truth.", no_args_is_help=True)
app.add_typer(sample_app, name="sample")


@sample_app.command("mashan")
def mashan(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the scenario into.")],
    scale: Annotated[
        float, typer.Option(help="1 = the Mashan audit (about 100,000 registrants).")
    ] = 1.0,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed and scale give identical files.")
    ] = 20151231,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a folder that is not empty.")
    ] = False,
    dialect: Annotated[
        int,
        typer.Option(
            help="0: the default layout with its manifest; 1-3: another county's layout of the "
            "same data (headers, encodings, codes, title rows), without a manifest."
        ),
    ] = 0,
    profile: Annotated[
        str,
        typer.Option(
            help="default, or hard: namesakes without IDs, neighbouring-county IDs, ID typo "
            "with a look-alike surname, birth-date slips, business premises, compound surnames."
        ),
    ] = "default",
) -> None:
    """The synthetic Mashan county (450124): department files, a manifest and truth/."""
    from linkaudit.sample.mashan import generate

    if scale < 0.02 or scale > 50:
        raise LinkauditError(
            f"--scale {scale}: must be between 0.02 (the smallest county that still plants every "
            "kind of case) and 50"
        )
    if out.exists() and not out.is_dir():
        raise LinkauditError(f"--out {out}: is a file; name a folder for the scenario")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise LinkauditError(
            f"--out {out}: the folder is not empty; the scenario would overwrite its "
            "linkaudit.yaml and data files",
            hint="name a new folder, or add --force to overwrite",
        )
    from linkaudit.sample.dialects import DIALECTS, apply_dialect

    if dialect != 0 and dialect not in DIALECTS:
        raise LinkauditError(
            f"--dialect {dialect}: no such dialect",
            hint=f"use 0 (the default) or one of {', '.join(map(str, DIALECTS))}",
        )
    started = time.perf_counter()
    try:
        summary = generate(out, scale=scale, seed=seed, profile=profile)
    except ValueError as exc:
        raise LinkauditError(
            f"--scale {scale}: {exc}", hint="scales from about 0.02 upwards work"
        ) from None
    if dialect:
        apply_dialect(out, dialect)
    rows = summary.get("rows", {})
    console.print(
        f"wrote {out} (scale {scale:g}, seed {seed}) in {time.perf_counter() - started:.1f} s: "
        + ", ".join(f"{k} {v:,}" for k, v in rows.items())
    )
    table = Table(title="Planted truth (truth/summary.json)", title_justify="left")
    for col in ("rule", "persons", "households", "evidence records"):
        table.add_column(col, justify="left" if col == "rule" else "right")
    for rule_id, c in summary.get("rules", {}).items():
        table.add_row(
            rule_id, f"{c['persons']:,}", f"{c['households']:,}", f"{c['evidence_records']:,}"
        )
    console.print(table)
    console.print(f"distinct ineligible registrants: {summary.get('ineligible_distinct', 0):,}")
    if dialect:
        console.print(f"dialect {dialect}: {DIALECTS[dialect].description}; no manifest written")
        console.print(f"next: linkaudit inspect {out / 'data'}/*, then linkaudit init {out}")
    else:
        console.print(f"next: linkaudit audit {out / 'linkaudit.yaml'}")
