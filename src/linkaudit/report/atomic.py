"""Outputs written atomically: a temp file in a private folder, then one rename."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from linkaudit.privacy import private_tmpdir, remove_stale_tmpdirs

__all__ = ["atomic_path", "tmp_bases"]


def tmp_bases(target: Path) -> tuple[Path, Path]:
    """Where an output's temp files go: a private folder in the output folder's parent (so
    that out/ only ever holds finished files), else in the output folder itself."""
    return target.parent.parent, target.parent


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path in a private folder (see privacy.private_tmpdir); on success it
    replaces target in one rename. The folder goes on every way out; one left by a killed run
    is removed here by the next."""
    target.parent.mkdir(parents=True, exist_ok=True)
    bases = tmp_bases(target)
    remove_stale_tmpdirs(bases)
    with private_tmpdir(*bases) as folder:
        tmp_path = folder / target.name
        yield tmp_path
        # Files in the private folder are the user's; outputs get the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        _replace(tmp_path, target)


def _replace(tmp_path: Path, target: Path) -> None:
    try:
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # The output folder is another file system (a mount): copy beside it, then rename.
        fd, beside = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(tmp_path, beside)
            os.chmod(beside, os.stat(tmp_path).st_mode & 0o777)
            os.replace(beside, target)
        finally:
            Path(beside).unlink(missing_ok=True)
