"""Unchanged reruns: an audit of the same inputs, settings, rules, exemptions and outcomes as
the latest recorded run stands on that run (nothing computed, recorded or written); any change
is a full run."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from conftest import POVERTY_REG, POVERTY_ROWS, run, set_manifest, write_csv, write_manifest
from linkaudit import load_manifest
from linkaudit.audit import rerun
from linkaudit.audit.catalogue import shipped_rules_dir
from linkaudit.audit.rerun import check_unchanged
from linkaudit.audit.run import run_audit

HEADER = ["人员编号", "户编号", "姓名", "证件号码", "人均纯收入(元)", "脱贫年度"]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A one-registry workspace (three invalid IDs: three cases) with its own rule file."""
    root = tmp_path / "county"
    (root / "rules").mkdir(parents=True)
    shutil.copy(shipped_rules_dir() / "invalid_id.yaml", root / "rules" / "invalid_id.yaml")
    write_csv(root / "poverty.csv", HEADER, POVERTY_ROWS, "gbk")
    return write_manifest(root, {"poverty": dict(POVERTY_REG)}, rules=["rules"])


def _runs(manifest: Path) -> list[str]:
    con = duckdb.connect(str(manifest.parent / "ws.duckdb"), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY started_at").fetchall()]
    finally:
        con.close()


def _snapshot(manifest: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every published file: bytes, inode and modification time (a rewrite changes them)."""
    out = manifest.parent / "out"
    return {
        p.relative_to(out).as_posix(): (p.read_bytes(), p.stat().st_ino, p.stat().st_mtime_ns)
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


def _audit(runner, manifest: Path, *args: str):  # type: ignore[no-untyped-def]
    return run(runner, "audit", manifest, "-q", *args)


def _first(runner, manifest: Path, *args: str) -> str:  # type: ignore[no-untyped-def]
    result = _audit(runner, manifest, *args)
    assert result.exit_code == 0, result.output
    assert "unchanged since" not in result.stderr
    return _runs(manifest)[-1]


def _assert_full(runner, manifest: Path, before: list[str], *args: str) -> None:  # type: ignore[no-untyped-def]
    result = _audit(runner, manifest, *args)
    assert result.exit_code == 0, result.output
    assert "unchanged since" not in result.stderr
    after = _runs(manifest)
    assert len(after) == len(before) + 1, "a full run records a new run"
    summary = json.loads((manifest.parent / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["run_id"] == after[-1]


def test_unchanged_rerun_writes_nothing_and_prints_that_runs_summary(runner, ws: Path) -> None:
    first = _first(runner, ws)
    before = _snapshot(ws)
    sets = sorted(os.listdir(ws.parent / ".out.sets"))
    result = _audit(runner, ws)
    assert result.exit_code == 0, result.output
    summary = json.loads((ws.parent / "out" / "summary.json").read_text(encoding="utf-8"))
    assert f"unchanged since run {first} ({summary['started_at']})" in result.stderr
    assert "outputs in out/ are that run's" in result.stderr
    assert f"Audit {first}: flags by rule" in result.stdout
    assert "│ invalid_id " in result.stdout and "kept " in result.stdout
    assert _runs(ws) == [first], "no new run in the history"
    assert _snapshot(ws) == before, "every output byte-identical, none rewritten"
    assert sorted(os.listdir(ws.parent / ".out.sets")) == sets
    # --json: that run's summary, and which run it is
    as_json = _audit(runner, ws, "--json")
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == {**summary, "unchanged_since": first}
    assert _snapshot(ws) == before and _runs(ws) == [first]


def test_fail_on_is_evaluated_on_that_runs_summary(runner, ws: Path) -> None:
    first = _audit(runner, ws, "--fail-on", "new")
    assert first.exit_code == 1  # three new cases
    # Unchanged: nothing is new since the run it stands on (as a full rerun would say), while
    # that run's cases still stand for `any`.
    again = _audit(runner, ws, "--fail-on", "new")
    assert again.exit_code == 0 and "unchanged since run" in again.stderr
    assert _audit(runner, ws, "--fail-on", "any").exit_code == 1
    assert _audit(runner, ws, "--fail-on", "none").exit_code == 0
    assert len(_runs(ws)) == 1
    # a full rerun compares with the first run: the same answers
    forced = _audit(runner, ws, "--fail-on", "new", "--force")
    assert forced.exit_code == 0 and "unchanged since" not in forced.stderr
    assert len(_runs(ws)) == 2
    assert _audit(runner, ws, "--fail-on", "any", "--force").exit_code == 1


def test_input_file_edited_by_one_byte(runner, ws: Path) -> None:
    before = [_first(runner, ws)]
    path = ws.parent / "poverty.csv"
    data = bytearray(path.read_bytes())
    data[-2] = ord("5") if data[-2] != ord("5") else ord("6")  # the last income digit
    path.write_bytes(bytes(data))
    same, why = check_unchanged(load_manifest(ws))
    assert same is None and why == f"inputs changed since run {before[0]}: poverty"
    _assert_full(runner, ws, before)


def test_rule_edited(runner, ws: Path) -> None:
    before = [_first(runner, ws)]
    rule = ws.parent / "rules" / "invalid_id.yaml"
    rule.write_text(
        rule.read_text(encoding="utf-8").replace("severity: data_quality", "severity: risk"),
        encoding="utf-8",
    )
    same, why = check_unchanged(load_manifest(ws))
    assert same is None and why == f"changed since run {before[0]}: rules"
    _assert_full(runner, ws, before)


def test_parameter_changed(runner, ws: Path) -> None:
    before = [_first(runner, ws)]
    set_manifest(ws.parent, parameters={"county_seat": "白山镇"})
    same, why = check_unchanged(load_manifest(ws))
    assert same is None and why == f"changed since run {before[0]}: manifest"
    _assert_full(runner, ws, before)


def test_as_of_changed(runner, ws: Path) -> None:
    before = [_first(runner, ws)]
    _assert_full(runner, ws, before, "--as-of", "2016-06-30")
    set_manifest(ws.parent, as_of=dt.date(2016, 12, 31))
    _assert_full(runner, ws, _runs(ws))


@pytest.mark.parametrize("damage", ["deleted", "edited", "added"])
def test_output_deleted_edited_or_added(runner, ws: Path, damage: str) -> None:
    before = [_first(runner, ws)]
    out = ws.parent / "out"
    if damage == "deleted":
        (out / "report.html").unlink()
    elif damage == "edited":
        with (out / "exceptions.csv").open("ab") as fh:
            fh.write(b"x")
    else:
        (out / "notes.txt").write_text("mine", encoding="utf-8")
    same, why = check_unchanged(load_manifest(ws))
    assert same is None and why == f"the outputs in {out} are not run {before[0]}'s"
    _assert_full(runner, ws, before)
    assert (out / "report.html").is_file()


def test_outcome_imported(runner, ws: Path, tmp_path: Path) -> None:
    before = [_first(runner, ws)]
    with (ws.parent / "out" / "exceptions.csv").open(encoding="utf-8-sig") as fh:
        case = next(csv.DictReader(fh))
    returned = tmp_path / "returned.csv"
    with returned.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["run_id", "case_id", "rule_id", "outcome"])
        writer.writeheader()
        writer.writerow(
            {k: case[k] for k in ("run_id", "case_id", "rule_id")} | {"outcome": "confirmed"}
        )
    imported = run(runner, "verify", "import", returned, "-m", ws)
    assert imported.exit_code == 0, imported.output
    same, why = check_unchanged(load_manifest(ws))
    assert same is None and why.startswith("the workspace changed since run")
    _assert_full(runner, ws, before)


def test_exemption_expiring_between_the_two_days(ws: Path) -> None:
    day = dt.date(2026, 3, 1)
    set_manifest(
        ws.parent,
        exemptions=[
            {"person": "P001", "rule": "*", "reason": "policy", "expires": "2026-03-02"},
            {"person": "P003", "rule": "*", "reason": "policy", "expires": "2027-01-01"},
        ],
    )
    first = run_audit(load_manifest(ws), today=day)
    assert first.history.counts["exempted"] == 2
    manifest = load_manifest(ws)
    # still in force on its expiry date: the same exemptions, the same run
    same, why = check_unchanged(manifest, today=dt.date(2026, 3, 2))
    assert same is not None and same.run_id == first.run_id, why
    # the day after, P001's exemption has lapsed: a full run
    same, why = check_unchanged(manifest, today=dt.date(2026, 3, 3))
    assert same is None and why == "an exemption expires between 2026-03-01 and 2026-03-03"
    second = run_audit(manifest, today=dt.date(2026, 3, 3))
    assert second.history.counts["exempted"] == 1
    assert check_unchanged(manifest, today=dt.date(2026, 3, 4))[0] is not None


def test_force_split_by_and_baseline_choice(runner, ws: Path) -> None:
    before = [_first(runner, ws)]
    _assert_full(runner, ws, before, "--force")
    _assert_full(runner, ws, _runs(ws), "--split-by", "township")
    assert (ws.parent / "out" / "townships").is_dir()
    # the same split again: unchanged
    again = _audit(runner, ws, "--split-by", "township")
    assert "unchanged since run" in again.stderr and len(_runs(ws)) == 3
    # without it the outputs differ (no townships/): a full run
    _assert_full(runner, ws, _runs(ws))
    _assert_full(runner, ws, _runs(ws), "--baseline", "none")
    # a run against no baseline is not what a 'latest' rerun would repeat
    _assert_full(runner, ws, _runs(ws))


def test_no_record_is_a_full_run_and_so_is_the_next(runner, ws: Path) -> None:
    before = [_first(runner, ws)]
    trial = _audit(runner, ws, "--no-record")
    assert trial.exit_code == 0 and "unchanged since" not in trial.stderr
    assert _runs(ws) == before
    summary = json.loads((ws.parent / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["run_id"] != before[0] and summary["recorded"] is False
    # out/ now holds the trial's outputs, not the latest recorded run's
    _assert_full(runner, ws, before)


def test_any_doubt_is_a_full_run(runner, ws: Path) -> None:
    before = [_first(runner, ws)]
    manifest = load_manifest(ws)
    # a killed run's staging folder left behind: a full run cleans it
    stray = ws.parent / ".out.sets" / "20000101T000000-abcdef.xyz.partial"
    stray.mkdir()
    assert check_unchanged(manifest)[1] == "a killed run left files to clean up"
    _assert_full(runner, ws, before)
    assert not stray.exists()
    # a workspace from before fingerprints (no rerun_state table)
    con = duckdb.connect(str(ws.parent / "ws.duckdb"))
    con.execute("DROP TABLE rerun_state")
    con.close()
    same, why = check_unchanged(manifest)
    assert same is None and why.startswith("the latest run left no fingerprint")
    _assert_full(runner, ws, _runs(ws))
    # an input that cannot be read
    assert check_unchanged(manifest)[0] is not None
    (ws.parent / "poverty.csv").rename(ws.parent / "moved.csv")
    assert check_unchanged(manifest)[1].startswith("inputs changed since run")


def test_the_check_agrees_with_the_modules_it_does_not_import(tmp_path: Path) -> None:
    from linkaudit.ingest.readers import file_checksum
    from linkaudit.privacy import TMP_PREFIX
    from linkaudit.report.publish import sets_dir

    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom((1 << 22) + 17))  # more than one chunk
    assert rerun.file_digest(path) == file_checksum(path)
    assert rerun.sets_dir(tmp_path / "out") == sets_dir(tmp_path / "out")
    assert rerun._TMP_PREFIX == TMP_PREFIX


def test_unchanged_rerun_loads_no_output_writers(runner, ws: Path) -> None:
    _first(runner, ws)
    probe = (
        "import sys\n"
        "from linkaudit.cli import app\n"
        "try:\n"
        f"    app(['audit', {str(ws)!r}, '-q'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = ['xlsxwriter', 'linkaudit.audit.run', 'linkaudit.report.workbook',\n"
        "         'linkaudit.report.html', 'linkaudit.link.engine', 'linkaudit.load', 'sqlglot']\n"
        "print('LOADED', [m for m in heavy if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert "unchanged since run" in done.stderr, done.stderr
    assert "LOADED []" in done.stdout, done.stdout


def test_recorded_fingerprint_names_every_output(runner, ws: Path) -> None:
    first = _first(runner, ws)
    con = duckdb.connect(str(ws.parent / "ws.duckdb"), read_only=True)
    try:
        run_id, outputs, settings = con.execute(
            "SELECT run_id, outputs, settings FROM rerun_state"
        ).fetchone()
    finally:
        con.close()
    assert run_id == first
    assert sorted(json.loads(outputs)) == sorted(_snapshot(ws))
    assert sorted(json.loads(settings)) == [
        "baseline",
        "exemptions_file",
        "manifest",
        "rules",
        "split_by",
        "tool",
    ]


def test_a_workspace_that_cannot_be_opened_for_reading_is_a_full_run(runner, ws: Path) -> None:
    _first(runner, ws)
    manifest = load_manifest(ws)
    assert check_unchanged(manifest)[0] is not None
    writer = duckdb.connect(str(ws.parent / "ws.duckdb"))  # held open for writing
    try:
        same, why = check_unchanged(manifest)
    finally:
        writer.close()
    assert same is None and why.startswith("the workspace cannot be read as it is")


def test_a_dependency_upgrade_is_another_tool(monkeypatch) -> None:
    """The fingerprint names every runtime dependency's version, so an upgraded polars (or
    rapidfuzz, pypinyin...) makes the next audit a full run."""
    import importlib.metadata as metadata

    from linkaudit.audit import rerun

    before = rerun._dependency_versions()
    assert "polars=" in before and "rapidfuzz=" in before and "pypinyin=" in before
    real = metadata.version
    monkeypatch.setattr(
        metadata, "version", lambda name: "99.0" if name == "polars" else real(name)
    )
    after = rerun._dependency_versions()
    assert after != before and "polars=99.0" in after
