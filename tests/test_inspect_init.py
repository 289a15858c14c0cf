"""A county's own data: `inspect`, `init`, the rules' vocabulary and the generator's dialects.

The dialects rewrite the Mashan scenario as other counties export it; `init` on them, with only
what a user must fill in (as_of, the county's parameters, the meaning of department codes),
must give an audit that reproduces the planted truth.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from conftest import run, set_manifest
from linkaudit import load_manifest
from linkaudit.audit.rules import load_rules
from linkaudit.audit.run import run_audit
from linkaudit.engines.duckdb import Workspace
from linkaudit.errors import ManifestError
from linkaudit.evaluate import evaluate_links
from linkaudit.ingest.draft import write_draft
from linkaudit.ingest.profile import detect_header_row, profile_file
from linkaudit.sample.dialects import CODES, DIALECTS, apply_dialect
from linkaudit.sample.mashan import generate
from linkaudit.vocabulary import header_synonyms, rule_vocabulary

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((ROOT / "sample_data" / "mashan" / "linkaudit.yaml").read_text("utf-8"))
HEADLINE_RULES = ("payroll_active", "car_owner", "county_seat_housing", "business_owner")
ID_RE = re.compile(r"\d{17}[\dX]")


@pytest.fixture(scope="module")
def dialects(tmp_path_factory) -> dict[int, Path]:
    """The scenario at scale 0.05, once, then a copy per dialect."""
    base = tmp_path_factory.mktemp("dialects")
    default = base / "d0"
    generate(default, scale=0.05)
    out = {0: default}
    for number in DIALECTS:
        root = base / f"d{number}"
        shutil.copytree(default, root)
        apply_dialect(root, number)
        out[number] = root
    return out


def copy(dialects: dict[int, Path], number: int, tmp_path: Path) -> Path:
    """A private copy of a dialect's folder (tests write manifests and workspaces into it)."""
    root = tmp_path / f"county{number}"
    shutil.copytree(dialects[number], root)
    return root


def fill_in(root: Path, codes: dict[str, dict[str, list[str]]]) -> Path:
    """What a user does with the draft: as_of, the county's parameters, the codes' meaning."""
    path = root / "linkaudit.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["as_of"] = "2015-12-31"
    data["parameters"] = DEFAULT["parameters"]
    for name, fields in codes.items():
        data["registries"][name]["values"] = {
            f: {c: CODES[f][c] for c in found} for f, found in fields.items()
        }
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def expected_mapping(number: int) -> dict[str, dict[str, str]]:
    """The default manifest's fields (and key, household) in the dialect's header names."""
    expected = {}
    for name, reg in DEFAULT["registries"].items():
        layout = DIALECTS[number].files[name]
        wanted = {f: layout.renames.get(c, c) for f, c in reg["fields"].items()}
        for extra in ("key", "household"):
            if extra in reg and reg[extra] not in layout.drop:
                wanted[extra] = layout.renames.get(reg[extra], reg[extra])
        expected[name] = wanted
    return expected


@pytest.mark.parametrize("number", sorted(DIALECTS))
def test_init_maps_every_field_of_the_default_manifest(runner, dialects, number, tmp_path) -> None:
    root = copy(dialects, number, tmp_path)
    result = run(runner, "init", root)
    assert result.exit_code == 0, result.output
    drafted = yaml.safe_load((root / "linkaudit.yaml").read_text(encoding="utf-8"))
    assert "as_of" not in drafted and "parameters" not in drafted  # placeholders, commented
    got = {
        name: {**reg["fields"], **{k: reg[k] for k in ("key", "household") if k in reg}}
        for name, reg in drafted["registries"].items()
    }
    assert got == expected_mapping(number)
    assert drafted["registries"]["poverty"]["role"] == "beneficiaries"
    assert [n for n, r in drafted["registries"].items() if r.get("role")] == ["poverty"]


