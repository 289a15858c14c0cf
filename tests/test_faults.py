"""Environment faults are the user's to fix: exit 2 with the cause and the fix, never exit 3.
And printing never fails a finished run."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import xlsxwriter.exceptions

from conftest import run


def _published(root: Path) -> str:
    return json.loads((root / "out" / "summary.json").read_text(encoding="utf-8"))["run_id"]


def _no_partials(root: Path) -> bool:
    return not [p for p in (root / ".out.sets").iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EACCES, "permission denied"),
        (errno.EROFS, "the file system is read-only"),
    ],
)
def test_output_faults_exit_2_and_keep_the_previous_set(
    runner, sample_ws: Path, monkeypatch, code: int, words: str
) -> None:
    manifest = sample_ws / "linkaudit.yaml"
    assert run(runner, "audit", manifest, "-q").exit_code == 0
    before = _published(sample_ws)
    from linkaudit.audit import run as audit_run

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(code, os.strerror(code), str(sample_ws / "out" / "summary.json"))

    monkeypatch.setattr(audit_run, "write_json", fail)
    result = run(runner, "audit", manifest, "-q", "--force")
    assert result.exit_code == 2, result.output
    assert "cannot write the outputs" in result.output and words in result.output
    assert "internal error" not in result.output and "another linkaudit run" not in result.output
    assert _published(sample_ws) == before
    assert _no_partials(sample_ws)


def test_xlsxwriter_wrapped_os_error_is_an_environment_fault(
    runner, sample_ws: Path, monkeypatch
) -> None:
    from linkaudit.audit import run as audit_run

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        inner = OSError(errno.ENOSPC, "No space left on device")
        raise xlsxwriter.exceptions.FileCreateError(inner)

    monkeypatch.setattr(audit_run, "write_xlsx", fail)
    result = run(runner, "audit", sample_ws / "linkaudit.yaml", "-q")
    assert result.exit_code == 2, result.output
    assert "the disk is full" in result.output


@pytest.mark.parametrize(
    "damage",
    [lambda b: b"garbage" + b[7:], lambda b: os.urandom(100_000)],
    ids=["header-overwritten", "random-bytes"],
)
def test_a_corrupt_workspace_says_how_to_recover(runner, sample_ws: Path, damage) -> None:  # type: ignore[no-untyped-def]
    manifest = sample_ws / "linkaudit.yaml"
    assert run(runner, "audit", manifest, "-q").exit_code == 0
    db = sample_ws / "linkaudit.duckdb"
    db.write_bytes(damage(db.read_bytes()))
    result = run(runner, "audit", manifest, "-q")
    assert result.exit_code == 2, result.output
    out = " ".join(result.output.split())
    assert f"mv {db} {db}.broken" in out
    assert "run history" in out and "verify import" in out  # what is lost, how to get it back
    assert "another linkaudit run" not in out and "in use" not in out


def test_a_locked_workspace_names_the_lock(runner, sample_ws: Path, tmp_path: Path) -> None:
    manifest = sample_ws / "linkaudit.yaml"
    assert run(runner, "audit", manifest, "-q").exit_code == 0
    ready = tmp_path / "ready"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, pathlib, sys, time; c = duckdb.connect(sys.argv[1]); "
            "pathlib.Path(sys.argv[2]).touch(); time.sleep(60)",
            str(sample_ws / "linkaudit.duckdb"),
            str(ready),
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        result = run(runner, "audit", manifest, "-q")
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 2, result.output
    assert "the workspace database is in use" in result.output
    assert "another linkaudit run" in result.output


def test_a_read_only_database_folder_exits_2(runner, sample_ws: Path, monkeypatch) -> None:
    from linkaudit.engines import duckdb as store

    def read_only(path, read_only=False):  # type: ignore[no-untyped-def]
        raise duckdb.IOException(f'IO Error: Cannot open file "{path}": Read-only file system')

    monkeypatch.setattr(store.duckdb, "connect", read_only)
    result = run(runner, "audit", sample_ws / "linkaudit.yaml", "-q")
    assert result.exit_code == 2, result.output
    assert "read-only" in result.output and "another linkaudit run" not in result.output


def test_an_ascii_terminal_never_fails_a_finished_run(sample_ws: Path) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    args = [sys.executable, "-m", "linkaudit", "audit", str(sample_ws / "linkaudit.yaml")]
    table = subprocess.run(args, env=env, capture_output=True, timeout=300)
    assert table.returncode == 0, table.stderr
    assert b"\\u" in table.stdout or b"\\x" in table.stdout  # Chinese titles as escapes
    as_json = subprocess.run([*args, "--json"], env=env, capture_output=True, timeout=300)
    assert as_json.returncode == 0, as_json.stderr
    summary = json.loads(as_json.stdout.decode("ascii"))
    assert summary["registries"]["poverty"]["department"] == "扶贫办"
