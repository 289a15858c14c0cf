"""Publishing a run's outputs as one set.

A run writes its files into a staging folder beside the output folder; only after the run is
recorded is the set switched in, in one atomic rename. The output path (`output:`, e.g.
`out/`) is a symbolic link to the published set:

    mashan/out -> .out.sets/20261201T101500-ab12cd
    mashan/.out.sets/20261201T101500-ab12cd/{exceptions.xlsx, exceptions.csv, ...}

So after a crash or `kill -9` at any moment, `out/` names either the previous complete set or
the new complete one, never a mix of two runs; what a killed run left in `.out.sets/` is
removed by the next run. An `out/` that is a real folder of our own files (an older workspace)
is moved into `.out.sets/` the first time, swapped atomically where the system allows it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from linkaudit.errors import LinkauditError, environment_error
from linkaudit.privacy import TMP_PREFIX, remove_stale_tmpdirs

#: Files and folders a run writes into its set (anything else in a real out/ folder is the
#: user's, and is never moved or deleted).
OUTPUT_NAMES = frozenset(
    {
        "exceptions.xlsx",
        "exceptions.csv",
        "links.csv",
        "summary.json",
        "report.html",
        "townships",
        "villages",
    }
)
_PARTIAL = ".partial"


T = TypeVar("T")


def timed(work: Callable[..., T], *args: Any) -> tuple[T, float]:
    """`work(*args)` (e.g. in a worker thread) and the seconds it took."""
    t = time.perf_counter()
    result = work(*args)
    return result, time.perf_counter() - t


def sets_dir(output: Path) -> Path:
    """The folder holding the published set and any staging ones: `.out.sets` beside `out`."""
    return output.parent / f".{output.name}.sets"


class OutputSet:
    """A run's output files, staged and then published together."""

    def __init__(self, output: Path, run_id: str) -> None:
        self.output = output
        self.run_id = run_id
        self.root = sets_dir(output)
        self.final = self.root / run_id
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            check_output(output)
            clean_sets(output)  # what killed runs left (the workspace lock makes this safe)
            self.staging = Path(
                tempfile.mkdtemp(prefix=f"{run_id}.", suffix=_PARTIAL, dir=self.root)
            )
            os.chmod(self.staging, 0o755 & ~_umask())
        except OSError as exc:
            raise environment_error(
                exc, f"cannot write the outputs under {output.parent}"
            ) from None

    def path(self, name: str) -> Path:
        """Where a file of this set is written while it is staged."""
        return self.staging / name

    def publish(self) -> None:
        """Switch `output` to this set (one rename), then remove every other set."""
        try:
            os.replace(self.staging, self.final)
            link = self.root / f".link-{self.run_id}"
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            os.symlink(os.path.relpath(self.final, self.output.parent), link)
            if self.output.is_symlink() or not self.output.exists():
                os.replace(link, self.output)  # atomic on POSIX
            else:
                _replace_folder(self.output, link, self.root / f"legacy-{self.run_id}")
        except OSError as exc:
            raise environment_error(exc, f"cannot publish the outputs to {self.output}") from None
        self.staging = self.final
        clean_sets(self.output)

    def discard(self) -> None:
        """Remove the staged files of a run that did not finish."""
        if self.staging != self.final:
            shutil.rmtree(self.staging, ignore_errors=True)


def clean_sets(output: Path) -> None:
    """Remove every set but the published one (sets of earlier runs, staging folders left by
    a run that was killed). Safe to call at any time: the published set is never touched."""
    root = sets_dir(output)
    # Private temp folders (privacy.private_tmpdir) go only when their process is gone; also
    # those an older version left beside the output folder.
    remove_stale_tmpdirs([root, output.parent])
    if not root.is_dir():
        return
    current = output.resolve() if output.is_symlink() else None
    for entry in root.iterdir():
        if (current is not None and entry.resolve() == current) or entry.name.startswith(
            TMP_PREFIX
        ):
            continue
        if entry.is_symlink() or entry.is_file():
            entry.unlink(missing_ok=True)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def check_output(output: Path) -> None:
    """A real `out/` folder may be moved into the sets only if it holds nothing but ours."""
    if output.is_symlink() or not output.exists():
        return
    if not output.is_dir():
        raise LinkauditError(
            f"{output}: the output path is a file", hint="set `output:` to a folder name"
        )
    foreign = sorted(
        p.name
        for p in output.iterdir()
        if p.name not in OUTPUT_NAMES and not p.name.startswith(".")
    )
    if foreign:
        raise LinkauditError(
            f"{output}: the output folder holds files linkaudit did not write "
            f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''})",
            hint="move them elsewhere, or set `output:` to a folder of its own: each run "
            "replaces the whole output folder with its own set of files",
        )


def _replace_folder(output: Path, link: Path, parking: Path) -> None:
    """Put the symlink `link` where the real folder `output` is. One atomic exchange where
    Linux offers renameat2(RENAME_EXCHANGE); else two renames (a moment without `output`)."""
    if _exchange(link, output):
        os.replace(link, parking)  # `link` now names the old folder
        return
    os.replace(output, parking)
    os.replace(link, output)


def _exchange(a: Path, b: Path) -> bool:
    if not hasattr(os, "uname") or os.uname().sysname != "Linux":
        return False
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return bool(result == 0)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
