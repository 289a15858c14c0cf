"""The synthetic Mashan scenario: determinism, exact planted counts recomputed from the files,
truth integrity, identifiability of true links, and the committed sample copy."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import fastexcel
import opencc
import polars as pl
import pytest
import yaml

from linkaudit.errors import LinkauditError
from linkaudit.sample._plan import HEADLINE_RULES, RULE_IDS, make_plan
from linkaudit.sample.mashan import DEFAULT_SEED, generate

COMMITTED = Path(__file__).resolve().parents[1] / "sample_data" / "mashan"
SCALES = (0.02, 0.05)
AS_OF = dt.date(2015, 12, 31)
WINDOW_START = dt.date(2015, 1, 1)
# The audit's findings at scale 1 (DOMAIN.md).
HEADLINE = {
    "payroll_active": 343,
    "car_owner": 2454,
    "county_seat_housing": 43,
    "business_owner": 439,
}
# Written out here rather than imported, so the recomputation is independent of the generator.
CARS = {"小型轿车", "小型普通客车", "小型越野客车", "微型普通客车", "轻型普通货车", "中型普通货车"}
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def check_char(first17: str) -> str:
    return "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]


def valid_id(value: str | None) -> bool:
    if not value or len(value) != 18 or not value[:17].isascii() or not value[:17].isdigit():
        return False
    try:
        dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return int(value[6:10]) >= 1900 and check_char(value[:17]) == value[17]


def clean_id(value: str | None) -> str | None:
    """Undo format noise only: spaces, dashes, apostrophe, full width, x, 15 digits."""
    if value is None:
        return None
    text = value.translate({0xFF10 + d: str(d) for d in range(10)})
    text = text.replace(" ", "").replace("-", "").replace("'", "").upper()
    if len(text) == 15 and text.isdigit():
        text = text[:6] + "19" + text[6:]
        text += check_char(text)
    return text


def id_birth(value: str) -> dt.date:
    return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


# --- reading a generated workspace through its manifest -------------------------------------


def read_registry(root: Path, name: str) -> pl.DataFrame:
    """A registry's file as text columns renamed to canonical fields (plus 'key')."""
    manifest = yaml.safe_load((root / "linkaudit.yaml").read_text(encoding="utf-8"))
    reg = manifest["registries"][name]
    path = root / reg["path"]
    if path.suffix == ".csv":
        encoding = {"auto": "utf-8-sig", "utf-8": "utf-8-sig"}.get(
            reg.get("encoding", "utf-8"), reg.get("encoding")
        )
        text = path.read_bytes().decode(encoding)
        frame = pl.read_csv(io.BytesIO(text.encode("utf-8")), infer_schema=False)
    elif path.suffix == ".xlsx":
        sheet = fastexcel.read_excel(str(path)).load_sheet(
            reg["sheet"], header_row=reg["header_row"] - 1, dtypes="string"
        )
        frame = sheet.to_polars()
    elif path.suffix == ".parquet":
        frame = pl.read_parquet(path)
    else:
        frame = pl.read_ndjson(path)
    rename = {reg["key"]: "key", **{column: field for field, column in reg["fields"].items()}}
    if "household" in reg:
        rename[reg["household"]] = "household"
    assert set(rename) <= set(frame.columns), f"{name}: manifest columns missing from the file"
    return frame.rename(rename).with_columns(pl.col("key").cast(pl.String))


