"""`explain`: the values behind a flag, and every way a cadre may name the registrant."""

from __future__ import annotations

import json
import re
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from conftest import run
from linkaudit import load_manifest
from linkaudit.audit.run import run_audit

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "mashan"


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("explain") / "mashan"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    run_audit(load_manifest(root / "linkaudit.yaml"))
    return root


def _cases(root: Path, rule_id: str) -> pl.DataFrame:
    frame = pl.read_csv(root / "out" / "exceptions.csv", infer_schema=False)
    return frame.filter(pl.col("rule_id") == rule_id)


def _explain(runner, root: Path, key: str) -> dict:
    result = run(runner, "explain", root, key, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_false_exit_shows_year_income_line_and_comparison(runner, audited) -> None:
    case = _cases(audited, "false_exit").row(0, named=True)
    poverty = pl.read_csv(audited / "data" / "poverty.csv", infer_schema=False)
    member = poverty.filter(pl.col("户编号") == case["household_key"]).row(0, named=True)
    year, income = member["脱贫年度"], Decimal(member["人均纯收入(元)"])
    line = {"2013": 2736, "2014": 2736, "2015": 2855}[year]  # the manifest's lines
    data = _explain(runner, audited, case["household_key"])
    found = next(f for f in data["findings"] if f["rule_id"] == "false_exit")
    cond = found["condition"]
    assert cond["lookups"] == [{"parameter": "poverty_line", "key": year, "value": line}]
    assert cond["fields"]["exit_year"] == year
    assert Decimal(cond["fields"]["income_per_capita"]) == income
    assert cond["with_values"] == f"'已脱贫' = '已脱贫' AND {income.normalize():f} < {line}"
    text = run(runner, "explain", audited, case["household_key"]).output
    assert f"poverty_line[{year}] = {line}" in text
    assert f"{income.normalize():f} < {line}" in text


def test_aggregate_shows_the_records_summed_against_the_threshold(runner, audited) -> None:
    case = _cases(audited, "medical_cost_risk").row(0, named=True)
    records = case["evidence_records"].split(";")
    found = next(
        f
        for f in _explain(runner, audited, case["case_id"])["findings"]
        if f["rule_id"] == "medical_cost_risk"
    )
    agg = found["aggregate"]
    assert sorted(agg["records"]) == sorted(records)
    paid = [Decimal(m) for m in re.findall(r"self_paid=([0-9.]+)", case["evidence"])]
    total = sum(paid, Decimal(0))
    assert agg["totals"] == {"sum(self_paid)": f"{total.normalize():f}"}
    assert agg["with_values"] == f"{total.normalize():f} > 5000"


def test_id_number_in_any_form_finds_the_registrant_and_stays_masked(runner, audited) -> None:
    case = _cases(audited, "car_owner").row(0, named=True)
    poverty = pl.read_csv(audited / "data" / "poverty.csv", infer_schema=False)
    full = poverty.filter(pl.col("人员编号") == case["person_key"]).item(0, "证件号码")
    assert re.fullmatch(r"\d{17}[\dX]", full)
    # Full-width digits and spaces, as typed on some keyboards: normalised before the lookup.
    typed = " ".join(full[i : i + 6] for i in range(0, 18, 6)).translate(
        {ord(c): ord(c) + 0xFEE0 for c in "0123456789"}
    )
    for key in (full, typed):
        result = run(runner, "explain", audited, key)
        assert result.exit_code == 0, result.output
        assert "car_owner" in result.output
        assert full not in result.output
        assert f"{full[:6]}********{full[-4:]}" in result.output


def test_a_shared_name_lists_the_matches(runner, audited) -> None:
    poverty = pl.read_csv(audited / "data" / "poverty.csv", infer_schema=False)
    shared = poverty.group_by("姓名").len().filter(pl.col("len") > 1).sort("姓名").item(0, "姓名")
    data = _explain(runner, audited, shared)
    want = poverty.filter(pl.col("姓名") == shared).get_column("人员编号").sort().to_list()
    assert [m["person_key"] for m in data["matches"]] == want
    assert data["findings"] == []
    assert all("********" in (m["id_number"] or "********") for m in data["matches"])
    text = run(runner, "explain", audited, shared).output
    assert f"{len(want)} registrants named {shared}" in text
    assert "give one of these person or household keys" in text


def test_unknown_key_says_what_is_accepted(runner, audited) -> None:
    result = run(runner, "explain", audited, "nobody-like-this")
    assert result.exit_code == 2
    assert "person key, household key, case id (疑点编号), ID number or name" in result.output
