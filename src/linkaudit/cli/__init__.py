"""The command-line interface: a thin Typer layer over the library. Only this package imports
typer and rich."""

from linkaudit.cli.app import app, main

__all__ = ["app", "main"]