class Workspace:
    """A generated folder with its files read once."""

    def __init__(self, root: Path, summary: dict) -> None:
        self.root = root
        self.summary = summary
        self.scale = summary["scale"]
        self.register = read_registry(root, "poverty")
        self.departments = {
            name: read_registry(root, name)
            for name in ("payroll", "vehicles", "property", "business", "deaths", "medical")
        }
        self.links = pl.read_csv(root / "truth" / "links.csv", infer_schema=False)
        self.flags = pl.read_csv(root / "truth" / "flags.csv", infer_schema=False)

    def linked(self, name: str) -> pl.DataFrame:
        """The registry's rows that truly belong to a registrant, with the registrant's columns."""
        links = self.links.filter(pl.col("registry") == name).select("record_key", "person_key")
        people = self.register.select(
            pl.col("key").alias("person_key"),
            "household",
            pl.col("poverty_status"),
            pl.col("id_number").alias("reg_id"),
        )
        return (
            self.departments[name]
            .join(links, left_on="key", right_on="record_key")
            .join(people, on="person_key")
        )

    def flagged(self, rule: str) -> set[str]:
        return set(self.flags.filter(pl.col("rule_id") == rule)["person_key"])

    def members(self, households: set[str]) -> set[str]:
        return set(self.register.filter(pl.col("household").is_in(list(households)))["key"])


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> dict[float, Workspace]:
    out = {}
    for scale in SCALES:
        root = tmp_path_factory.mktemp(f"mashan_{scale}")
        out[scale] = Workspace(root, generate(root, scale=scale))
    return out


# --- the plan --------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 0.02, 0.05, 0.1, 0.37, 2.5, 10.0])
def test_plan_hits_every_rounded_total(scale: float) -> None:
    plan = make_plan(scale)
    for rule, total in HEADLINE.items():
        assert plan.rule_total(rule) == round(total * scale)
    assert plan.distinct == round(3119 * scale)
    assert plan.cars == round(2645 * scale)
    assert all(count >= 0 for count in plan.cells.values())


def test_plan_at_scale_one_is_the_audit() -> None:
    plan = make_plan(1.0)
    assert [plan.rule_total(r) for r in HEADLINE_RULES] == [343, 2454, 43, 439]
    assert plan.distinct == 3119 and plan.cars == 2645
    assert plan.n["false_exit_households"] == 608 and plan.n["false_exit_persons"] == 2272
    assert round(608 / plan.n["exit2014_households"], 4) == 0.0910
    assert round(2272 / plan.n["exit2014_persons"], 4) == 0.0890


def test_scale_one_reproduces_the_audit_findings(tmp_path: Path) -> None:
    summary = generate(tmp_path, scale=1.0)
    rules = summary["rules"]
    assert {rule: rules[rule]["persons"] for rule in HEADLINE} == HEADLINE
    assert rules["car_owner"]["cars"] == 2645
    assert summary["ineligible_distinct"] == 3119
    assert (rules["false_exit"]["households"], rules["false_exit"]["persons"]) == (608, 2272)
    assert summary["false_exit_share_of_2014_exits"] == {"households": 0.091, "persons": 0.089}
    assert 90_000 < summary["rows"]["poverty"] < 110_000 and summary["households"] == 25_000


@pytest.mark.parametrize("scale", [0.0, -1.0])
def test_bad_scale_is_a_domain_error(tmp_path: Path, scale: float) -> None:
    with pytest.raises(LinkauditError, match="scale"):
        generate(tmp_path, scale=scale)


# --- determinism -----------------------------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", scale=0.02, seed=7)
    second = generate(tmp_path / "b", scale=0.02, seed=7)
    assert first == second
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(a) == sorted(b)
    assert len(a) == 11
    for name in a:
        assert a[name] == b[name], name


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    generate(tmp_path / "a", scale=0.02, seed=1)
    generate(tmp_path / "b", scale=0.02, seed=2)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a["linkaudit.yaml"] == b["linkaudit.yaml"]
    assert a["data/poverty.csv"] != b["data/poverty.csv"]


