"""The Typer app, shared options and the one place that turns errors into exit codes."""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from linkaudit.cli.console import err_console
from linkaudit.errors import LinkauditError, environment_fault


def mask_text(text: str) -> str:
    """privacy.mask_text, imported only when a message is printed (it loads polars)."""
    from linkaudit.privacy import mask_text as mask

    return mask(text)


EXIT_USAGE = 2
EXIT_INTERNAL = 3


class _Group(TyperGroup):
    """Maps domain errors to one-line messages and exit code 2; tracebacks only with --debug."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except LinkauditError as exc:
            if _debug(ctx):
                raise
            # Messages quote values (a key, a cell, a DuckDB error's operand): ID-shaped ones
            # are masked here, for every command and every error.
            message = mask_text(exc.message)
            err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
            if exc.hint:
                err_console.print(
                    f"[yellow]hint:[/] {escape(mask_text(exc.hint))}", highlight=False
                )
            raise SystemExit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted")
            raise SystemExit(130) from None
        except Exception as exc:
            # Usage errors and exits of the CLI framework carry their own exit code.
            if isinstance(exc, typer.Exit | typer.Abort) or hasattr(exc, "exit_code"):
                raise
            if _debug(ctx):
                raise
            fault = environment_fault(exc)
            if fault is not None:  # the disk or the workspace file, not a bug: exit 2
                err_console.print(f"[bold red]error:[/] {escape(fault.message)}", highlight=False)
                if fault.hint:
                    err_console.print(f"[yellow]hint:[/] {escape(fault.hint)}", highlight=False)
                raise SystemExit(fault.exit_code) from None
            err_console.print(
                f"[bold red]internal error:[/] {type(exc).__name__}: {escape(mask_text(str(exc)))}",
                highlight=False,
            )
            err_console.print(
                "[yellow]hint:[/] re-run with --debug for the traceback and report it"
            )
            raise SystemExit(EXIT_INTERNAL) from None


def _debug(ctx: Any) -> bool:
    root = ctx.find_root()
    return bool((root.obj or {}).get("debug")) or os.environ.get("LINKAUDIT_DEBUG") == "1"


app = typer.Typer(
    cls=_Group,
    name="linkaudit",
    help=(
        "Link a welfare register against other departments' registries and flag "
        "ineligible beneficiaries for field verification."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from linkaudit._version import __version__

        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False,
        "--version",
        help="Print the version and exit.",
        is_eager=True,
        callback=_print_version,
    ),
) -> None:
    ctx.obj = {"debug": debug}