@pytest.mark.parametrize("number", sorted(DIALECTS))
def test_init_then_audit_reproduces_the_planted_truth(runner, dialects, number, tmp_path) -> None:
    root = copy(dialects, number, tmp_path)
    draft = write_draft(root)
    text = (root / "linkaudit.yaml").read_text(encoding="utf-8")
    codes = {r.name: r.codes for r in draft.registries if r.codes}
    coded = {f for layout in DIALECTS[number].files.values() if layout.codes for f in CODES}
    # The codes are listed for the user to fill in, never guessed.
    for name, fields in codes.items():
        for field, found in fields.items():
            assert sorted(found) == sorted(CODES[field]), (name, field)
            assert f"#   {field}: {{" in text
    assert {f for fields in codes.values() for f in fields} <= set(CODES)
    assert bool(codes) == bool(coded)
    with pytest.raises(ManifestError, match="as_of"):
        run_audit(load_manifest(root))  # the placeholder stops the audit until it is filled
    result = run_audit(load_manifest(fill_in(root, codes)))
    truth = json.loads((root / "truth" / "summary.json").read_text(encoding="utf-8"))
    for rule_id, planted in truth["rules"].items():
        got = result.summary["rules"][rule_id]
        assert (got["persons"], got["households"]) == (planted["persons"], planted["households"]), (
            rule_id
        )
        if rule_id in HEADLINE_RULES:
            assert got["evidence_records"] == planted["evidence_records"], rule_id
    assert result.summary["ineligible_distinct_cross_department"] == truth["ineligible_distinct"]
    assert result.summary["rules_not_applied"] == {}
    assert result.summary["unknown_values"] == {}
    report = evaluate_links(load_manifest(root), _truth_in_workspace_keys(root))
    assert report.overall is not None
    assert report.overall.precision >= 0.999 and report.overall.recall >= 0.997
    for score in report.flags:
        assert score.precision == 1.0 and score.recall == 1.0, score.as_dict()


def _truth_in_workspace_keys(root: Path) -> Path:
    """truth/, with the register's person keys translated where the register has no key column
    (the workspace keys each person by a keyed hash: its row tells which one it is)."""
    rows_file = root / "truth" / "register_rows.csv"
    if not rows_file.exists():
        return root / "truth"
    rows = pl.read_csv(rows_file, infer_schema=False).with_columns(pl.col("row").cast(pl.Int64))
    with Workspace(load_manifest(root).database, read_only=True) as ws:
        keys = ws.frame('SELECT "_row" AS row, "_key" AS key FROM reg_poverty')
    table = rows.join(keys, on="row", how="left").select("person_key", "key")
    assert table.get_column("key").null_count() == 0
    out = root / "truth_keys"
    out.mkdir()
    for name in ("links.csv", "flags.csv"):
        frame = pl.read_csv(root / "truth" / name, infer_schema=False)
        frame = (
            frame.join(table, on="person_key", how="left")
            .with_columns(pl.col("key").alias("person_key"))
            .drop("key")
        )
        frame.write_csv(out / name)
    return out


def test_inspect_reports_codes_the_rules_do_not_know(runner, dialects) -> None:
    path = next((dialects[1] / "data").glob("vehicles.*"))
    result = run(runner, "inspect", path)
    assert result.exit_code == 0, result.output
    assert "holds values the shipped rules do not know: A, E, M" in result.output
    profile = profile_file(path)
    status = profile.column("车辆状态")
    assert status.field == "vehicle_status" and status.known_values == {}
    default = pl.read_csv(
        (dialects[0] / "data" / "vehicles.csv").read_bytes().decode("gbk").encode(),
        infer_schema=False,
    )
    counts = dict(default.get_column("机动车状态").value_counts().iter_rows())
    assert status.unknown_values == {"A": counts["正常"], "E": counts["注销"], "M": counts["报废"]}
    assert (profile.format, profile.sheet, profile.header_row) == ("xlsx", "机动车", 1)


