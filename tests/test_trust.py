"""Trust: no silent defaults. Missing parameter entries, the audit date, baselines of trial runs."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import yaml

from conftest import run, set_manifest


def test_poverty_line_without_the_audit_year_stops_the_audit(runner, sample_ws: Path) -> None:
    # The shipped and the sample's tables end at 2016: an audit dated 2021 must not quietly
    # flag nobody under income_above_line (the lookup would be NULL, the comparison false).
    manifest = set_manifest(sample_ws, as_of="2021-12-31")
    result = run(runner, "audit", manifest, "-q")
    assert result.exit_code == 2, result.output
    assert "rule income_above_line: parameter $poverty_line has no entry" in result.output
    assert "year(as_of) = 2021" in result.output
    assert "rows)" in result.output
    assert "parameters.poverty_line" in result.output  # the hint says where to add it
    assert not (sample_ws / "out" / "exceptions.csv").exists()


def test_exit_years_missing_from_the_table_are_named_with_counts(runner, sample_ws: Path) -> None:
    data = yaml.safe_load((sample_ws / "linkaudit.yaml").read_text(encoding="utf-8"))
    line = {k: v for k, v in data["parameters"]["poverty_line"].items() if int(k) != 2014}
    manifest = set_manifest(sample_ws, parameters={**data["parameters"], "poverty_line": line})
    result = run(runner, "audit", manifest, "-q")
    assert result.exit_code == 2, result.output
    assert "rule false_exit: parameter $poverty_line has no entry for exit_year = 2014" in (
        result.output.replace("\n", " ")
    )


def test_a_rule_may_leave_rows_without_an_entry_unflagged(
    runner, sample_ws: Path, tmp_path: Path
) -> None:
    shipped = Path(__file__).resolve().parents[1] / "rules" / "income_above_line.yaml"
    rule = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    rule["lookup_missing"] = "not_flagged"
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "income.yaml").write_text(yaml.safe_dump(rule, allow_unicode=True), "utf-8")
    manifest = set_manifest(sample_ws, as_of="2021-12-31")
    result = run(runner, "audit", manifest, "--rules", rules, "--json", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    counted = summary["rules"]["income_above_line"]
    assert counted["persons"] == 0
    (key, rows), *_ = counted["unflagged_missing_lookup"].items()
    assert key == "$poverty_line[2021]" and rows > 0


def test_an_audit_states_its_date(runner, sample_ws: Path) -> None:
    manifest = set_manifest(sample_ws, as_of=None)
    result = run(runner, "audit", manifest, "-q")
    assert result.exit_code == 2
    assert "as_of: the audit's reference date is not set" in result.output
    assert "--as-of" in result.output
    ok = run(runner, "audit", manifest, "--as-of", "2015-12-31", "--json", "-q")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["as_of"] == "2015-12-31"
    bad = run(runner, "audit", manifest, "--as-of", "31.12.2015", "-q")
    assert bad.exit_code == 2


def test_a_trial_run_is_not_the_next_baseline(runner, sample_ws: Path) -> None:
    manifest = sample_ws / "linkaudit.yaml"
    assert run(runner, "audit", manifest, "-q").exit_code == 0
    one_rule = Path(__file__).resolve().parents[1] / "rules" / "car_owner.yaml"
    trial = run(runner, "audit", manifest, "--rules", one_rule, "-q")
    assert trial.exit_code == 0, trial.output
    # The next full run compares with the last full run, not with the one-rule trial.
    nightly = run(runner, "audit", manifest, "--fail-on", "new", "--json", "-q")
    assert nightly.exit_code == 0, nightly.output
    cases = json.loads(nightly.output)["cases"]
    assert cases["new"] == 0 and cases["resolved"] == 0 and cases["persisting"] > 0


def test_no_record_leaves_no_history(runner, sample_ws: Path) -> None:
    manifest = sample_ws / "linkaudit.yaml"
    result = run(runner, "audit", manifest, "--no-record", "--json", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["recorded"] is False
    assert (sample_ws / "out" / "exceptions.csv").is_file()
    con = duckdb.connect(str(sample_ws / "linkaudit.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM run_cases").fetchone() == (0,)
    finally:
        con.close()
    # So the first recorded run still reports every case as new.
    first = run(runner, "audit", manifest, "--json", "-q")
    assert json.loads(first.output)["cases"]["persisting"] == 0


def test_a_file_rewritten_while_it_is_read_stops_the_run(
    runner, sample_ws: Path, monkeypatch
) -> None:
    from linkaudit.ingest import readers

    vehicles = sample_ws / "data" / "vehicles.csv"
    original = readers._read_delimited

    def read_then_rewrite(path, reg, separator):  # type: ignore[no-untyped-def]
        result = original(path, reg, separator)
        if path == vehicles:  # the department's export job rewrites the dump mid-run
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        return result

    monkeypatch.setattr(readers, "_read_delimited", read_then_rewrite)
    result = run(runner, "audit", sample_ws / "linkaudit.yaml", "-q")
    assert result.exit_code == 2, result.output
    assert "vehicles.csv: the file changed while it was being read" in result.output
    con = duckdb.connect(str(sample_ws / "linkaudit.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (0,)
        assert con.execute(
            "SELECT count(*) FROM load_log WHERE registry = 'vehicles'"
        ).fetchone() == (0,)
    finally:
        con.close()


def test_shipped_rules_bend_to_a_manifest_that_maps_only_identity_fields(
    runner, sample_ws: Path
) -> None:
    data = yaml.safe_load((sample_ws / "linkaudit.yaml").read_text(encoding="utf-8"))
    identity = {"name", "id_number", "birth_date", "sex", "address"}
    for name, reg in data["registries"].items():
        keep = identity | ({"township", "village"} if name == "poverty" else set())
        reg["fields"] = {k: v for k, v in reg["fields"].items() if k in keep}
    data["parameters"] = {}
    manifest = set_manifest(sample_ws, registries=data["registries"], parameters={})
    result = run(runner, "audit", manifest, "--json", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    not_applied = summary["rules_not_applied"]
    assert not_applied["car_owner"] == (
        "set registries.vehicles.fields.vehicle_type, registries.vehicles.fields.vehicle_status "
        "in the manifest"
    )
    assert "parameters.county_seat" in not_applied["county_seat_housing"]
    assert "registries.poverty.fields.exit_year" in not_applied["false_exit"]
    assert "registries.deaths.fields.death_date" in not_applied["deceased_registered"]
    # Rules whose needs are all mapped still run: duplicates need only the ID.
    assert "duplicate_registration" not in not_applied
    assert summary["rules"]["duplicate_registration"]["persons"] > 0
    # The spreadsheet's summary sheet says which rules were not applied and why.
    import openpyxl

    wb = openpyxl.load_workbook(sample_ws / "out" / "exceptions.xlsx", read_only=True)
    cells = " ".join(
        str(c) for row in wb.worksheets[0].iter_rows(values_only=True) for c in row if c
    )
    assert "registries.vehicles.fields.vehicle_status" in cells


def test_unmapped_evidence_of_a_shipped_rule_is_left_out_and_said(runner, sample_ws: Path) -> None:
    data = yaml.safe_load((sample_ws / "linkaudit.yaml").read_text(encoding="utf-8"))
    del data["registries"]["vehicles"]["fields"]["plate"]
    manifest = set_manifest(sample_ws, registries=data["registries"])
    result = run(runner, "audit", manifest, "--json", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["rule_notes"] == [
        "rule car_owner: evidence plate not shown (map registries.vehicles.fields.plate to show it)"
    ]
    assert summary["rules"]["car_owner"]["persons"] > 0


def test_the_users_own_rule_still_fails_loudly(runner, sample_ws: Path, tmp_path: Path) -> None:
    data = yaml.safe_load((sample_ws / "linkaudit.yaml").read_text(encoding="utf-8"))
    del data["registries"]["vehicles"]["fields"]["plate"]
    manifest = set_manifest(sample_ws, registries=data["registries"])
    shipped = Path(__file__).resolve().parents[1] / "rules" / "car_owner.yaml"
    (tmp_path / "mine.yaml").write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    result = run(runner, "audit", manifest, "--rules", tmp_path / "mine.yaml", "-q")
    assert result.exit_code == 2
    assert "evidence field `plate` is not a field of 'vehicles'" in result.output
