"""The audit: rules on the committed Mashan sample, outputs, spreadsheet safety, rule checks."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from conftest import run
from linkaudit import load_manifest
from linkaudit.audit.run import run_audit
from linkaudit.evaluate import evaluate_links

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "mashan"
HEADLINE_RULES = ("payroll_active", "car_owner", "county_seat_housing", "business_owner")


@pytest.fixture(scope="module")
def audited(tmp_path_factory) -> tuple[Path, dict]:
    """The committed sample copied to a temp folder (the repo stays clean) and audited once."""
    root = tmp_path_factory.mktemp("mashan") / "mashan"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    manifest = load_manifest(root / "linkaudit.yaml")
    result = run_audit(manifest)
    return root, result.summary


def test_audit_reproduces_planted_truth(audited) -> None:
    root, summary = audited
    truth = json.loads((root / "truth" / "summary.json").read_text(encoding="utf-8"))
    for rule_id, planted in truth["rules"].items():
        got = summary["rules"][rule_id]
        assert (got["persons"], got["households"]) == (planted["persons"], planted["households"]), (
            rule_id
        )
        if rule_id in HEADLINE_RULES:
            assert got["evidence_records"] == planted["evidence_records"], rule_id
    assert summary["ineligible_distinct_cross_department"] == truth["ineligible_distinct"]


def test_links_and_flags_score_against_truth(audited) -> None:
    root, _ = audited
    report = evaluate_links(load_manifest(root / "linkaudit.yaml"), root / "truth")
    assert report.overall is not None
    assert report.overall.precision >= 0.999
    assert report.overall.recall >= 0.997
    for score in report.flags:
        assert score.precision == 1.0 and score.recall == 1.0, score.as_dict()


def test_outputs_written_and_xlsx_matches_csv(audited) -> None:
    root, summary = audited
    out = root / "out"
    for name in ("exceptions.xlsx", "exceptions.csv", "links.csv", "summary.json"):
        assert (out / name).exists(), name
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files
    with (out / "exceptions.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(
        r["households"] if r["scope"] == "household" else r["persons"]
        for r in summary["rules"].values()
        if not r["skipped"]
    )
    wb = openpyxl.load_workbook(out / "exceptions.xlsx", read_only=True)
    sheet_rows = []
    for ws in wb.worksheets[1:]:
        values = list(ws.iter_rows(values_only=True))
        if values and "疑点编号" in values[0]:
            sheet_rows += [dict(zip(values[0], v, strict=True)) for v in values[1:]]
    by_case = {r["case_id"]: r for r in rows}
    assert len(sheet_rows) == len(rows)
    status_zh = {"new": "新增", "persisting": "持续", "reopened": "重现"}
    severity_zh = {"ineligible": "不符合条件", "risk": "风险", "data_quality": "数据质量"}
    for cells in sheet_rows:
        row = by_case[cells["疑点编号"]]
        assert cells["运行编号"] == row["run_id"] and cells["规则"] == row["rule_id"]
        assert (cells["乡镇"], cells["行政村"], cells["户编号"]) == (
            row["township"],
            row["village"],
            row["household_key"],
        )
        assert cells["姓名"] == row["name"].replace(";", "、")
        assert (cells["证件号码"] or "") == row["id_number_masked"].replace(";", "\n")
        assert (cells["人员编号"] or "") == row["person_key"].replace(";", "\n")
        assert cells["状态"] == status_zh[row["status"]]
        assert cells["类别"] == severity_zh[row["severity"]]
        assert cells["范围"] == {"person": "个人", "household": "家庭"}[row["scope"]]
        if row["match_probability"]:
            pct = float(row["match_probability"]) * 100
            assert cells["关联把握"].endswith("%")
            assert abs(float(cells["关联把握"].split()[1][:-1]) - pct) <= 0.1
        else:
            assert cells["关联把握"] is None
        assert "=" not in (cells["证据"] or "")  # Chinese labels, not field=value


def test_ids_are_masked_in_outputs(audited) -> None:
    root, _ = audited
    text = (root / "out" / "exceptions.csv").read_text(encoding="utf-8-sig")
    masked = [
        r["id_number_masked"] for r in csv.DictReader(text.splitlines()) if r["id_number_masked"]
    ]
    assert masked and all("********" in m for m in masked)
    import re

    assert not re.search(r"\b\d{17}[\dX]\b", text)  # no full citizen ID anywhere


def test_summary_json_contents(audited) -> None:
    _, summary = audited
    for key in ("run_id", "tool_version", "input_checksums", "ruleset_hash", "timings_seconds"):
        assert summary[key]
    assert summary["registries"]["vehicles"]["rows_read"] > 0


def test_formula_in_a_name_is_stored_as_text(tmp_path: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    # Plant a formula as the name of a registrant who is flagged as a car owner.
    flags = list(csv.DictReader((root / "truth" / "flags.csv").open(encoding="utf-8")))
    target = next(f["person_key"] for f in flags if f["rule_id"] == "invalid_id")
    poverty = root / "data" / "poverty.csv"
    raw = poverty.read_text(encoding="utf-8-sig")
    lines = raw.splitlines()
    header = next(csv.reader([lines[0]]))
    name_col, key_col = header.index("姓名"), header.index("人员编号")
    out_lines = [lines[0]]
    for line in lines[1:]:
        fields = next(csv.reader([line]))
        if fields[key_col] == target:
            fields[name_col] = '=HYPERLINK("http://example.invalid","x")'
        buf = __import__("io").StringIO()
        csv.writer(buf, lineterminator="").writerow(fields)
        out_lines.append(buf.getvalue())
    poverty.write_text("\n".join(out_lines) + "\n", encoding="utf-8")
    run_audit(load_manifest(root / "linkaudit.yaml"))
    wb = openpyxl.load_workbook(root / "out" / "exceptions.xlsx")
    found = False
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and "HYPERLINK" in cell.value:
                    assert cell.data_type == "s"  # a string cell, not a formula
                    found = True
    assert found


# -- rules: validation and forbidden expressions --------------------------------------------

FORBIDDEN = [
    ("(SELECT count(*) FROM reg_poverty) > 0", "subqueries are not allowed"),
    ("read_csv('/etc/passwd') IS NOT NULL", "not allowed"),
    ("employment_status = '在职'; DROP TABLE links", "not several statements"),
    ("getenv('HOME') = 'x'", "not allowed"),
]


def _rule_file(folder: Path, condition: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "bad.yaml"
    path.write_text(
        "id: bad_rule\ntitle: {zh: 坏规则, en: Bad rule}\nseverity: ineligible\n"
        f'registry: payroll\ncondition: "{condition}"\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(("condition", "message"), FORBIDDEN)
def test_rules_check_rejects_forbidden_expressions(
    runner, tmp_path: Path, condition, message
) -> None:
    path = _rule_file(tmp_path / "rules", condition)
    result = run(runner, "rules", "check", path)
    assert result.exit_code == 2
    assert f"{path}: rule bad_rule:" in result.output and message in result.output


@pytest.mark.parametrize(("condition", "message"), FORBIDDEN[:2])
def test_audit_rejects_forbidden_expressions(runner, tmp_path: Path, condition, message) -> None:
    root = tmp_path / "m"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    path = _rule_file(tmp_path / "rules", condition)
    result = run(runner, "audit", root / "linkaudit.yaml", "--rules", path)
    assert result.exit_code == 2
    assert "bad_rule" in result.output and message in result.output
    assert not (root / "out").exists()  # rejected before any work


def test_rules_check_unknown_field_against_manifest(runner, tmp_path: Path) -> None:
    path = _rule_file(tmp_path / "rules", "salary > 1000")
    result = run(runner, "rules", "check", path, "--manifest", SAMPLE / "linkaudit.yaml")
    assert result.exit_code == 2
    assert "unknown field `salary` in registry 'payroll'" in result.output


def test_shipped_rules_check_clean(runner) -> None:
    result = run(runner, "rules", "check", "--manifest", SAMPLE / "linkaudit.yaml")
    assert result.exit_code == 0, result.output
    assert "car_owner" in result.output


def test_explain_json_shows_evidence_and_weights(runner, audited) -> None:
    root, _ = audited
    flags = list(csv.DictReader((root / "truth" / "flags.csv").open(encoding="utf-8")))
    car = next(f for f in flags if f["rule_id"] == "car_owner")
    result = run(runner, "explain", root / "linkaudit.yaml", car["person_key"], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    finding = next(f for f in data["findings"] if f["rule_id"] == "car_owner")
    assert finding["registry"] == "vehicles" and finding["record"]["vehicle_type"]
    comparisons = {c["comparison"] for c in finding["link"]["comparisons"]}
    assert comparisons == {"citizen_id", "name", "residence"}
    assert "*" in data["persons"][0]["id_number"]  # masked by default


def _custom_rule(root: Path, body: str) -> Path:
    folder = root / "myrules"
    folder.mkdir()
    (folder / "r.yaml").write_text(
        "id: my_rule\ntitle: {zh: 自定义, en: Custom}\nseverity: risk\n" + body, encoding="utf-8"
    )
    return folder


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("registry: medical\ncondition: self_paid > 'abc'\n", "my_rule"),
        ("registry: medical\ncondition: \"'abc'\"\n", "my_rule"),
        ("registry: medical\nwindow: {field: name, months: 12}\n", "not a date field"),
        ("registry: poverty\nevidence: [id_number]\n", "would print full ID numbers"),
        ("registry: medicall\n", "registry 'medicall' is not in the manifest"),
        (
            "registry: medical\naggregate: {by: household, having: 'sum(self_paid) > 1 AND person.income_per_capita < 3'}\n",
            "unknown field `person.income_per_capita`",
        ),
    ],
)
def test_bad_custom_rules_exit_2(runner, tmp_path: Path, body: str, message: str) -> None:
    root = tmp_path / "m"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    rules = _custom_rule(root, body)
    result = run(runner, "audit", root / "linkaudit.yaml", "--rules", rules)
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_department_name_with_quote_is_data_not_sql(tmp_path: Path) -> None:
    root = tmp_path / "m"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    manifest = root / "linkaudit.yaml"
    text = manifest.read_text(encoding="utf-8").replace(
        "department: 公安交警",
        "department: \"x' || (SELECT string_agg(id_number, ',') FROM reg_poverty) || '\"",
    )
    manifest.write_text(text, encoding="utf-8")
    run_audit(load_manifest(manifest))
    out = (root / "out" / "exceptions.csv").read_text(encoding="utf-8-sig")
    assert "x' || (SELECT" in out  # the name is printed verbatim, not executed
    import re

    assert not re.search(r"\d{17}[\dX]", out)


def test_household_rules_without_a_household_column_flag_persons(tmp_path: Path) -> None:
    """A register without household keys: household-scope rules fall back to the person."""
    import yaml

    root = tmp_path / "m"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    path = root / "linkaudit.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["registries"]["poverty"]["household"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run_audit(load_manifest(path))
    exits = result.history.exceptions.filter(pl.col("rule_id") == "false_exit")
    truth = json.loads((root / "truth" / "summary.json").read_text(encoding="utf-8"))
    assert exits.height == truth["rules"]["false_exit"]["persons"]  # one case per person
    assert exits.get_column("person_key").str.contains(";").sum() == 0


def test_explain_household_key_and_unknown_key(runner, audited) -> None:
    root, _ = audited
    flags = list(csv.DictReader((root / "truth" / "flags.csv").open(encoding="utf-8")))
    exit_flag = next(f for f in flags if f["rule_id"] == "false_exit")
    result = run(runner, "explain", root / "linkaudit.yaml", exit_flag["household_key"])
    assert result.exit_code == 0, result.output
    assert "false_exit" in result.output
    missing = run(runner, "explain", root / "linkaudit.yaml", "NO-SUCH-KEY")
    assert missing.exit_code == 2
    assert "no registrant or household with key 'NO-SUCH-KEY'" in missing.output
