"""Unchanged reruns: an audit of the same inputs stands on the run that computed them.

Each recorded run leaves its fingerprint in the workspace (table `rerun_state`, one row, the
latest recorded run's), written after the run is recorded and before its outputs are
published:

- settings: the tool (version, a digest of its own source files, the DuckDB version), the
  manifest as validated (every setting: registries, linkage, parameters, as_of, engine,
  exemptions...), the rule files read (path and bytes), the exemptions file's bytes,
  `split_by` and the baseline choice;
- inputs: the SHA-256 of each registry file, as loaded;
- workspace: the load log, the link and findings caches and the field outcomes imported
  (their count and the latest import time);
- the run's day and every exemption expiry date, so that the exemptions in force can be
  compared without reading the exemptions again;
- outputs: the SHA-256 of every file of the set it published.

A rerun (`audit` without `--force` or `--no-record`, baseline `latest`) is *unchanged* when
the latest recorded run's fingerprint equals today's in every part, no exemption expires
between that run's day and today, and `out/` holds exactly that run's files (and nothing a
killed run left). Then nothing is computed, recorded or written: `out/` is that run's set and
its summary stands. Any doubt — a table or fingerprint missing (a first run, a workspace from
an older version), a file unreadable, a part that differs — is a full run.

The check reads files and the workspace's small state tables only: no registry is parsed, no
frame is built (no polars here), no rule is compiled.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from linkaudit.audit.catalogue import rule_files, rule_paths
from linkaudit.history_sql import run_at_sql, verifications_digest_sql
from linkaudit.state_sql import (
    RERUN_STATE,
    all_rows_sql,
    rerun_state_clear_sql,
    rerun_state_insert_sql,
    rerun_state_read_sql,
    rerun_state_table_sql,
    table_names_sql,
)

if TYPE_CHECKING:
    from linkaudit.config import Manifest
    from linkaudit.engines.duckdb import Workspace

__all__ = [
    "Fingerprint",
    "UnchangedRun",
    "check_unchanged",
    "fails_on",
    "file_digest",
    "fingerprint",
    "output_names",
    "record_fingerprint",
]

#: The workspace's small state tables a run's results depend on, besides the inputs.
_STATE_TABLES = ("load_log", "link_state", "findings_state")
#: Where publishing keeps the sets (report.publish.sets_dir) and its private temp folders'
#: prefix (privacy.TMP_PREFIX): said again here so the check imports neither (both pull in
#: polars); tests/test_rerun_fast.py checks they agree.
_TMP_PREFIX = ".linkaudit-tmp-"


def output_names(split_by: str | None) -> list[str]:
    """The files (and folder) an audit writes into `output:`, in the order it names them."""
    names = ["exceptions.xlsx", "exceptions.csv", "links.csv", "summary.json", "report.html"]
    if split_by:
        names.append("townships/" if split_by == "township" else "villages/")
    return names


def sets_dir(output: Path) -> Path:
    return output.parent / f".{output.name}.sets"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks: the load log's checksum
    (ingest.readers.file_checksum, the same function; the CPU's SHA extensions make it the
    fastest of hashlib's on this kind of machine)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def _tool_digest() -> str:
    """The tool's version, its dependencies' versions and the name, size and modification time
    of each of its own source and data files (an edited checkout is another tool; reading the
    files' bytes would cost more than the rest of the check)."""
    import duckdb

    from linkaudit._version import __version__

    code = hashlib.sha256()
    stack = [Path(__file__).resolve().parents[1]]
    while stack:
        for entry in sorted(os.scandir(stack.pop()), key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    stack.append(Path(entry.path))
            elif entry.name.endswith((".py", ".yaml", ".yml", ".json")):
                st = entry.stat()
                code.update(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return f"{__version__} {code.hexdigest()} duckdb {duckdb.__version__} {_dependency_versions()}"


def _dependency_versions() -> str:
    """The installed version of every runtime dependency (from linkaudit's own metadata): a
    polars, rapidfuzz or pypinyin upgrade can change what a run finds, so it is a full run.
    ~20 ms; without an installed distribution (a bare checkout on sys.path) 'unknown', which
    matches only another run of that same bare checkout."""
    import importlib.metadata as metadata
    import re

    try:
        requires = metadata.requires("linkaudit") or []
    except metadata.PackageNotFoundError:
        return "unknown"
    versions = []
    for req in requires:
        if "extra ==" in req:
            continue
        name = re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
        try:
            versions.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name}=?")
    return ",".join(sorted(versions))


@dataclass(frozen=True)
class Fingerprint:
    """What a run's results are computed from, besides its inputs and the workspace state:
    each part a digest, named so that a changed part can be said."""

    settings: dict[str, str] | None  # None: a file could not be read (then no fast path)
    day: dt.date
    expiries: tuple[str, ...]  # every exemption expiry date (ISO), sorted


def fingerprint(
    manifest: Manifest,
    rules_override: list[Path] | None,
    split_by: str | None,
    baseline: str | None,
    day: dt.date,
    expiries: tuple[str, ...] = (),
) -> Fingerprint:
    """The settings part of a run's fingerprint. A run computes it before it reads its rules
    and exemptions (a file edited meanwhile then makes the next run a full one, never the
    other way round)."""
    paths = rule_paths(manifest, rules_override)
    try:
        settings: dict[str, str] | None = {
            "tool": _tool_digest(),
            "manifest": _digest(manifest.model_dump(mode="json")),
            "rules": _digest(
                [[str(p) for p in paths], [[str(f), file_digest(f)] for f in rule_files(paths)]]
            ),
            "exemptions_file": (
                file_digest(manifest.exemptions_file) if manifest.exemptions_file else ""
            ),
            "split_by": split_by or "",
            "baseline": baseline or "none",
        }
    except OSError:
        settings = None
    return Fingerprint(settings, day, expiries)


def _tables(ws: Workspace) -> set[str]:
    return {str(r[0]) for r in ws.rows(table_names_sql())}


def _workspace_state(ws: Workspace, tables: set[str] | None = None) -> str | None:
    """A digest of the state tables and of the outcomes imported; None when the history is
    missing (nothing to compare)."""
    tables = _tables(ws) if tables is None else tables
    if "verifications" not in tables:
        return None
    state: dict[str, Any] = {
        t: ws.rows(all_rows_sql(t)) if t in tables else None for t in _STATE_TABLES
    }
    state["verifications"] = ws.row(verifications_digest_sql())
    return _digest(state)


def _output_digests(folder: Path) -> dict[str, str] | None:
    """Every file (and folder) under `folder` with its SHA-256; None if it cannot be read."""
    try:
        if not folder.is_dir():
            return None
        found: dict[str, str] = {}
        for p in sorted(folder.rglob("*")):
            name = p.relative_to(folder).as_posix()
            if p.is_symlink():
                found[name] = "symlink:" + os.readlink(p)
            elif p.is_dir():
                found[name + "/"] = "folder"
            else:
                found[name] = file_digest(p)
        return found
    except OSError:
        return None


def record_fingerprint(
    ws: Workspace,
    summary: dict[str, Any],
    fp: Fingerprint,
    staged: Path,
) -> None:
    """Record a run's fingerprint, its outputs being those staged in `staged` (called after
    the run is recorded, before its outputs are published). What cannot be fingerprinted is
    not recorded: the next run is then a full one."""
    outputs = _output_digests(staged)
    workspace = _workspace_state(ws)
    complete = fp.settings is not None and outputs is not None and workspace is not None
    with ws.transaction():
        ws.run(rerun_state_table_sql())
        ws.run(rerun_state_clear_sql())
        if complete:
            ws.run(
                rerun_state_insert_sql(),
                [
                    summary["run_id"],
                    summary["started_at"],
                    json.dumps(fp.settings, sort_keys=True),
                    json.dumps(summary["input_checksums"], sort_keys=True),
                    workspace,
                    fp.day,
                    json.dumps(list(fp.expiries)),
                    json.dumps(outputs, sort_keys=True, ensure_ascii=False),
                ],
            )


def fails_on(counts: dict[str, int], fail_on: str) -> bool:
    """Whether a nightly `--fail-on` condition holds: new (or reopened) cases, or any."""
    if fail_on == "new":
        return counts.get("new", 0) + counts.get("reopened", 0) > 0
    if fail_on == "any":
        return counts.get("exceptions", 0) > 0
    return False


@dataclass(frozen=True)
class UnchangedRun:
    """A rerun that found nothing changed since `run_id`: out/ holds that run's outputs and
    `summary` is that run's (read from its summary.json, checked by its checksum)."""

    run_id: str
    started_at: str
    summary: dict[str, Any]
    outputs: dict[str, str]

    def fails(self, fail_on: str) -> bool:
        """`--fail-on` as a full rerun would answer it: nothing is new or reopened since the
        run it stands on (a nightly `--fail-on new` alerts once, not every night the data
        stays the same), while `any` holds as long as that run's cases do."""
        counts = dict(self.summary.get("cases", {}))
        counts["new"] = counts["reopened"] = 0
        return fails_on(counts, fail_on)


def check_unchanged(
    manifest: Manifest,
    rules_override: list[Path] | None = None,
    baseline: str | None = "latest",
    force: bool = False,
    record: bool = True,
    split_by: str | None = None,
    today: dt.date | None = None,
) -> tuple[UnchangedRun | None, str]:
    """The run this audit would repeat, if nothing changed since it (see the module's
    docstring), or None and why a full run is needed ('' when it is not)."""
    import duckdb

    from linkaudit.engines.duckdb import Workspace
    from linkaudit.errors import LinkauditError

    if force:
        return None, "--force"
    if not record:
        return None, "a trial run (--no-record)"
    if baseline != "latest":
        return None, f"baseline {baseline or 'none'}"
    manifest.require_as_of()  # the error a full run would give
    if not manifest.database.is_file():
        return None, "no workspace yet"
    today = today or dt.datetime.now(dt.UTC).date()
    current = fingerprint(manifest, rules_override, split_by, baseline, today)
    # The inputs are hashed while the workspace opens (hashlib lets go of the GIL); the
    # outputs only once it is open: the workspace lock keeps other runs from publishing.
    with ThreadPoolExecutor(max_workers=1) as pool:
        inputs = pool.submit(_input_digests, manifest)
        try:
            with Workspace(manifest.database, read_only=True) as ws:
                return _compare(ws, manifest, current, split_by, inputs)
        except (LinkauditError, duckdb.Error) as exc:
            # e.g. a log to replay after a crash, or a table of an older layout: the full
            # run opens the workspace for writing, and says what is wrong if anything is.
            return None, f"the workspace cannot be read as it is ({type(exc).__name__})"


def _recorded(ws: Workspace, tables: set[str]) -> tuple[Any, ...] | None:
    """The latest recorded run's fingerprint row, if it left one."""
    if not {"runs", RERUN_STATE} <= tables:
        return None
    latest = ws.value(run_at_sql(0, False))
    if latest is None:
        return None
    return ws.row(rerun_state_read_sql(), [latest])


def _compare(
    ws: Workspace,
    manifest: Manifest,
    current: Fingerprint,
    split_by: str | None,
    inputs_now: Future[dict[str, str | None]],
) -> tuple[UnchangedRun | None, str]:
    tables = _tables(ws)
    row = _recorded(ws, tables)
    if row is None:
        return None, "the latest run left no fingerprint (a first run, or an older workspace)"
    run_id, started_at, settings, inputs, workspace, day, expiries, outputs = row
    if current.settings is None:
        return None, "a rule or exemptions file cannot be read"
    recorded = json.loads(settings)
    keys = recorded.keys() | current.settings.keys()
    changed = sorted(k for k in keys if recorded.get(k) != current.settings.get(k))
    if changed:
        return None, f"changed since run {run_id}: {', '.join(changed)}"
    if _workspace_state(ws, tables) != workspace:
        return None, f"the workspace changed since run {run_id} (a load, link or outcome import)"
    if _expiry_between(json.loads(expiries), day, current.day):
        return None, f"an exemption expires between {day} and {current.day}"
    recorded_inputs = json.loads(inputs)
    digests = inputs_now.result()
    changed = sorted(
        n
        for n in recorded_inputs.keys() | digests.keys()
        if recorded_inputs.get(n) != digests.get(n) or digests.get(n) is None
    )
    if changed:
        return None, f"inputs changed since run {run_id}: {', '.join(changed)}"
    if _stray_sets(manifest.output, run_id):
        return None, "a killed run left files to clean up"
    if _output_digests(manifest.output) != json.loads(outputs):
        return None, f"the outputs in {manifest.output} are not run {run_id}'s"
    try:
        summary = json.loads((manifest.output / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, "summary.json cannot be read"
    if not isinstance(summary, dict) or summary.get("run_id") != run_id:
        return None, f"summary.json is not run {run_id}'s"
    paths = {n: str(manifest.output / n) for n in output_names(split_by)}
    return UnchangedRun(str(run_id), str(started_at), summary, paths), ""


def _expiry_between(expiries: list[str], day: dt.date, today: dt.date) -> bool:
    """Whether the exemptions in force differ between the two days: an exemption is in force
    through its expiry date, so the set changes when an expiry falls in [earlier, later)."""
    earlier, later = sorted((day, today))
    return any(earlier <= dt.date.fromisoformat(e) < later for e in expiries)


def _input_digests(manifest: Manifest) -> dict[str, str | None]:
    """Each registry file's SHA-256 (None: it cannot be read)."""
    digests: dict[str, str | None] = {}
    for name, reg in manifest.registries.items():
        try:
            digests[name] = file_digest(reg.path)
        except OSError:
            digests[name] = None
    return digests


def _stray_sets(output: Path, run_id: str) -> bool:
    """Whether a killed run left a staging set or a private temp folder (a full run's
    publishing removes them; the fast path writes nothing, so it leaves that to a full run)."""
    root = sets_dir(output)
    try:
        if root.exists() and any(e.name != run_id for e in root.iterdir()):
            return True
        return any(output.parent.glob(f"{_TMP_PREFIX}*"))
    except OSError:
        return True
