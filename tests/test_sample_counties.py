"""The generator beyond one county: counties of their own region code, IDs unique across them,
a truth the audit reproduces, deterministic bytes; the scale-50 province (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import run
from linkaudit.errors import LinkauditError
from linkaudit.sample._ids import code17
from linkaudit.sample._plan import HEADLINE_RULES, RULE_IDS, make_plan
from linkaudit.sample._population import People, make_unique, neighbours
from linkaudit.sample.mashan import generate
from test_sample import Workspace, _files, valid_id

# Two counties of scale 0.05: the multi-county path at a scale that audits in seconds.
SCALE, COUNTY_SCALE = 0.1, 0.05


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("province")
    return Workspace(root, generate(root, scale=SCALE, county_scale=COUNTY_SCALE))


def test_counties_have_their_own_region_codes_and_key_ranges(province: Workspace) -> None:
    counties = province.summary["counties"]
    assert [c["region_code"] for c in counties] == [450124, 450125]
    assert [c["scale"] for c in counties] == [0.05, 0.05]
    register = province.register.with_columns(pl.col("id_number").fill_null(""))
    # Person keys run on from one county to the next: the first county's, then the second's.
    first = counties[0]["registrants"]
    assert register["key"].to_list() == [f"P{i:08d}" for i in range(1, register.height + 1)]
    assert register.height == first + counties[1]["registrants"]
    assert province.summary["households"] == sum(c["households"] for c in counties) == 2500
    for part, home in ((register[:first], "450124"), (register[first:], "450125")):
        ids = [v for v in part["id_number"] if valid_id(v)]
        share = sum(v.startswith(home) for v in ids) / len(ids)
        assert 0.95 < share < 0.995, (home, share)  # 98 % registered at home
    # Households of the two counties never mix.
    assert register[:first]["household"].max() < register[first:]["household"].min()
    for name, frame in province.departments.items():
        assert frame["key"].n_unique() == frame.height, name
        assert province.summary["rows"][name] == frame.height
    plates = province.departments["vehicles"]["plate"]
    assert plates.n_unique() == plates.len()
    assert set(plates.str.slice(0, 2)) == {"桂A", "桂B"}


def test_ids_are_unique_across_counties_except_planted_duplicates(province: Workspace) -> None:
    register = province.register.filter(
        pl.col("id_number").map_elements(valid_id, return_dtype=pl.Boolean)
    )
    repeated = register.filter(pl.col("id_number").is_duplicated())
    duplicates = province.flagged("duplicate_registration")
    assert set(repeated["key"]) == duplicates
    assert len(duplicates) == 2 * 2 * make_plan(COUNTY_SCALE).n["duplicate_pairs"]


def test_truth_is_the_sum_of_two_county_plans(province: Workspace) -> None:
    plan = make_plan(COUNTY_SCALE)
    rules = province.summary["rules"]
    for rule in HEADLINE_RULES:
        assert rules[rule]["persons"] == 2 * plan.rule_total(rule), rule
        assert len(province.flagged(rule)) == rules[rule]["persons"]
    assert province.summary["ineligible_distinct"] == 2 * plan.distinct
    assert rules["car_owner"]["cars"] == 2 * plan.cars
    assert rules["false_exit"]["persons"] == 2 * plan.n["false_exit_persons"]
    assert set(province.flags["rule_id"]) == set(RULE_IDS)
    persons = set(province.register["key"])
    assert set(province.links["person_key"]) <= persons
    assert province.links.height == sum(province.summary["links"].values())


def test_audit_reproduces_the_planted_truth_across_counties(
    province: Workspace, runner, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "p"
    shutil.copytree(province.root, root)
    audit = run(runner, "audit", root)
    assert audit.exit_code == 0, audit.output
    result = run(runner, "evaluate", root, "--truth", root / "truth", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    overall = report["overall"]
    assert overall["true_links"] == province.links.height
    assert overall["precision"] >= 0.999 and overall["recall"] >= 0.999, overall
    for flag in report["flags"]:
        assert flag["precision"] >= 0.99 and flag["recall"] >= 0.99, flag


def test_same_seed_gives_identical_bytes_across_counties(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", scale=0.04, seed=5, county_scale=0.02)
    second = generate(tmp_path / "b", scale=0.04, seed=5, county_scale=0.02)
    assert first == second and len(first["counties"]) == 2
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert sorted(a) == sorted(b) and len(a) == 11
    for name in a:
        assert a[name] == b[name], name
    # The second county is not a copy of the first: its own random streams.
    register = pl.read_csv(tmp_path / "a" / "data" / "poverty.csv", infer_schema=False)
    one = first["counties"][0]["registrants"]
    assert register["姓名"][:50].to_list() != register["姓名"][one : one + 50].to_list()


def _people(codes: list[tuple[int, str, int]]) -> People:
    n = len(codes)
    return People(
        name=np.zeros((n, 3), dtype=np.uint32),
        male=np.array([seq % 2 == 1 for _, _, seq in codes]),
        birth=np.array([b for _, b, _ in codes], dtype="datetime64[D]"),
        region=np.array([r for r, _, _ in codes], dtype=np.int64),
        seq=np.array([s for _, _, s in codes], dtype=np.int64),
        township=np.zeros(n, dtype=np.int64),
        village=np.zeros(n, dtype=np.int64),
    )


def test_make_unique_avoids_the_other_counties_ids() -> None:
    people = _people(
        [(450125, "1980-01-01", 11), (450125, "1980-01-01", 13), (450124, "1990-05-05", 20)]
    )
    outside = np.sort(people.codes()[:2])  # an earlier county already holds the first two
    before = people.codes().copy()
    make_unique(np.random.default_rng(1), people, outside=outside)
    after = people.codes()
    assert not np.isin(after[:2], outside).any()
    assert after[2] == before[2]  # no clash, not moved
    assert (people.seq % 2 == np.array([1, 1, 0])).all()  # the sex parity is kept
    # Without ``outside`` nothing moves (the codes were unique among themselves).
    again = _people([(450125, "1980-01-01", 11), (450125, "1980-01-01", 13)])
    make_unique(np.random.default_rng(1), again)
    assert again.codes().tolist() == before[:2].tolist()


def test_neighbours_avoid_the_other_counties_ids() -> None:
    people = _people([(450124, "1980-01-01", 111)])
    body = int(people.codes()[0])
    # Every one-digit neighbour of the sequence but one is taken in another county.
    free = code17(
        np.array([450124]), np.array(["1980-01-01"], dtype="datetime64[D]"), np.array([191])
    )
    region, rest = body // 10**3, []
    for seq in range(1000):
        code = region * 10**3 + seq
        if code != body and code != int(free[0]):
            rest.append(code)
    near = neighbours(np.random.default_rng(3), people, np.array([0]), np.array(sorted(rest)))
    assert int(near.codes()[0]) == int(free[0])


def test_hard_profile_beyond_one_county_is_a_clear_error(runner, tmp_path: Path) -> None:
    with pytest.raises(LinkauditError, match="hard cases are planted in one county"):
        generate(tmp_path / "h", scale=0.1, profile="hard", county_scale=0.05)
    assert not (tmp_path / "h").exists()
    result = run(
        runner, "sample", "mashan", "--out", tmp_path / "c", "--scale", "20", "--profile", "hard"
    )
    assert result.exit_code == 2
    assert "--profile hard at scale 20" in result.output and "10 or less" in result.output


def test_scale_beyond_the_payroll_workbook_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LinkauditError, match="payroll.xlsx holds at most 1,048,576 rows"):
        generate(tmp_path, scale=90)


def test_dialect_of_a_multi_county_scenario(province: Workspace, tmp_path: Path) -> None:
    import shutil

    from linkaudit.sample.dialects import apply_dialect

    root = tmp_path / "d"
    shutil.copytree(province.root, root)
    apply_dialect(root, 1)
    assert not (root / "linkaudit.yaml").exists()
    assert len(list((root / "data").iterdir())) == 7


@pytest.mark.slow
def test_scale_50_spreads_over_five_counties(tmp_path: Path) -> None:
    summary = generate(tmp_path, scale=50)
    counties = summary["counties"]
    assert [c["region_code"] for c in counties] == [450124, 450125, 450126, 450127, 450122]
    assert summary["rows"]["poverty"] == sum(c["registrants"] for c in counties) > 4_500_000
    assert sum(summary["rows"].values()) - summary["rows"]["poverty"] == 7_650_000
    assert summary["rules"]["car_owner"]["persons"] == 5 * make_plan(10.0).rule_total("car_owner")
    ids = (
        pl.scan_csv(tmp_path / "data" / "poverty.csv", infer_schema=False)
        .select(pl.col("证件号码"), pl.col("人员编号"))
        .filter(pl.col("证件号码").str.len_chars() == 18)
        .collect()
    )
    repeated = ids.filter(pl.col("证件号码").is_duplicated())["人员编号"]
    flags = pl.read_csv(tmp_path / "truth" / "flags.csv", infer_schema=False)
    duplicates = flags.filter(pl.col("rule_id") == "duplicate_registration")["person_key"]
    assert set(repeated) <= set(duplicates)
    assert ids["人员编号"].n_unique() == ids.height
