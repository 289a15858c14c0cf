"""Domain errors. The core raises these; the CLI turns them into one-line messages and exit code 2."""

from __future__ import annotations

import errno


class LinkauditError(Exception):
    """Base error: a message saying what and where, and a hint saying how to fix it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ManifestError(LinkauditError):
    """The manifest is missing, unreadable or invalid. Carries every problem found."""

    def __init__(self, path: str, problems: list[str], hint: str | None = None) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{path}: {len(problems)} {noun} in manifest:\n{lines}", hint)


class InputFileError(LinkauditError):
    """A registry file cannot be read: missing, empty, undecodable, wrong columns."""


class DuplicateKeyError(InputFileError):
    """A registry's record key is not unique."""


class RuleError(LinkauditError):
    """A rule file is invalid. Carries every problem found."""

    def __init__(self, problems: list[str], hint: str | None = None) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{len(problems)} {noun} in rules:\n{lines}", hint)


class WorkspaceError(LinkauditError):
    """The workspace database is missing a step's results (e.g. link before load)."""


class EnvironmentFault(LinkauditError):
    """The machine, not the data: a folder not writable, a full or read-only disk."""


#: OS errors that are the user's to fix, with what they mean and how to fix them.
ENVIRONMENT_ERRNOS = {
    errno.EACCES: ("permission denied", "make it writable (and readable) for this user"),
    errno.EPERM: ("operation not permitted", "make it writable for this user"),
    errno.ENOSPC: ("the disk is full", "free some space, then run again"),
    errno.EDQUOT: ("the disk quota is exhausted", "free some space, then run again"),
    errno.EROFS: ("the file system is read-only", "choose a folder on a writable disk"),
    errno.EIO: ("input/output error", "check the disk"),
}


def environment_error(exc: OSError, doing: str) -> EnvironmentFault:
    """An OSError said plainly: what we were doing, the cause, the path, the fix."""
    cause, fix = ENVIRONMENT_ERRNOS.get(
        exc.errno or 0, (exc.strerror or type(exc).__name__, "check the path and its folder")
    )
    where = f" ({exc.filename})" if exc.filename else ""
    return EnvironmentFault(f"{doing}: {cause}{where}", hint=fix)


#: Words in DuckDB's messages that mean the disk or the file, not a bug.
_DUCKDB_ENVIRONMENT = (
    ("no space left on device", errno.ENOSPC),
    ("disk quota exceeded", errno.EDQUOT),
    ("read-only file system", errno.EROFS),
    ("permission denied", errno.EACCES),
    ("operation not permitted", errno.EPERM),
)
_DUCKDB_CORRUPT = (
    "not a valid duckdb database file",
    "corrupt database file",
    "does not match stored checksum",
    "failed to read database header",
)


def corrupt_workspace_hint(path: str | None) -> str:
    file = path or "the workspace file"
    return (
        "the workspace database is damaged (a disk fault, or a copy made while it was "
        f"written). Move it aside (`mv {file} {file}.broken`) and run the audit again: the "
        "registries are reloaded and relinked from the input files. Lost with it are the run "
        "history (baselines for new/resolved cases) and the imported field outcomes: import "
        "the returned spreadsheets again with `linkaudit verify import`"
    )


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, what it wraps (xlsxwriter passes the OSError as an argument) and its
    causes, without repeats."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        e = todo.pop()
        if any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        todo += [c for c in (e.__cause__, e.__context__) if c is not None]
    return seen


def environment_fault(
    exc: BaseException, database: str | None = None, doing: str = "cannot write"
) -> LinkauditError | None:
    """The user-fixable fault behind an unexpected exception (disk full, read-only or
    unwritable folder, a damaged workspace file), or None when it looks like a bug."""
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.errno in ENVIRONMENT_ERRNOS:
            return environment_error(cause, doing)
        if type(cause).__module__.split(".")[0].lstrip("_") == "duckdb":
            text = str(cause)
            lower = text.lower()
            first = text.strip().splitlines()[0] if text.strip() else type(cause).__name__
            where = f"{database}: " if database else ""
            for words, code in _DUCKDB_ENVIRONMENT:
                if words in lower:
                    cause_text, fix = ENVIRONMENT_ERRNOS[code]
                    return EnvironmentFault(
                        f"{where}workspace database: {cause_text} ({first})", fix
                    )
            if any(words in lower for words in _DUCKDB_CORRUPT):
                return WorkspaceError(f"{where}{first}", hint=corrupt_workspace_hint(database))
    return None
