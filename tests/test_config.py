"""The manifest: validated up front, every problem reported together with its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import POVERTY_REG, run, write_manifest
from linkaudit.config import load_manifest
from linkaudit.errors import ManifestError


def test_paths_resolve_relative_to_manifest(tmp_path: Path) -> None:
    manifest = load_manifest(write_manifest(tmp_path, {"poverty": dict(POVERTY_REG)}))
    assert manifest.database == tmp_path / "ws.duckdb"
    assert manifest.registries["poverty"].path == tmp_path / "poverty.csv"
    assert manifest.beneficiaries.name == "poverty"
    assert manifest.linkage.match_threshold == 0.95


def test_all_problems_reported_together(tmp_path: Path) -> None:
    registries = {
        "poverty": {**POVERTY_REG, "role": "source", "colour": "red"},
        "车辆": {"path": "v.dat", "fields": {"plate": "号牌"}},
    }
    path = write_manifest(tmp_path, registries, linkage={"match_threshold": 2})
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    problems = info.value.problems
    assert any(p.startswith("registries.poverty.colour: unknown key") for p in problems)
    assert any(p.startswith("linkage.match_threshold:") for p in problems)
    # Type errors come first; structural checks run once the types are right.
    assert str(path) in str(info.value)


def test_structural_problems_collected(tmp_path: Path) -> None:
    registries = {
        "poverty": {**POVERTY_REG, "role": "source"},
        "车辆": {"path": "v.dat", "fields": {"plate": "号牌"}},
    }
    with pytest.raises(ManifestError) as info:
        load_manifest(write_manifest(tmp_path, registries))
    text = "\n".join(info.value.problems)
    assert "exactly one registry must have `role: beneficiaries` (found 0)" in text
    assert "registries.车辆: registry names must be ASCII identifiers" in text
    assert "registries.车辆.path: cannot tell the format from suffix '.dat'" in text
    assert "registries.车辆.fields: needs `name` or `id_number`" in text
    assert "registries.poverty.household: only the beneficiaries registry" in text
    assert len(info.value.problems) == 5


def test_cli_reports_manifest_problems_with_exit_2(runner, tmp_path: Path) -> None:
    path = tmp_path / "linkaudit.yaml"
    path.write_text("registries:\n  poverty: [unclosed\n", encoding="utf-8")
    result = run(runner, "load", path)
    assert result.exit_code == 2
    assert f"{path}: 1 problem in manifest" in result.output
    assert "invalid YAML" in result.output and "line" in result.output


def test_missing_manifest(runner, tmp_path: Path) -> None:
    result = run(runner, "load", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert "nope.yaml: 1 problem in manifest" in result.output and "file not found" in result.output


def test_output_may_not_overwrite_an_input(tmp_path: Path) -> None:
    reg = {**POVERTY_REG, "path": "data/links.csv"}
    path = write_manifest(tmp_path, {"poverty": reg}, output="data/")
    with pytest.raises(ManifestError, match="would overwrite registries.poverty.path"):
        load_manifest(path)


def test_delimiter_must_be_one_character(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, {"poverty": {**POVERTY_REG, "delimiter": ";;"}})
    with pytest.raises(ManifestError, match="delimiter must be one character"):
        load_manifest(path)


def test_linkage_fields_must_exist(tmp_path: Path) -> None:
    linkage = {
        "blocking": [["nofield"]],
        "comparisons": [{"field": "nofield", "comparator": "exact"}],
    }
    path = write_manifest(tmp_path, {"poverty": dict(POVERTY_REG)}, linkage=linkage)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    text = "\n".join(info.value.problems)
    assert "linkage.blocking.0: nofield is not a field" in text
    assert "linkage.comparisons.0.field: 'nofield' is not a field" in text
