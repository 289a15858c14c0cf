"""Nightly runs: stable case ids, baselines, --fail-on, verification outcomes, exemptions."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import yaml

from conftest import run
from linkaudit import load_manifest
from linkaudit.audit.run import run_audit

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "mashan"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "mashan"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    return root


def read_vehicles(root: Path) -> pl.DataFrame:
    text = (root / "data" / "vehicles.csv").read_bytes().decode("gb18030")
    return pl.read_csv(text.encode(), infer_schema=False)


def write_vehicles(root: Path, frame: pl.DataFrame) -> None:
    (root / "data" / "vehicles.csv").write_bytes(frame.write_csv().encode("gb18030"))


def truth_flags(root: Path) -> list[dict[str, str]]:
    with (root / "truth" / "flags.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def truth_links(root: Path) -> list[dict[str, str]]:
    with (root / "truth" / "links.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def single_car_owners(root: Path) -> list[tuple[str, str]]:
    """(person, vehicle record) for car owners with exactly one counted car."""
    cars = [f for f in truth_flags(root) if f["rule_id"] == "car_owner"]
    per_person = Counter(f["person_key"] for f in cars)
    return sorted(
        (f["person_key"], f["evidence_key"]) for f in cars if per_person[f["person_key"]] == 1
    )


def audit(root: Path, **kwargs):  # type: ignore[no-untyped-def]
    return run_audit(load_manifest(root / "linkaudit.yaml"), **kwargs)


def test_second_run_on_changed_vehicles_file(workspace: Path) -> None:
    first = audit(workspace)
    assert first.history.baseline_run is None
    assert first.history.counts["new"] == first.history.counts["exceptions"]
    (a, car_a), (b, car_b) = single_car_owners(workspace)[:2]
    flagged_cars = {f["person_key"] for f in truth_flags(workspace) if f["rule_id"] == "car_owner"}
    decoy = next(
        link["record_key"]
        for link in truth_links(workspace)
        if link["registry"] == "vehicles" and link["person_key"] not in flagged_cars
    )
    vehicles = read_vehicles(workspace)
    vehicles = vehicles.filter(pl.col("流水号") != car_a).with_columns(  # A sold the car: resolved
        pl.when(pl.col("流水号") == car_b)  # B's car scrapped: resolved
        .then(pl.lit("报废"))
        .when(pl.col("流水号") == decoy)
        .then(pl.lit("正常"))
        .otherwise(pl.col("机动车状态"))
        .alias("机动车状态"),
        pl.when(pl.col("流水号") == decoy)  # C registers a car: new
        .then(pl.lit("小型轿车"))
        .otherwise(pl.col("车辆类型"))
        .alias("车辆类型"),
    )
    write_vehicles(workspace, vehicles)
    second = audit(workspace)
    counts = second.history.counts
    assert second.history.baseline_run == first.run_id
    assert (counts["new"], counts["resolved"]) == (1, 2)
    assert counts["persisting"] == first.history.counts["exceptions"] - 2
    assert second.summary["reused"]["loads"] == [
        r for r in ("poverty", "payroll", "property", "business", "deaths", "medical")
    ]
    assert second.summary["reused"]["links"] is False  # vehicles changed: relinked
    resolved = set(second.summary["resolved_cases"])
    current = pl.read_csv(workspace / "out" / "exceptions.csv", infer_schema=False)
    assert len(resolved) == 2 and not resolved & set(current.get_column("case_id").to_list())
    # the diff command agrees, from the run history
    from typer.testing import CliRunner

    result = run(
        CliRunner(), "diff", "previous", "latest", "-m", workspace / "linkaudit.yaml", "--json"
    )
    assert result.exit_code == 0, result.output
    import json

    assert json.loads(result.output)["counts"] == {
        "new": 1,
        "persisting": counts["persisting"],
        "resolved": 2,
    }


def test_unchanged_second_run_reuses_everything(workspace: Path) -> None:
    first = audit(workspace)
    second = audit(workspace)
    assert second.summary["reused"]["links"] is True
    assert len(second.summary["reused"]["loads"]) == 7
    assert second.history.counts["new"] == 0
    assert second.history.counts["persisting"] == first.history.counts["exceptions"]
    assert second.summary["rules"] == first.summary["rules"]


def test_fail_on_new_exit_codes(runner, workspace: Path) -> None:
    manifest = workspace / "linkaudit.yaml"
    assert run(runner, "audit", manifest, "--fail-on", "new", "-q").exit_code == 1  # all new
    assert run(runner, "audit", manifest, "--fail-on", "new", "-q").exit_code == 0  # nothing new
    forced = run(runner, "audit", manifest, "--fail-on", "new", "-q", "--force")
    assert forced.exit_code == 0  # a full rerun against the first run: nothing new either
    assert run(runner, "audit", manifest, "--fail-on", "any", "-q").exit_code == 1
    assert run(runner, "audit", manifest, "--fail-on", "none", "-q").exit_code == 0
    person, car = single_car_owners(workspace)[0]
    flagged_cars = {f["person_key"] for f in truth_flags(workspace) if f["rule_id"] == "car_owner"}
    decoy = next(
        link["record_key"]
        for link in truth_links(workspace)
        if link["registry"] == "vehicles" and link["person_key"] not in flagged_cars
    )
    vehicles = read_vehicles(workspace).with_columns(
        pl.when(pl.col("流水号") == decoy)
        .then(pl.lit("小型轿车"))
        .otherwise(pl.col("车辆类型"))
        .alias("车辆类型"),
        pl.when(pl.col("流水号") == decoy)
        .then(pl.lit("正常"))
        .otherwise(pl.col("机动车状态"))
        .alias("机动车状态"),
    )
    write_vehicles(workspace, vehicles)
    result = run(runner, "audit", manifest, "--fail-on", "new")
    assert result.exit_code == 1
    assert "1 new" in result.output


def _outcome_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=["run_id", "case_id", "rule_id", "outcome", "reason"]
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_import_rejects_unknown_case_and_bad_outcome(
    runner, workspace: Path, tmp_path: Path
) -> None:
    first = audit(workspace)
    cases = first.history.exceptions
    good = cases.row(0, named=True)
    path = _outcome_csv(
        tmp_path / "outcomes.csv",
        [
            {
                "run_id": first.run_id,
                "case_id": good["case_id"],
                "rule_id": good["rule_id"],
                "outcome": "confirmed",
                "reason": "",
            },
            {
                "run_id": first.run_id,
                "case_id": "nope12345678",
                "rule_id": "car_owner",
                "outcome": "cleared",
                "reason": "x",
            },
            {
                "run_id": first.run_id,
                "case_id": good["case_id"],
                "rule_id": good["rule_id"],
                "outcome": "maybe",
                "reason": "",
            },
        ],
    )
    result = run(runner, "verify", "import", path, "-m", workspace / "linkaudit.yaml")
    assert result.exit_code == 2
    assert (
        f"{path}: row 3, column 疑点编号 (case_id): unknown case id 'nope12345678'" in result.output
    )
    assert f"{path}: row 4, column 核实结果 (outcome): 'maybe' is not one of" in result.output
    assert "nothing imported" in result.output
    status = run(runner, "verify", "status", "-m", workspace / "linkaudit.yaml", "--json")
    import json

    assert sum(r["verified"] for r in json.loads(status.output)["rows"]) == 0
    assert json.loads(status.output)["totals"]["verified"] == 0


def test_cleared_case_suppressed_until_evidence_changes(
    runner, workspace: Path, tmp_path: Path
) -> None:
    first = audit(workspace)
    person, car = single_car_owners(workspace)[0]
    case = first.history.exceptions.filter(
        (pl.col("rule_id") == "car_owner") & (pl.col("person_key") == person)
    ).row(0, named=True)
    # Cadres return the spreadsheet with the case cleared (and one other confirmed).
    import openpyxl

    wb = openpyxl.load_workbook(workspace / "out" / "exceptions.xlsx")
    marked = 0
    for ws in wb.worksheets:
        header = [c.value for c in ws[1]]
        if "疑点编号" not in header:
            continue
        id_col, out_col, why_col = (
            header.index(h) + 1 for h in ("疑点编号", "核实结果", "核实说明")
        )
        for row in range(2, ws.max_row + 1):
            if ws.cell(row, id_col).value == case["case_id"]:
                ws.cell(row, out_col).value = "cleared"
                ws.cell(row, why_col).value = "车辆已转让给亲属，本人未使用"
                marked += 1
    wb.save(tmp_path / "returned.xlsx")
    assert marked >= 1
    result = run(
        runner, "verify", "import", tmp_path / "returned.xlsx", "-m", workspace / "linkaudit.yaml"
    )
    assert result.exit_code == 0, result.output
    assert "cleared 1" in result.output

    second = audit(workspace)
    assert case["case_id"] not in second.history.exceptions.get_column("case_id").to_list()
    assert second.history.counts["suppressed_cleared"] == 1
    # Counted once: suppressed, not also 'resolved' (it is still in the data).
    assert second.history.counts["resolved"] == 0
    third = audit(workspace)  # still unchanged: still suppressed
    assert third.history.counts["suppressed_cleared"] == 1

    # The department's record of that car changes (new plate): the case comes back, marked.
    vehicles = read_vehicles(workspace).with_columns(
        pl.when(pl.col("流水号") == car)
        .then(pl.lit("桂A·Z9999"))
        .otherwise(pl.col("号牌号码"))
        .alias("号牌号码")
    )
    write_vehicles(workspace, vehicles)
    fourth = audit(workspace)
    back = fourth.history.exceptions.filter(pl.col("case_id") == case["case_id"])
    assert back.height == 1 and back.get_column("status").item() == "reopened"
    assert back.get_column("outcome").item() is None  # the old 'cleared' no longer holds
    assert fourth.history.counts["suppressed_cleared"] == 0
    fifth = audit(workspace)  # reopened once, then persisting: a nightly job does not keep failing
    again = fifth.history.exceptions.filter(pl.col("case_id") == case["case_id"])
    assert again.get_column("status").item() == "persisting"
    assert not fifth.fails("new")

    status = run(runner, "verify", "status", "-m", workspace / "linkaudit.yaml", "--json")
    import json

    rows = [r for r in json.loads(status.output)["rows"] if r["rule_id"] == "car_owner"]
    assert sum(r["cleared"] for r in rows) == 1
    # --rule / --township filter the table; the totals are of what is shown.
    only = run(
        runner,
        "verify",
        "status",
        "-m",
        workspace / "linkaudit.yaml",
        "--rule",
        "car_owner",
        "--json",
    )
    data = json.loads(only.output)
    assert data["rows"] == rows
    assert data["totals"]["flagged"] == sum(r["flagged"] for r in rows)
    t = data["totals"]
    assert t["cleared"] == 1 and t["confirmation_rate"] == t["confirmed"] / (t["confirmed"] + 1)
    town = rows[0]["township"]
    both = run(
        runner,
        "verify",
        "status",
        "-m",
        workspace / "linkaudit.yaml",
        "--rule",
        "car_owner",
        "--township",
        town,
        "--json",
    )
    assert json.loads(both.output)["rows"] == [r for r in rows if r["township"] == town]
    text = run(
        runner, "verify", "status", "-m", workspace / "linkaudit.yaml", "--rule", "car_owner"
    )
    assert text.exit_code == 0
    total_line = next(line for line in text.output.splitlines() if "total" in line)
    assert f"{data['totals']['flagged']:,}" in total_line


def test_exemption_with_expiry(workspace: Path) -> None:
    person, _ = single_car_owners(workspace)[0]
    exit_household = next(
        f["household_key"] for f in truth_flags(workspace) if f["rule_id"] == "false_exit"
    )
    manifest_path = workspace / "linkaudit.yaml"
    data = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    data["exemptions"] = [
        {
            "person": person,
            "rule": "car_owner",
            "reason": "灾后重建补助车辆",
            "expires": "2099-12-31",
        },
        {"person": person, "rule": "*", "reason": "expired one", "expires": "2000-01-01"},
        {"household": exit_household, "rule": "*", "reason": "易地扶贫搬迁安置"},
    ]
    manifest_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = audit(workspace)
    flagged = result.history.exceptions.filter(pl.col("rule_id") == "car_owner")
    assert person not in flagged.get_column("person_key").to_list()
    exits = result.history.exceptions.filter(pl.col("rule_id") == "false_exit")
    assert exit_household not in exits.get_column("household_key").to_list()
    exempted = result.history.exempted
    assert exempted.filter(pl.col("household_key") == exit_household).height == 1
    assert result.history.counts["exempted"] == exempted.height == 2


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\n"])
def test_import_of_an_empty_file_is_a_clear_error(
    runner, workspace: Path, tmp_path: Path, content: bytes
) -> None:
    audit(workspace)
    path = tmp_path / "outcomes.csv"
    path.write_bytes(content)
    result = run(runner, "verify", "import", path, "-m", workspace / "linkaudit.yaml")
    assert result.exit_code == 2
    assert f"{path}: the file is empty" in result.output


def test_diff_of_a_folder_is_a_clear_error(runner, tmp_path: Path) -> None:
    result = run(runner, "diff", tmp_path, tmp_path)
    assert result.exit_code == 2
    assert "file not found" in result.output


def test_changed_parameters_recompute_the_findings(workspace: Path) -> None:
    first = audit(workspace)
    assert first.summary["rules"]["county_seat_housing"]["persons"] > 0
    manifest_path = workspace / "linkaudit.yaml"
    data = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    data["parameters"]["county_seat"] = "不存在镇"
    manifest_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    second = audit(workspace)
    assert second.summary["reused"]["links"] is True  # linkage inputs did not change
    assert second.summary["rules"]["county_seat_housing"]["persons"] == 0
    assert (
        second.history.counts["resolved"]
        == first.summary["rules"]["county_seat_housing"]["persons"]
    )


def test_diff_of_two_exceptions_files(runner, workspace: Path, tmp_path: Path) -> None:
    audit(workspace)
    shutil.copy(workspace / "out" / "exceptions.csv", tmp_path / "old.csv")
    (person, car), *_ = single_car_owners(workspace)
    write_vehicles(workspace, read_vehicles(workspace).filter(pl.col("流水号") != car))
    audit(workspace)
    result = run(
        runner, "diff", tmp_path / "old.csv", workspace / "out" / "exceptions.csv", "--json"
    )
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.output)
    assert data["counts"]["resolved"] == 1 and data["counts"]["new"] == 0
    assert data["by_rule"] == [
        r for r in data["by_rule"] if r["rule_id"] != "car_owner" or r["resolved"] == 1
    ]
