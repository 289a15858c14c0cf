"""The CLI surface: every command has help and is documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import run
from linkaudit.cli import app

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    ("load",),
    ("link",),
    ("evaluate",),
    ("audit",),
    ("explain",),
    ("rules", "check"),
    ("sample", "mashan"),
    ("diff",),
    ("verify", "import"),
    ("verify", "status"),
    ("inspect",),
    ("init",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_has_help(runner, command: tuple[str, ...]) -> None:
    result = run(runner, *command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # A docstring's first line: more than the usage line.
    assert len(result.output.strip().splitlines()) > 3


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_is_in_readme(command: tuple[str, ...]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"linkaudit {' '.join(command)}" in readme


def test_registered_commands_are_all_listed() -> None:
    import typer.main

    group = typer.main.get_command(app)
    names = set(group.commands)  # type: ignore[attr-defined]
    assert names == {c[0] for c in COMMANDS}


def test_readme_first_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    commands = [line for line in blocks[0].splitlines() if line and not line.startswith("#")]
    assert commands[0].startswith("pip install -c constraints.txt . && linkaudit")
    assert commands[1] == "pip install -c constraints.txt '.[test]' && pytest"
    # CI runs exactly the README's test command, as the line after its marker comment.
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[ci.index("# The README's test command, exactly:") + 1] == commands[1]


def test_version(runner) -> None:
    from linkaudit import __version__

    result = run(runner, "--version")
    assert result.exit_code == 0 and result.output.strip() == __version__


def test_unknown_command_is_usage_error(runner) -> None:
    result = run(runner, "frobnicate")
    assert result.exit_code == 2


def test_every_command_finds_the_manifest_in_a_folder_or_here(
    runner, sample_ws: Path, monkeypatch
) -> None:
    assert run(runner, "audit", sample_ws, "-q").exit_code == 0  # a folder, not IsADirectoryError
    monkeypatch.chdir(sample_ws)
    assert run(runner, "load", "-q").exit_code == 0  # nothing: ./linkaudit.yaml
    explained = run(runner, "explain", "P00000012")
    assert explained.exit_code == 0, explained.output
    assert "explain P00000012" in explained.output
    assert run(runner, "explain", ".", "P00000012").exit_code == 0
    assert run(runner, "verify", "status", "-m", ".").exit_code == 0
    monkeypatch.chdir(sample_ws / "data")
    missing = run(runner, "audit", "-q")
    assert missing.exit_code == 2
    assert "no linkaudit.yaml in" in missing.output


def test_sample_refuses_to_overwrite_a_folder(runner, tmp_path: Path) -> None:
    out = tmp_path / "county"
    out.mkdir()
    mine = out / "linkaudit.yaml"
    mine.write_text("# my own manifest\n", encoding="utf-8")
    result = run(runner, "sample", "mashan", "--out", out, "--scale", "0.02")
    assert result.exit_code == 2
    assert "the folder is not empty" in result.output and "--force" in result.output
    assert mine.read_text(encoding="utf-8") == "# my own manifest\n"
    forced = run(runner, "sample", "mashan", "--out", out, "--scale", "0.02", "--force")
    assert forced.exit_code == 0, forced.output
    assert mine.read_text(encoding="utf-8") != "# my own manifest\n"


def test_help_and_version_load_no_engine() -> None:
    # `--help` and `--version` answered in ~1-2 s when every command module imported polars,
    # DuckDB and pypinyin's phrase dictionary at start-up; they are imported where used.
    import subprocess
    import sys

    heavy = ("polars", "duckdb", "pypinyin", "sqlglot", "pyarrow", "numpy", "xlsxwriter")
    probe = (
        "import sys, linkaudit.cli, linkaudit; linkaudit.__version__; "
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == ""
    import linkaudit

    assert linkaudit.run_audit.__module__ == "linkaudit.audit.run"  # the public API still works