# --- planted counts, recomputed from the files ------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
def test_summary_counts_are_the_rounded_audit_numbers(
    workspaces: dict[float, Workspace], scale: float
) -> None:
    summary = workspaces[scale].summary
    assert summary["scale"] == scale and summary["seed"] == DEFAULT_SEED
    assert set(summary["rules"]) == set(RULE_IDS)
    for rule, total in HEADLINE.items():
        assert summary["rules"][rule]["persons"] == round(total * scale)
    assert summary["rules"]["car_owner"]["cars"] == round(2645 * scale)
    assert summary["ineligible_distinct"] == round(3119 * scale)
    assert summary["rules"]["false_exit"]["persons"] == round(2272 * scale)
    assert summary["rules"]["false_exit"]["households"] == round(608 * scale)
    assert summary["exits"]["2014"] == {
        "households": round(6681 * scale),
        "persons": round(25528 * scale),
    }
    # The smaller plants (the scenario's own choice of counts at scale 1).
    rules = summary["rules"]
    assert rules["income_above_line"]["households"] == round(75 * scale)
    assert rules["working_age_death_risk"]["households"] == round(60 * scale)
    assert rules["medical_cost_risk"]["households"] == round(80 * scale)
    assert rules["duplicate_registration"]["persons"] == 2 * round(120 * scale)
    assert rules["invalid_id"]["persons"] == round(100 * scale) + 2 * round(50 * scale)
    deaths = round(60 * scale) + round(160 * scale) + round(40 * scale) + round(40 * scale)
    assert rules["deceased_registered"]["persons"] == deaths


@pytest.mark.parametrize("scale", SCALES)
def test_headline_rules_recomputed_from_department_files(
    workspaces: dict[float, Workspace], scale: float
) -> None:
    ws = workspaces[scale]
    payroll = ws.linked("payroll").filter(pl.col("employment_status") == "在职")
    vehicles = ws.linked("vehicles").filter(
        pl.col("vehicle_type").is_in(list(CARS)) & (pl.col("vehicle_status") == "正常")
    )
    housing = ws.linked("property").filter(
        pl.col("property_type").is_in(["商品房", "自建房"])
        & pl.col("location").str.contains("白山镇", literal=True)
    )
    business = ws.linked("business").filter(
        pl.col("entity_type").is_in(["个体工商户", "有限责任公司", "个人独资企业"])
        & pl.col("entity_status").is_in(["存续", "在业"])
    )
    found = {
        "payroll_active": set(payroll["person_key"]),
        "car_owner": set(vehicles["person_key"]),
        "county_seat_housing": set(housing["person_key"]),
        "business_owner": set(business["person_key"]),
    }
    for rule, persons in found.items():
        assert (
            len(persons) == round(HEADLINE[rule] * scale) == ws.summary["rules"][rule]["persons"]
        ), rule
        assert persons == ws.flagged(rule), rule
    assert vehicles.height == round(2645 * scale)
    assert len(set().union(*found.values())) == round(3119 * scale)
    # Counted records only for registrants on a valid, unduplicated register ID.
    flagged = ws.register.filter(pl.col("key").is_in(list(set().union(*found.values()))))
    assert all(valid_id(v) for v in flagged["id_number"])
    assert flagged["id_number"].n_unique() == flagged.height


@pytest.mark.parametrize("scale", SCALES)
def test_decoy_records_exist_and_are_not_counted(
    workspaces: dict[float, Workspace], scale: float
) -> None:
    ws = workspaces[scale]
    vehicles = ws.linked("vehicles")
    assert vehicles.filter(~pl.col("vehicle_type").is_in(list(CARS))).height > 0
    assert (
        vehicles.filter(
            pl.col("vehicle_type").is_in(list(CARS)) & (pl.col("vehicle_status") != "正常")
        ).height
        > 0
    )
    assert ws.linked("payroll").filter(pl.col("employment_status") != "在职").height > 0
    business = ws.linked("business")
    assert business.filter(pl.col("entity_type") == "农民专业合作社").height > 0
    assert business.filter(pl.col("entity_status").is_in(["注销", "吊销"])).height > 0
    prop = ws.linked("property")
    assert (
        prop.filter(
            (pl.col("property_type") == "易地扶贫搬迁安置房")
            & pl.col("location").str.contains("白山镇")
        ).height
        > 0
    )
    assert (
        prop.filter(
            (pl.col("property_type") == "农村宅基地住房")
            & pl.col("location").str.contains("白山镇")
        ).height
        > 0
    )
    assert (
        prop.filter(
            pl.col("property_type").is_in(["商品房", "自建房"])
            & ~pl.col("location").str.contains("白山镇")
        ).height
        > 0
    )


