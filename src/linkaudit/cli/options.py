"""Options shared by several commands, declared once."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

ManifestArg = Annotated[
    Path | None,
    typer.Argument(
        help="The workspace manifest (linkaudit.yaml), a folder holding one, or nothing for "
        "./linkaudit.yaml.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON report on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]


class EngineName(StrEnum):
    duckdb = "duckdb"
    spark = "spark"


EngineOpt = Annotated[
    EngineName | None,
    typer.Option(
        "--engine",
        help="Run loading, linkage and rules on DuckDB (embedded, the default) or Spark "
        "(pip install 'linkaudit[spark]'); overrides the manifest's engine.name.",
        show_default=False,
    ),
]
