"""Rich consoles: stdout for results, stderr for messages. Plain output when not on a terminal."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False, soft_wrap=False)
if not console.is_terminal:
    # Logs and pipes: don't squeeze tables into 80 columns.
    console = Console(highlight=False, soft_wrap=False, width=160)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
