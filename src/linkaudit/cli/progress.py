"""Progress on stderr, whatever stdout is (`--json > file` still shows it): on a terminal a
rich bar per phase (load, link, rules, outputs), each left with its time when done; otherwise
one plain line as each phase starts. `--quiet` silences it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from linkaudit.cli.console import err_console

#: The step words the library reports (load.py, link/engine.py, audit/run.py) → phase.
PHASES = {
    "loading": "读入 load",
    "blocking": "关联 link",
    "estimating model": "关联 link",
    "scoring": "关联 link",
    "applying rules": "规则 rules",
    "writing outputs": "输出 outputs",
}


def phase_of(step: str) -> str | None:
    """The phase a reported step belongs to ('done' ends the current one: None)."""
    return PHASES.get(step, None if step == "done" else step)


@contextmanager
def step_progress(title: str, quiet: bool = False) -> Iterator[object]:
    """Yield a callback(name, step, done, total) that reports phase progress on stderr."""
    if quiet:

        def silent(name: str, step: str, done: int, total: int) -> None:
            return None

        yield silent
        return
    if not err_console.is_terminal:
        yield _plain_lines(title)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[item]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}
        current: list[str] = []

        def update(name: str, step: str, done: int, total: int) -> None:
            phase = phase_of(step)
            if phase is None:
                if current:
                    t = tasks[current[-1]]
                    bar.update(t, completed=total, total=total, item="")
                    bar.stop_task(t)
                return
            if not current or current[-1] != phase:
                if current:
                    prev = tasks[current[-1]]
                    task = bar.tasks[prev]
                    bar.update(prev, completed=task.total or 1, total=task.total or 1, item="")
                    bar.stop_task(prev)
                tasks[phase] = bar.add_task(f"{title}: {phase}", total=None, item="")
                current.append(phase)
            bar.update(tasks[phase], completed=done, total=total, item=f"{step} {name}".strip())

        yield update
        for t in tasks.values():
            task = bar.tasks[t]
            if not task.finished:
                bar.update(t, completed=task.total or 1, total=task.total or 1, item="")
                bar.stop_task(t)


def _plain_lines(title: str) -> Any:
    """One line per phase, with the seconds the previous one took (logs, pipes, cron)."""
    state: dict[str, Any] = {"phase": None, "since": time.perf_counter()}

    def update(name: str, step: str, done: int, total: int) -> None:
        phase = phase_of(step)
        if phase is None or phase == state["phase"]:
            return
        now = time.perf_counter()
        took = f" (previous phase {now - state['since']:.1f} s)" if state["phase"] else ""
        err_console.print(f"{title}: {phase}{took}", highlight=False, soft_wrap=True)
        state.update(phase=phase, since=now)

    return update
