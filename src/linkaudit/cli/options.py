"""Options shared by several commands, declared once."""

from __future__ import annotations

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