@pytest.mark.parametrize("scale", SCALES)
def test_false_exit_recomputed_from_register(
    workspaces: dict[float, Workspace], scale: float
) -> None:
    reg = workspaces[scale].register.with_columns(
        income=pl.col("income_per_capita").cast(pl.Float64),
        exit_year=pl.col("exit_year").cast(pl.Int64),
    )
    line = {2014: 2736.0, 2015: 2855.0}
    exited = reg.filter(pl.col("poverty_status") == "已脱贫")
    below = exited.filter(pl.col("income") < pl.col("exit_year").replace_strict(line, default=None))
    assert set(below["exit_year"]) == {2014}
    assert below.height == round(2272 * scale)
    assert below["household"].n_unique() == round(608 * scale)
    assert set(below["key"]) == workspaces[scale].flagged("false_exit")
    # Household sizes are consistent with the rows, and income is per household.
    per_household = reg.group_by("household").agg(
        pl.len().alias("rows"),
        pl.col("household_size").cast(pl.Int64).first(),
        pl.col("income").n_unique().alias("incomes"),
    )
    assert (per_household["rows"] == per_household["household_size"]).all()
    assert (per_household["incomes"] == 1).all()
    # Boundary decoys: exactly at the 2014 line, and between it and the national 2,800.
    exit14 = exited.filter(pl.col("exit_year") == 2014)
    assert exit14.filter(pl.col("income") == 2736.0).height > 0
    assert exit14.filter((pl.col("income") > 2736.0) & (pl.col("income") < 2800.0)).height > 0


@pytest.mark.parametrize("scale", SCALES)
def test_register_rules_recomputed(workspaces: dict[float, Workspace], scale: float) -> None:
    ws = workspaces[scale]
    reg = ws.register
    poor = reg.filter(
        (pl.col("poverty_status") == "贫困户")
        & (pl.col("income_per_capita").cast(pl.Float64) >= 2855)
    )
    assert set(poor["key"]) == ws.flagged("income_above_line") != set()
    ids = reg.filter(pl.col("id_number").is_not_null())
    repeated = ids.filter(pl.col("id_number").is_duplicated())
    assert set(repeated["key"]) == ws.flagged("duplicate_registration") != set()
    assert repeated["household"].n_unique() < repeated.height  # some twice in one household
    invalid = {k for k, v in zip(reg["key"], reg["id_number"], strict=True) if not valid_id(v)}
    assert invalid == ws.flagged("invalid_id") != set()
    assert reg["id_number"].null_count() > 0


@pytest.mark.parametrize("scale", SCALES)
def test_risk_rules_recomputed(workspaces: dict[float, Workspace], scale: float) -> None:
    ws = workspaces[scale]
    deaths = ws.linked("deaths").with_columns(death=pl.col("death_date").str.to_date("%Y-%m-%d"))
    dead = deaths.filter(pl.col("death") <= AS_OF)
    assert set(dead["person_key"]) == ws.flagged("deceased_registered") != set()
    assert deaths.filter(pl.col("death") > AS_OF).height > 0  # deaths after the audit date

    hit = set()
    for row in dead.filter(pl.col("poverty_status") == "已脱贫").iter_rows(named=True):
        birth, death = id_birth(row["reg_id"]), row["death"]
        age = death.year - birth.year - ((death.month, death.day) < (birth.month, birth.day))
        if death >= WINDOW_START and 16 <= age <= 59:
            hit.add(row["household"])
    assert ws.members(hit) == ws.flagged("working_age_death_risk") != set()

    medical = ws.linked("medical").with_columns(
        paid=pl.col("self_paid").str.replace_all(",", "").cast(pl.Float64),
        settled=pl.col("settled_on").str.to_date("%Y-%m-%d"),
    )
    window = medical.filter(
        (pl.col("poverty_status") == "已脱贫")
        & (pl.col("settled") >= WINDOW_START)
        & (pl.col("settled") <= AS_OF)
    )
    sums = window.group_by("household").agg(pl.col("paid").sum().round(2))
    heavy = set(sums.filter(pl.col("paid") > 5000)["household"])
    assert ws.members(heavy) == ws.flagged("medical_cost_risk") != set()
    assert (
        sums.filter(pl.col("paid") == 5000).height == ws.summary["decoys"]["medical_at_threshold"]
    )