def test_inspect_finds_encoding_title_row_and_fields_by_values(dialects) -> None:
    poverty = profile_file(dialects[1] / "data" / "poverty.csv")
    assert (poverty.format, poverty.encoding, poverty.header_row) == ("csv", "gb18030", 2)
    assert poverty.registry == "poverty"
    assert poverty.column("人均纯收入（元）").field == "income_per_capita"
    assert set(poverty.column("性别").top_values or {}) == {"1", "2"}  # codes, shown as they are
    # 证照号码 and 持有人 are in no synonym list: found by their values.
    medical = profile_file(dialects[3] / "data" / "medical.xlsx")
    ids = medical.column("证照号码")
    assert ids.field == "id_number" and ids.evidence.endswith("valid IDs")
    assert ids.id_share is not None and ids.id_share > 0.9 and ids.top_values is None
    owner = profile_file(dialects[3] / "data" / "property.xlsx").column("持有人")
    assert owner.field == "name" and "name-like" in owner.evidence


def test_inspect_json_has_the_table_content_and_no_id(runner, dialects) -> None:
    path = dialects[2] / "data" / "poverty.csv"
    shown = run(runner, "inspect", path)
    as_json = run(runner, "inspect", path, "--json")
    assert shown.exit_code == 0 and as_json.exit_code == 0, shown.output
    data = json.loads(as_json.output)
    assert data == {"files": [json.loads(json.dumps(profile_file(path).as_dict(), default=str))]}
    table = shown.output
    (file,) = data["files"]
    assert f"header row {file['header_row']}; {file['rows']:,} rows" in table
    assert f"looks like: {file['registry']}" in table
    for column in file["columns"]:
        row = next(line for line in table.splitlines() if f"│ {column['header']} " in line)
        assert f"{100 * column['null_share']:.1f}%" in row
        assert f"{column['distinct']:,}" in row
        assert (column["field"] or "") in row
        for value in (column["top_values"] or {}) if not column["known_values"] else {}:
            assert value in table
    assert not ID_RE.search(table) and not ID_RE.search(as_json.output)
    ids = next(c for c in file["columns"] if c["field"] == "id_number")
    assert ids["top_values"] is None


def test_init_refuses_to_overwrite_a_manifest(runner, tmp_path: Path, dialects) -> None:
    root = copy(dialects, 1, tmp_path)
    mine = root / "linkaudit.yaml"
    mine.write_text("# my own manifest\n", encoding="utf-8")
    refused = run(runner, "init", root)
    assert refused.exit_code == 2
    assert "a manifest is already there; it is not overwritten" in refused.output
    assert "--force" in refused.output
    assert mine.read_text(encoding="utf-8") == "# my own manifest\n"
    forced = run(runner, "init", root, "--force")
    assert forced.exit_code == 0, forced.output
    assert "registries:" in mine.read_text(encoding="utf-8")


def test_init_on_the_default_layout_writes_the_default_mapping(dialects, tmp_path) -> None:
    root = copy(dialects, 0, tmp_path)
    (root / "linkaudit.yaml").unlink()
    draft = write_draft(root)
    text = (root / "linkaudit.yaml").read_text(encoding="utf-8")
    assert re.search(r"\n      id_number: 证件号码  # header 证件号码; 9\d\.\d % valid IDs\n", text)
    assert "# as_of: YYYY-MM-DD  ← required" in text
    assert "#   county_seat: ...  ←" in text
    drafted = yaml.safe_load(text)
    for name, reg in DEFAULT["registries"].items():
        assert drafted["registries"][name]["fields"] == reg["fields"], name
        assert drafted["registries"][name].get("key") == reg["key"], name
        for setting in ("sheet", "header_row", "household"):
            assert drafted["registries"][name].get(setting) == reg.get(setting), (name, setting)
    assert not any(r.codes for r in draft.registries)
    manifest = load_manifest(set_manifest(root, as_of="2015-12-31"))
    assert manifest.beneficiaries.name == "poverty"


