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


# -- linkage.comparisons: typed per comparator -----------------------------------------------

NAME_CMP = {"field": "name", "comparator": "chinese_name"}


def _linkage_problems_of(tmp_path: Path, comparisons: list) -> list[str]:
    path = write_manifest(
        tmp_path, {"poverty": dict(POVERTY_REG)}, linkage={"comparisons": comparisons}
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    return info.value.problems


@pytest.mark.parametrize(
    ("comparisons", "expected"),
    [
        # A misspelt key used to be ignored (the default thresholds ran instead).
        (
            [NAME_CMP, {"field": "exit_year", "comparator": "string", "threshold": [0.9]}],
            "linkage.comparisons.1.threshold: unknown key",
        ),
        # A key another comparator has is unknown to this one.
        (
            [{"comparator": "citizen_id", "field": "id_number"}],
            "linkage.comparisons.0.field: unknown key",
        ),
        (
            [{"field": "exit_year", "comparator": "string", "tf": "maybe"}],
            "linkage.comparisons.0.tf: Input should be a valid boolean",
        ),
        (
            [{"field": "exit_year", "comparator": "string", "thresholds": "high"}],
            "linkage.comparisons.0.thresholds: Input should be a valid tuple",
        ),
        (
            [{"field": "exit_year", "comparator": "string", "thresholds": [0.8, 0.92]}],
            "linkage.comparisons.0.thresholds: Value error, thresholds must be strictly decreasing",
        ),
        (
            [{"field": "exit_year", "comparator": "string", "thresholds": [1.5]}],
            "linkage.comparisons.0.thresholds.0: Input should be less than or equal to 1",
        ),
        (
            [{"field": "exit_year", "comparator": "edit_distance", "distances": [1.5]}],
            "linkage.comparisons.0.distances.0: Input should be a valid integer",
        ),
        (
            [{"field": "exit_year", "comparator": "edit_distance", "distances": [2, 1]}],
            "linkage.comparisons.0.distances: Value error, distances must be strictly increasing",
        ),
        ([{"comparator": "string"}], "linkage.comparisons.0.field: Field required"),
        (
            [{"field": "name", "comparator": "fuzzy"}],
            "linkage.comparisons.0.comparator: 'fuzzy' is not one of citizen_id, chinese_name, "
            "string, exact, edit_distance, date, residence",
        ),
        ([{"field": "name"}], "linkage.comparisons.0.comparator: missing; name one of citizen_id"),
        (["name"], "linkage.comparisons.0: Input should be a valid dictionary"),
        (
            [{"field": "name x", "comparator": "exact"}],
            "linkage.comparisons.0.field: String should match pattern",
        ),
    ],
)
def test_comparison_settings_are_typed(tmp_path: Path, comparisons: list, expected: str) -> None:
    problems = _linkage_problems_of(tmp_path, comparisons)
    assert any(p.startswith(expected) for p in problems), problems
    assert len(problems) == 1, problems


def test_a_pinyin_column_that_does_not_exist_is_rejected(tmp_path: Path) -> None:
    # It used to pass, and the homophone and pinyin-similar levels never held.
    problems = _linkage_problems_of(tmp_path, [{**NAME_CMP, "pinyin": "nope"}])
    assert problems == [
        "linkage.comparisons.0.pinyin: 'nope' is not a field of the beneficiaries registry "
        "(address, birth_date, birth_date_mismatch, birth_date_precision, exit_year, household, id_birth_date, id_number, id_region, "
        "id_status, id_suspect, id_usable, income_per_capita, name, name_pinyin, name_raw, sex)"
    ]


def test_columns_a_comparator_implies_must_exist(tmp_path: Path) -> None:
    # residence reads the beneficiaries' township and village, which this registry lacks.
    problems = _linkage_problems_of(tmp_path, [{"comparator": "residence"}])
    assert problems == [
        "linkage.comparisons.0.comparator: residence compares township, village, which the "
        "beneficiaries registry does not have (map them in its `fields:`)"
    ]


@pytest.mark.parametrize(
    ("comparisons", "expected"),
    [
        (
            [NAME_CMP, {"field": "name", "comparator": "string"}],
            "linkage.comparisons.1.field: a second comparison named 'name' (the first is "
            "linkage.comparisons.0); compare each field once",
        ),
        (
            [{"comparator": "citizen_id"}, NAME_CMP, {"comparator": "citizen_id"}],
            "linkage.comparisons.2.comparator: a second comparison named 'citizen_id' (the first "
            "is linkage.comparisons.0); compare each field once",
        ),
    ],
)
def test_duplicate_comparisons_are_rejected(
    tmp_path: Path, comparisons: list, expected: str
) -> None:
    assert _linkage_problems_of(tmp_path, comparisons) == [expected]


def test_duplicate_comparison_exits_2_at_load_not_3_at_link(runner, poverty_workspace) -> None:
    import yaml

    data = yaml.safe_load(poverty_workspace.read_text(encoding="utf-8"))
    data["linkage"] = {"comparisons": [NAME_CMP, {"field": "name", "comparator": "exact"}]}
    poverty_workspace.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    for command in ("load", "link"):
        result = run(runner, command, poverty_workspace)
        assert result.exit_code == 2, result.output
        assert "linkage.comparisons.1.field: a second comparison named 'name'" in result.output
    assert not (poverty_workspace.parent / "ws.duckdb").exists()


def test_valid_comparisons_build_the_same_comparisons_as_before(tmp_path: Path) -> None:
    from linkaudit.datasets.febrl import LINKAGE
    from linkaudit.link import comparisons as C

    specs = [
        *LINKAGE["comparisons"],
        {"comparator": "citizen_id"},
        {"comparator": "chinese_name", "field": "name", "pinyin": "name_pinyin"},
        {"comparator": "date"},
        {"comparator": "residence"},
    ]
    built = [C.build(s) for s in specs]
    assert built == [
        C.string("given_name", (0.92, 0.85), True),
        C.string("surname", (0.92, 0.85), True),
        C.exact("street_number"),
        C.string("address_1", (0.9, 0.8)),
        C.string("suburb", (0.9, 0.8)),
        C.edit_distance("postcode", (1,)),
        C.exact("state"),
        C.edit_distance("date_of_birth", (1, 2)),
        C.edit_distance("soc_sec_id", (1, 2)),
        C.citizen_id(),
        C.chinese_name(),
        C.date("birth_date"),
        C.residence(),
    ]
    # Through a manifest, entries are typed by their comparator.
    reg = {**POVERTY_REG, "fields": {**POVERTY_REG["fields"], "township": "乡", "village": "村"}}
    path = write_manifest(tmp_path, {"poverty": reg}, linkage={"comparisons": specs[9:]})
    manifest = load_manifest(path)
    assert [type(s).__name__ for s in manifest.linkage.comparisons or []] == [
        "CitizenIdSettings",
        "ChineseNameSettings",
        "DateSettings",
        "ResidenceSettings",
    ]
    assert [s.build() for s in manifest.linkage.comparisons or []] == built[9:]


def test_every_registered_comparator_is_one_entry() -> None:
    from linkaudit.link.comparisons import COMPARATORS, ComparatorSettings, build

    assert list(COMPARATORS) == [
        "citizen_id",
        "chinese_name",
        "string",
        "exact",
        "edit_distance",
        "date",
        "residence",
    ]
    for name, settings in COMPARATORS.items():
        assert issubclass(settings, ComparatorSettings) and settings.__doc__
        spec = {"comparator": name}
        field = settings.model_fields.get("field")
        if field is not None and field.is_required():
            spec["field"] = "name"
        comparison = build(spec)
        assert comparison.levels and comparison.level_sql().startswith("CASE WHEN")


def test_blocking_keys_are_checked_against_their_function(tmp_path: Path) -> None:
    blocking = [["year(name)"], ["left(name, 1, 2)"], ["lower(name)"], ["substr(nofield, 1, 2)"]]
    path = write_manifest(tmp_path, {"poverty": dict(POVERTY_REG)}, linkage={"blocking": blocking})
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.problems == [
        "linkage.blocking.1: blocking key 'left(name, 1, 2)': wrong number of arguments; use a "
        "column name, year(col), substr(col, a, b) or left(col, n)",
        "linkage.blocking.2: blocking key 'lower(name)': lower() is not allowed; use a column "
        "name, year(col), substr(col, a, b) or left(col, n)",
        "linkage.blocking.3: substr(nofield, 1, 2) is not a field of the beneficiaries registry",
    ]


def test_the_engine_section_is_typed_and_defaults_to_duckdb(tmp_path: Path) -> None:
    manifest = load_manifest(write_manifest(tmp_path, {"poverty": dict(POVERTY_REG)}))
    assert manifest.engine.name == "duckdb"
    path = write_manifest(
        tmp_path,
        {"poverty": dict(POVERTY_REG)},
        engine={"name": "spark", "master": "local[4]", "store": "spark-tables"},
    )
    manifest = load_manifest(path)
    assert (manifest.engine.name, manifest.engine.master) == ("spark", "local[4]")
    assert manifest.engine.store == tmp_path / "spark-tables"
    for engine, expected in (
        ({"name": "flink"}, "engine.name:"),
        ({"name": "spark", "store": "hdfs://nn/audit"}, "engine.store:"),
        ({"name": "spark", "workers": 4}, "engine.workers: unknown key"),
    ):
        with pytest.raises(ManifestError) as info:
            load_manifest(write_manifest(tmp_path, {"poverty": dict(POVERTY_REG)}, engine=engine))
        assert any(p.startswith(expected) for p in info.value.problems), info.value.problems