# --- truth integrity -------------------------------------------------------------------------


@pytest.mark.parametrize("scale", SCALES)
def test_every_truth_row_points_at_real_rows(
    workspaces: dict[float, Workspace], scale: float
) -> None:
    ws = workspaces[scale]
    persons = set(ws.register["key"])
    assert ws.register["key"].n_unique() == ws.register.height
    assert ws.links.select("registry", "record_key").n_unique() == ws.links.height
    for name, frame in ws.departments.items():
        assert frame["key"].n_unique() == frame.height, name
        keys = set(frame["key"])
        links = ws.links.filter(pl.col("registry") == name)
        assert set(links["record_key"]) <= keys, name
        assert ws.summary["rows"][name] == frame.height
        assert ws.summary["links"][name] == links.height
    assert set(ws.links["person_key"]) <= persons
    assert set(ws.flags["person_key"]) <= persons
    assert set(ws.flags["rule_id"]) == set(RULE_IDS)
    households = dict(zip(ws.register["key"], ws.register["household"], strict=True))
    assert all(
        households[p] == h
        for p, h in zip(ws.flags["person_key"], ws.flags["household_key"], strict=True)
    )
    evidence = ws.flags.filter(pl.col("evidence_key").is_not_null())
    for registry, key in zip(evidence["evidence_registry"], evidence["evidence_key"], strict=True):
        assert key in set(ws.departments[registry]["key"])


@pytest.mark.parametrize("scale", SCALES)
def test_true_links_are_identifiable_and_noisy(
    workspaces: dict[float, Workspace], scale: float
) -> None:
    ws = workspaces[scale]
    to_simplified = opencc.OpenCC("t2s")
    register = dict(
        zip(
            ws.register["key"],
            zip(ws.register["name"], ws.register["id_number"], strict=True),
            strict=True,
        )
    )
    register_ids = set(ws.register["id_number"].drop_nulls())
    total = id_off = name_off = 0
    for name, frame in ws.departments.items():
        links = dict(
            ws.links.filter(pl.col("registry") == name)
            .select("record_key", "person_key")
            .iter_rows()
        )
        for key, person_name, raw_id in frame.select("key", "name", "id_number").iter_rows():
            cleaned = clean_id(raw_id)
            person = links.get(key)
            if person is None:
                # A stranger never carries a registrant's (valid) ID number.
                assert cleaned not in register_ids or not valid_id(cleaned), (name, key)
                continue
            true_name, true_id = register[person]
            same_id = cleaned == true_id
            same_name = (
                to_simplified.convert(person_name.replace(" ", "").replace("\u3000", ""))
                == true_name
            )
            assert same_id or same_name, (name, key)  # at most one hard error
            assert same_id or not valid_id(cleaned), (name, key)  # ID errors never look valid
            total += 1
            id_off += not same_id
            name_off += not same_name
    # About 7 % ID errors (typo, transposition, blank) and 4 % name errors (homophone, look-alike).
    assert 0.04 < id_off / total < 0.11
    assert 0.02 < name_off / total < 0.07
    rates = ws.summary["noise"]["true_links"]
    assert rates["records"] == total
    for kind in ("id_typo", "id_missing", "name_homophone", "name_traditional", "id_legacy15"):
        assert 0.005 < rates[f"{kind}_rate"] < 0.06, kind


