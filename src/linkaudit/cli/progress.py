"""Progress display: a rich bar on a terminal, nothing (or plain lines) otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from linkaudit.cli.console import err_console


@contextmanager
def step_progress(title: str, quiet: bool = False) -> Iterator[object]:
    """Yield a callback(name, step, done, total) that drives one progress bar."""
    if quiet or not err_console.is_terminal:

        def silent(name: str, step: str, done: int, total: int) -> None:
            return None

        yield silent
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[item]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(title, total=None, item="")

        def update(name: str, step: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, item=f"{step} {name}".strip())

        yield update
