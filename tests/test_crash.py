"""Crash safety: `kill -9` at every stage boundary of an audit leaves the previous state or the
new one — history holds only complete runs, out/ is one complete set of one recorded run, no
temp file survives the next run, and the next run gives the clean counts."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb

STAGES = [
    "load_half",
    "loaded",
    "link_half",
    "linked",
    "rules_half",
    "rules",
    "outputs_half",
    "outputs_staged",
    "record_half",
    "recorded",
    "published",
]
OUTPUTS = ("exceptions.xlsx", "exceptions.csv", "links.csv", "summary.json")


def _audit(root: Path, tmpdir: Path, *args: str, fault: str | None = None):  # type: ignore[no-untyped-def]
    env = {**os.environ, "TMPDIR": str(tmpdir), "LINKAUDIT_FAULT_AT": fault or ""}
    return subprocess.run(
        [sys.executable, "-m", "linkaudit", "audit", str(root / "linkaudit.yaml"), "-q", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _history(root: Path) -> tuple[dict[str, dict], dict[str, int]]:
    con = duckdb.connect(str(root / "linkaudit.duckdb"), read_only=True)
    try:
        runs = {
            r: json.loads(c) for r, c in con.execute("SELECT run_id, counts FROM runs").fetchall()
        }
        cases = dict(
            con.execute("SELECT run_id, count(*) FROM run_cases GROUP BY run_id").fetchall()
        )
    finally:
        con.close()
    return runs, cases


def _assert_consistent(root: Path) -> str:
    """History has only complete runs; out/ is one complete set of a recorded run. Returns
    the published run id."""
    runs, cases = _history(root)
    for run_id, counts in runs.items():
        expected = counts["exceptions"] + counts["suppressed_cleared"]
        assert cases.get(run_id, 0) == expected, f"run {run_id} recorded without all its cases"
    assert set(cases) <= set(runs), "cases of a run that is not recorded"
    out = root / "out"
    assert all((out / name).is_file() for name in OUTPUTS), sorted(os.listdir(out))
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    run_id = summary["run_id"]
    assert run_id in runs, "out/ shows a run the history does not hold"
    with (out / "exceptions.csv").open(encoding="utf-8-sig") as fh:
        csv_runs = {row["run_id"] for row in csv.DictReader(fh)}
    assert csv_runs == {run_id}, "out/ mixes files of two runs"
    return str(run_id)


def test_kill_at_every_stage_boundary(sample_ws: Path, tmp_path: Path) -> None:
    # One workspace walks every stage in turn, so each kill meets what the last one left.
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    first = _audit(sample_ws, tmpdir)
    assert first.returncode == 0, first.stderr
    clean = json.loads((sample_ws / "out" / "summary.json").read_text(encoding="utf-8"))
    published = _assert_consistent(sample_ws)

    for stage in STAGES:
        killed = _audit(sample_ws, tmpdir, "--force", fault=stage)
        assert killed.returncode == -signal.SIGKILL, (stage, killed.returncode, killed.stderr)
        now = _assert_consistent(sample_ws)
        runs, _ = _history(sample_ws)
        # Before 'recorded' the previous set stays; from 'published' on it is the new one.
        if stage == "published":
            assert now != published
        elif stage != "recorded":
            assert now == published, stage
        published = now

    # The next run cleans up after the killed ones and gives the clean counts.
    last = _audit(sample_ws, tmpdir, "--json")
    assert last.returncode == 0, last.stderr
    summary = json.loads(last.stdout)
    assert summary["rules"] == clean["rules"]
    assert (
        summary["ineligible_distinct_cross_department"]
        == clean["ineligible_distinct_cross_department"]
    )
    assert summary["cases"]["new"] == 0 and summary["cases"]["resolved"] == 0
    _assert_consistent(sample_ws)
    sets = sample_ws / ".out.sets"
    assert [p.name for p in sets.iterdir()] == [summary["run_id"]], "stale sets left"
    assert list(tmpdir.iterdir()) == [], "temp files left in TMPDIR"
    leftovers = [
        p for p in sample_ws.rglob("*") if p.name.endswith((".tmp", ".partial")) or "tmp-" in p.name
    ]
    assert leftovers == []