@pytest.mark.parametrize("scale", SCALES)
def test_strangers_resemble_registrants(workspaces: dict[float, Workspace], scale: float) -> None:
    ws = workspaces[scale]
    reg = ws.register.filter(pl.col("id_number").is_not_null())
    by_name_birth = {
        (n, v[6:14]) for n, v in zip(reg["name"], reg["id_number"], strict=True) if valid_id(v)
    }
    by_prefix: dict[str, list[tuple[str, str]]] = {}
    for n, v in zip(reg["name"], reg["id_number"], strict=True):
        by_prefix.setdefault(v[:14], []).append((n, v))
    twins = neighbours = 0
    for name, frame in ws.departments.items():
        linked = set(ws.links.filter(pl.col("registry") == name)["record_key"])
        for key, person_name, raw_id in frame.select("key", "name", "id_number").iter_rows():
            cleaned = clean_id(raw_id)
            if key in linked or not valid_id(cleaned):
                continue
            if (person_name, cleaned[6:14]) in by_name_birth:
                twins += 1
            for other_name, other_id in by_prefix.get(cleaned[:14], []):
                if (
                    other_name != person_name
                    and sum(a != b for a, b in zip(cleaned[:17], other_id[:17], strict=True)) == 1
                ):
                    neighbours += 1
    decoys = ws.summary["decoys"]
    # Each stranger owns one counted record; a few lose their name to noise.
    assert twins >= 0.8 * decoys["twins_name_birth"] > 0
    assert neighbours >= 0.9 * decoys["near_id_neighbours"] > 0


# --- the committed copy ----------------------------------------------------------------------


def _table(path: Path) -> list[pl.DataFrame]:
    if path.suffix == ".parquet":
        return [pl.read_parquet(path)]
    reader = fastexcel.read_excel(str(path))
    return [
        reader.load_sheet(s, header_row=None, dtypes="string").to_polars()
        for s in reader.sheet_names
    ]


def test_committed_sample_is_what_generate_writes(tmp_path: Path) -> None:
    summary = json.loads((COMMITTED / "truth" / "summary.json").read_text(encoding="utf-8"))
    generate(tmp_path, scale=summary["scale"], seed=summary["seed"])
    committed = {
        k: v
        for k, v in _files(COMMITTED).items()
        if k == "linkaudit.yaml" or k.startswith(("data/", "truth/"))
    }
    fresh = _files(tmp_path)
    assert sorted(committed) == sorted(fresh)
    for name, content in fresh.items():
        if name.endswith((".parquet", ".xlsx")):
            # Container bytes carry the writer library's version; compare every value instead.
            for ours, theirs in zip(_table(COMMITTED / name), _table(tmp_path / name), strict=True):
                assert ours.equals(theirs, null_equal=True), name
        else:
            assert content == committed[name], name
    assert sum(len(v) for v in committed.values()) < 10 * 1024 * 1024


def test_committed_sample_loads_without_quarantine(runner, tmp_path: Path) -> None:
    import json
    import shutil

    from conftest import run

    root = tmp_path / "mashan"
    shutil.copytree(COMMITTED, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    result = run(runner, "load", root / "linkaudit.yaml", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {r["registry"] for r in report["registries"]} == {
        "poverty",
        "payroll",
        "vehicles",
        "property",
        "business",
        "deaths",
        "medical",
    }
    for reg in report["registries"]:
        assert reg["rows_quarantined"] == 0, reg
        assert reg["rows_loaded"] == reg["rows_read"] > 0


def test_sample_command_writes_a_scenario(runner, tmp_path: Path) -> None:
    from conftest import run

    result = run(
        runner, "sample", "mashan", "--out", tmp_path / "s", "--scale", "0.02", "--seed", "3"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "linkaudit.yaml").exists()
    assert (tmp_path / "s" / "truth" / "links.csv").exists()
    bad = run(runner, "sample", "mashan", "--out", tmp_path / "t", "--scale", "0")
    assert bad.exit_code == 2
