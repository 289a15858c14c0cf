"""The CLI's entry point: the root command (cli.root) with every command module registered
on it. Each command lives in its own module and registers itself on `root.app`; importing
them here, not in root, keeps the import graph acyclic."""

from __future__ import annotations

import os
import sys

from linkaudit.cli import audit as _audit  # noqa: F401
from linkaudit.cli import history as _history  # noqa: F401
from linkaudit.cli import inspect as _inspect  # noqa: F401
from linkaudit.cli import link as _link  # noqa: F401
from linkaudit.cli import load as _load  # noqa: F401
from linkaudit.cli import sample as _sample  # noqa: F401
from linkaudit.cli.root import EXIT_INTERNAL, app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit:
        raise
    except BaseException:  # only reached with --debug
        if "--debug" in sys.argv or os.environ.get("LINKAUDIT_DEBUG") == "1":
            raise
        sys.exit(EXIT_INTERNAL)