def test_a_register_without_a_key_column_is_said_to_get_surrogate_keys(dialects, tmp_path) -> None:
    draft = write_draft(copy(dialects, 2, tmp_path))
    (poverty,) = [r for r in draft.registries if r.name == "poverty"]
    assert poverty.key is None
    assert any("no unique key column: each person gets a stable surrogate key" in line
               for line in poverty.lines)  # fmt: skip
    assert not any(line.startswith("    key:") for line in poverty.lines)


@pytest.mark.parametrize(
    ("rows", "header_row"),
    [
        ([["姓名", "性别"], ["张三", "男"]], 1),
        ([["马山县花名册", None, None], ["姓名", "性别", "证件号码"], ["张三", "男", "x"]], 2),
        ([["标题"], [], ["序号", "姓名", "出生日期"], ["1", "张三", "1990-01-01"]], 3),
        ([["1", "2", "3"], ["4", "5", "6"]], 1),  # no header-like row: the first
        ([["2015", "2016"], ["姓名", "乡镇"]], 2),  # numbers are values, not headers
        ([["姓名", "姓名"], ["姓名", "乡镇"]], 2),  # a header's names differ
    ],
)
def test_detect_header_row(rows, header_row) -> None:
    assert detect_header_row(rows) == header_row


def test_vocabulary_knows_every_term_of_the_shipped_rules() -> None:
    vocabulary = rule_vocabulary()
    rules = {r.id: r for r in load_rules([ROOT / "rules"])}
    used = {
        "vehicle_status": rules["car_owner"].parameters["uncounted_vehicle_statuses"],
        "entity_type": rules["business_owner"].parameters["business_types"],
        "entity_status": rules["business_owner"].parameters["active_statuses"],
        "property_type": rules["county_seat_housing"].parameters["counted_property_types"],
        "poverty_status": ["贫困户", "已脱贫"],
        "employment_status": ["在职"],
    }
    for field, terms in used.items():
        assert set(terms) <= vocabulary[field], field
    for rule in rules.values():
        for term in re.findall(r"'([^']+)'", rule.condition or ""):
            if not term.isascii():
                assert any(term in v for v in vocabulary.values()), (rule.id, term)
    # Every header synonym table names fields the DESIGN's vocabulary knows.
    assert set(header_synonyms()) == {
        "any", "poverty", "payroll", "vehicles", "property", "business", "deaths", "medical"
    }  # fmt: skip


def test_audit_summary_reports_values_the_rules_do_not_know(runner, sample_ws: Path) -> None:
    data = yaml.safe_load((sample_ws / "linkaudit.yaml").read_text(encoding="utf-8"))
    data["registries"]["vehicles"]["values"] = {"vehicle_status": {"注销": "E"}}
    (sample_ws / "linkaudit.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    result = run(runner, "audit", sample_ws, "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((sample_ws / "out" / "summary.json").read_text(encoding="utf-8"))
    raw = pl.read_csv(
        (sample_ws / "data" / "vehicles.csv").read_bytes().decode("gbk").encode(),
        infer_schema=False,
    )
    cancelled = raw.filter(pl.col("机动车状态") == "注销").height
    assert summary["unknown_values"] == {"vehicles.vehicle_status": {"E": cancelled}}
    assert (
        f"vehicles.vehicle_status: values the shipped rules do not know: 'E' ({cancelled:,} rows)"
        in result.output
    )
    assert "registries.vehicles.values.vehicle_status" in result.output


def test_sample_dialect_writes_no_manifest_and_refuses_unknown_numbers(runner, tmp_path) -> None:
    out = tmp_path / "other"
    result = run(runner, "sample", "mashan", "--out", out, "--scale", "0.02", "--dialect", "2")
    assert result.exit_code == 0, result.output
    assert not (out / "linkaudit.yaml").exists()
    assert sorted(p.name for p in (out / "data").iterdir()) == sorted(
        layout.filename for layout in DIALECTS[2].files.values()
    )
    assert "linkaudit init" in result.output
    bad = run(runner, "sample", "mashan", "--out", tmp_path / "x", "--dialect", "9")
    assert bad.exit_code == 2 and "--dialect 9: no such dialect" in bad.output
