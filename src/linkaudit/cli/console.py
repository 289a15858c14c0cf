"""Rich consoles: stdout for results, stderr for messages. Plain output when not on a terminal.

Printing must never fail a finished run: under an output encoding that cannot show Chinese
(`PYTHONIOENCODING=ascii`, an old Windows code page) characters it cannot encode are written
as escapes, and JSON is written with ASCII escapes (still exact JSON).
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console


def _can_encode(stream: Any, sample: str = "马山县") -> bool:
    try:
        sample.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


for _stream in (sys.stdout, sys.stderr):
    if not _can_encode(_stream) and hasattr(_stream, "reconfigure"):
        _stream.reconfigure(errors="backslashreplace")

console = Console(highlight=False, soft_wrap=False)
if not console.is_terminal:
    # Logs and pipes: don't squeeze tables into 80 columns.
    console = Console(highlight=False, soft_wrap=False, width=160)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """A JSON report on stdout: UTF-8 text where the stream can take it, ASCII escapes else."""
    console.print_json(
        data=data, ensure_ascii=not _can_encode(console.file), default=str, highlight=False
    )
