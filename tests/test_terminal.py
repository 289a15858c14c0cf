"""The audit's closing summary and progress on a terminal: rule ids whole at 80 columns, rows
read / quarantined / linked per registry, phase progress on stderr unless --quiet."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from linkaudit import load_manifest
from linkaudit.audit.run import run_audit
from linkaudit.cli import audit as audit_cli
from linkaudit.cli import progress as progress_mod

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "mashan"


@pytest.fixture(scope="module")
def result(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("term") / "mashan"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    return run_audit(load_manifest(root / "linkaudit.yaml"))


def _render(result, monkeypatch, width: int) -> str:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    monkeypatch.setattr(audit_cli, "console", Console(file=out, width=width, highlight=False))
    monkeypatch.setattr(audit_cli, "err_console", Console(file=io.StringIO(), width=width))
    audit_cli.render_audit(result)
    return out.getvalue()


def test_rule_ids_are_never_cut_at_80_columns(result, monkeypatch) -> None:
    text = _render(result, monkeypatch, 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    rule_lines = [line for line in text.splitlines() if line.startswith("│ ")]
    for r in result.rules.results:
        assert any(f"│ {r.rule_id} " in line for line in rule_lines), r.rule_id
    assert "…" not in text


def test_closing_summary_has_rows_read_quarantined_linked_per_registry(result, monkeypatch) -> None:
    text = _render(result, monkeypatch, 120)
    assert "rows read" in text and "quarantined" in text and "linked" in text
    for name, r in result.summary["registries"].items():
        line = next(line for line in text.splitlines() if line.startswith(f"│ {name} "))
        assert f"{r['rows_read']:,}" in line
        if r["linked"] is not None:
            assert f" {r['linked']:,} " in line


def _progress_output(monkeypatch, quiet: bool, terminal: bool) -> str:  # type: ignore[no-untyped-def]
    err = io.StringIO()
    console = Console(file=err, force_terminal=terminal, width=100)
    monkeypatch.setattr(progress_mod, "err_console", console)
    with progress_mod.step_progress("audit", quiet) as update:
        for step, name, done, total in [
            ("loading", "poverty", 0, 2),
            ("loading", "vehicles", 1, 2),
            ("done", "", 2, 2),
            ("blocking", "vehicles", 0, 3),
            ("scoring", "vehicles", 2, 3),
            ("applying rules", "", 0, 1),
            ("writing outputs", "", 0, 1),
        ]:
            update(name, step, done, total)  # type: ignore[operator]
    return err.getvalue()


def test_plain_phase_lines_when_stderr_is_not_a_terminal(monkeypatch) -> None:
    lines = _progress_output(monkeypatch, quiet=False, terminal=False).splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "audit: 读入 load",
        "audit: 关联 link",
        "audit: 规则 rules",
        "audit: 输出 outputs",
    ]
    assert "previous phase" in lines[1]


def test_a_bar_per_phase_on_a_terminal_and_quiet_silences(monkeypatch) -> None:
    shown = _progress_output(monkeypatch, quiet=False, terminal=True)
    for phase in ("读入 load", "关联 link", "规则 rules", "输出 outputs"):
        assert f"audit: {phase}" in shown
    assert _progress_output(monkeypatch, quiet=True, terminal=True) == ""
    assert _progress_output(monkeypatch, quiet=True, terminal=False) == ""


def test_json_to_a_file_still_shows_progress_on_stderr(tmp_path) -> None:
    import json
    import subprocess
    import sys

    root = tmp_path / "m"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    out = tmp_path / "summary.json"
    with out.open("w") as fh:
        done = subprocess.run(
            [sys.executable, "-m", "linkaudit", "audit", str(root), "--json"],
            stdout=fh,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["run_id"]
    assert "audit: 读入 load" in done.stderr and "audit: 输出 outputs" in done.stderr
