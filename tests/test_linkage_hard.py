"""The hard linkage cases of issue #11: ambiguity as a margin between the best and the second
candidate, ID near-misses as exact single edits of all 18 characters (and their u measured
under the same definitions), candidates opened by birth date and address, the premises address
that is not the person's, EM on simulated data, term frequencies, and the rule aggregation unit."""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml

from conftest import SAMPLE, write_csv, write_manifest
from linkaudit import load_manifest, load_workspace
from linkaudit.engines.duckdb import Workspace
from linkaudit.link import comparisons as C
from linkaudit.link.blocking import id_variant_pairs_sql
from linkaudit.link.engine import _id_neighbour_u, link_workspace
from linkaudit.link.model import estimate_u, run_em
from linkaudit.normalize import check_char
from test_link import _level, idrow, pid, typo

ID_A = pid("45012419850409522")


def region_neighbour(number: str) -> str:
    """A neighbouring county's valid ID: the region one digit off, its own check character."""
    other = number[:5] + str((int(number[5]) + 1) % 10) + number[6:17]
    assert check_char(other) != number[17]
    return pid(other)


def _check_swap(number: str) -> str:
    return number[:16] + number[17] + number[16]


# -- 1b: two edits are not one ----------------------------------------------------------------

TWO_EDITS = [
    # region code one digit off AND another check character: two edits, a neighbour
    (idrow(region_neighbour(ID_A), "valid"), idrow(ID_A[:17] + "0", "bad_checksum")),
    # a typo in the first 17 that also changed the check character
    (idrow(ID_A, "valid"), idrow(typo(ID_A, 14)[:17] + "X", "bad_checksum")),
]


@pytest.mark.parametrize(("left", "right"), TWO_EDITS)
def test_two_edits_are_id_different(left: dict, right: dict) -> None:
    assert _level(C.citizen_id(), left, right) == "id different"
    assert _level(C.citizen_id(), right, left) == "id different"


def test_swap_of_the_check_character_is_one_edit() -> None:
    number = next(
        n
        for n in (pid(f"4501241985040952{d}") for d in range(10))
        if n[16] != n[17] and n[17] != "X"
    )
    swapped = _check_swap(number)
    assert _level(C.citizen_id(), idrow(number, "valid"), idrow(swapped, "bad_checksum")) == (
        "id two digits transposed"
    )


def _variant_pairs(left_ids: list[tuple[str, str, str]], right_ids: list[tuple[str, str, str]]):
    """(l_key, r_key) pairs of the id_variants pass over two tiny tables."""
    con = duckdb.connect()
    for name, rows in (("lt", left_ids), ("rt", right_ids)):
        con.execute(
            f"CREATE TABLE {name} (_key VARCHAR, id_number VARCHAR, name_pinyin VARCHAR, "
            "id_usable BOOLEAN, id_suspect BOOLEAN)"
        )
        for key, number, status in rows:
            con.execute(
                f"INSERT INTO {name} VALUES (?, ?, 'wei ming', TRUE, ?)",
                [key, number, status != "valid"],
            )
    return set(con.execute(id_variant_pairs_sql("lt", "rt")).fetchall())


def test_variant_blocking_uses_exactly_the_single_edits() -> None:
    typo_17 = typo(ID_A, 9)
    right = [
        ("typo", typo_17, "bad"),  # one substitution, check kept: found
        ("check", ID_A[:17] + ("0" if ID_A[17] != "0" else "1"), "bad"),  # found
        ("neigh", region_neighbour(ID_A)[:17] + ID_A[17], "bad"),  # found (one sub)
        ("two", typo_17[:17] + ("X" if ID_A[17] != "X" else "0"), "bad"),  # two edits: not
    ]
    pairs = _variant_pairs([("A", ID_A, "valid")], right)
    assert pairs == {("A", "typo"), ("A", "check"), ("A", "neigh")}
    # a neighbour whose region is one digit off and whose check differs: not a variant
    neighbour = region_neighbour(ID_A)
    other_check = next(c for c in "0123456789X" if c not in (ID_A[17], neighbour[17]))
    pairs = _variant_pairs([("A", neighbour, "valid")], [("r", ID_A[:17] + other_check, "bad")])
    assert pairs == set()


# -- 1c: u of the near-miss levels under the comparison's definitions -------------------------


def test_neighbour_u_counts_a_region_neighbour_as_a_check_typo_not_a_digit_typo(
    tmp_path: Path,
) -> None:
    """A beneficiary from the neighbouring county (region one digit off, its own check) is
    reached by a typo of the department ID in the region digit at the check-character level:
    the prefixes then agree and the checks differ. The old 17-digit count called it a digit
    typo neighbour."""
    ws = Workspace(tmp_path / "u.duckdb")
    # ten department IDs differing in all eleven digits after the region: no two are near
    dept_ids = [
        pid("450124" + "".join(str((3 * k + p) % 10) for p in range(11))) for k in range(10)
    ]
    ben_ids = [region_neighbour(x) for x in dept_ids] + [pid("45012719600101001")]
    ws.run(
        "CREATE TABLE reg_poverty AS SELECT 'B' || i::VARCHAR AS _key, id AS id_number, "
        "TRUE AS id_usable, FALSE AS id_suspect FROM (SELECT unnest(?) AS id, "
        "generate_subscripts(?, 1) AS i)",
        [ben_ids, ben_ids],
    )
    ws.run(
        "CREATE TABLE reg_vehicles AS SELECT 'V' || i::VARCHAR AS _key, id AS id_number, "
        "'valid' AS id_status, TRUE AS id_usable, (i % 10 = 0) AS id_suspect "
        "FROM (SELECT unnest(?) AS id, generate_subscripts(?, 1) AS i)",
        [dept_ids, dept_ids],
    )
    reg = load_manifest(_tiny_manifest(tmp_path)).registries["vehicles"]
    u = _id_neighbour_u(ws, "reg_poverty", [reg], len(ben_ids), 42)
    typos = int(ws.value("SELECT count(*) FROM reg_vehicles")) * (17 * 9 + 10)
    swaps = sum(sum(a != b for a, b in zip(x, x[1:], strict=False)) for x in dept_ids)
    pairs = (typos + swaps) * len(ben_ids)
    share = 1 / 10  # suspect share among usable department IDs (none in the register)
    # every department ID reaches its neighbour through exactly two of its typos: one in its
    # region digit (prefixes then agree: check level), one in its check character that lands
    # on the neighbour's (one region digit apart: digit level); no swap reaches it
    assert u["id check character typo"] == pytest.approx(share * len(dept_ids) / pairs)
    assert u["id one digit mistyped"] == pytest.approx(share * len(dept_ids) / pairs)
    assert u["id two digits transposed"] == pytest.approx(share * 0.5 / pairs)  # the floor
    ws.close()


def _tiny_manifest(root: Path) -> Path:
    write_csv(root / "p.csv", ["k", "n"], [("1", "韦明")], "utf-8")
    write_csv(root / "v.csv", ["k", "n"], [("1", "韦明")], "utf-8")
    return write_manifest(
        root,
        {
            "poverty": {
                "role": "beneficiaries",
                "path": "p.csv",
                "key": "k",
                "fields": {"name": "n"},
            },
            "vehicles": {"path": "v.csv", "key": "k", "fields": {"name": "n"}},
        },
    )


# -- EM on simulated data ------------------------------------------------------------------


def test_em_recovers_known_m_and_lambda_from_simulated_pairs() -> None:
    rng = np.random.default_rng(3)
    true_m = [np.array([0.85, 0.1, 0.05]), np.array([0.7, 0.2, 0.1]), np.array([0.6, 0.3, 0.1])]
    true_u = [np.array([0.01, 0.04, 0.95]), np.array([0.02, 0.08, 0.9]), np.array([0.1, 0.2, 0.7])]
    n, lam = 200_000, 0.05
    match = rng.random(n) < lam
    cols = []
    for m, u in zip(true_m, true_u, strict=True):
        levels = np.where(match, rng.choice(3, n, p=m), rng.choice(3, n, p=u))
        cols.append(levels)
    data = np.column_stack(cols)
    patterns, counts = np.unique(data, axis=0, return_counts=True)
    u_est = estimate_u([np.bincount(data[~match][:, k], minlength=3) for k in range(3)])
    m, lambdas, _, converged, _ = run_em(
        patterns,
        counts.astype(float),
        np.zeros(len(patterns), dtype=int),
        ["g"],
        u_est,
        [[False] * 3] * 3,
    )
    assert converged
    assert lambdas["g"] == pytest.approx(lam, abs=0.005)
    for got, want in zip(m, true_m, strict=True):
        assert got == pytest.approx(want, abs=0.02)


def test_em_prior_holds_a_thin_group_and_yields_to_a_rich_one() -> None:
    u = [np.array([0.01, 0.99])]
    prior = [np.array([0.9, 0.1])]
    patterns = np.array([[0], [1]])
    for counts, expect in ((np.array([5.0, 5000.0]), 0.9), (np.array([50_000.0, 5_000.0]), 0.99)):
        m, *_ = run_em(
            patterns,
            counts,
            np.zeros(2, dtype=int),
            ["g"],
            u,
            [[False, False]],
            prior=prior,
            prior_strength=200.0,
        )
        assert m[0][0] == pytest.approx(expect, abs=0.05)


# -- the hard profile end to end (1a, 1b, 1d, 1e, 4) -----------------------------------------


@pytest.fixture(scope="module")
def hard_ws(tmp_path_factory) -> Path:
    from linkaudit.audit.run import run_audit
    from linkaudit.sample.mashan import generate

    root = tmp_path_factory.mktemp("hard")
    generate(root, scale=0.2, profile="hard")
    run_audit(load_manifest(root / "linkaudit.yaml"))
    return root


def _truth_links(root: Path) -> dict[tuple[str, str], str]:
    lines = (root / "truth" / "links.csv").read_text(encoding="utf-8").splitlines()[1:]
    return {(r, k): p for r, k, p in (line.split(",") for line in lines)}


def _matches(root: Path) -> dict[tuple[str, str], str]:
    con = duckdb.connect(str(root / "linkaudit.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT registry, record_key, person_key FROM links WHERE decision = 'match'"
        ).fetchall()
    finally:
        con.close()
    return {(r, k): p for r, k, p in rows}


def test_hard_profile_links_precision_and_recall(hard_ws: Path) -> None:
    truth, got = _truth_links(hard_ws), _matches(hard_ws)
    tp = sum(1 for k, p in got.items() if truth.get(k) == p)
    assert tp / len(got) >= 0.9995
    assert tp / len(truth) >= 0.998


def test_namesakes_without_id_are_decided_by_village(hard_ws: Path) -> None:
    """Vehicle records without ID whose name and birth date fit two registrants in different
    villages: the address names one village, and the link is a match to that registrant."""
    con = duckdb.connect(str(hard_ws / "linkaudit.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT k.record_key, k.person_key, k.decision FROM links k "
            "JOIN reg_vehicles v ON v._key = k.record_key WHERE v.id_number IS NULL "
            "AND k.candidates >= 2 AND k.level_residence = 'address in the same village'"
        ).fetchall()
    finally:
        con.close()
    truth = _truth_links(hard_ws)
    assert len(rows) >= 20
    assert all(d == "match" and truth[("vehicles", r)] == p for r, p, d in rows)


def test_neighbouring_county_ids_are_not_linked(hard_ws: Path) -> None:
    """The planted neighbours (keys JJ9...): a registrant's name and birth date, the region one
    digit off and the check character mistyped. Two edits: never linked."""
    con = duckdb.connect(str(hard_ws / "linkaudit.duckdb"), read_only=True)
    try:
        (linked,) = con.execute(
            "SELECT count(*) FROM links k JOIN reg_vehicles v ON v._key = k.record_key "
            "WHERE v._key LIKE 'JJ9%' AND k.decision = 'match'"
        ).fetchone()
        (planted,) = con.execute(
            "SELECT count(*) FROM reg_vehicles WHERE _key LIKE 'JJ9%' "
            "AND id_number LIKE '450125%' AND id_suspect"
        ).fetchone()
    finally:
        con.close()
    assert planted >= 20
    assert linked == 0


def test_business_premises_are_not_compared_as_residence(hard_ws: Path) -> None:
    con = duckdb.connect(str(hard_ws / "linkaudit.duckdb"), read_only=True)
    try:
        levels = con.execute(
            "SELECT DISTINCT level_residence FROM links WHERE registry = 'business'"
        ).fetchall()
        (addresses,) = con.execute("SELECT count(address) FROM reg_business").fetchone()
    finally:
        con.close()
    assert addresses > 0  # the premises are loaded (for the rules) ...
    assert levels == [(None,)]  # ... and never weighed as the person's home


def test_medical_cost_unit_from_the_manifest(tmp_path: Path) -> None:
    """`parameters: {medical_cost_by: person}` sums one member's costs: exactly the households
    with a member over the threshold are flagged; a value other than person/household is a
    clear error."""
    from linkaudit.audit.run import run_audit
    from linkaudit.errors import LinkauditError

    root = tmp_path / "m"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out", ".out*"))
    path = root / "linkaudit.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    by_household = run_audit(load_manifest(path)).history.exceptions
    data["parameters"]["medical_cost_by"] = "person"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    by_person = run_audit(load_manifest(path)).history.exceptions
    con = duckdb.connect(str(root / "linkaudit.duckdb"), read_only=True)
    try:
        expected = {
            h
            for (h,) in con.execute(
                "SELECT b.household FROM links k JOIN reg_medical r ON r._key = k.record_key "
                "JOIN reg_poverty b ON b._key = k.person_key WHERE k.registry = 'medical' "
                "AND k.decision = 'match' AND b.poverty_status = '已脱贫' "
                "AND r.settled_on > DATE '2014-12-31' AND r.settled_on <= DATE '2015-12-31' "
                "GROUP BY b._key, b.household HAVING sum(r.self_paid) > 5000"
            ).fetchall()
        }
    finally:
        con.close()

    def households(frame) -> set[str]:  # type: ignore[no-untyped-def]
        rows = frame.filter(frame["rule_id"] == "medical_cost_risk")
        return set(rows.get_column("household_key").to_list())

    assert households(by_person) == expected
    assert expected < households(by_household)
    data["parameters"]["medical_cost_by"] = "family"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(LinkauditError) as err:
        run_audit(load_manifest(path))
    assert "parameters.medical_cost_by to person or household" in str(err.value)


SURNAMES = "韦蓝黄覃李陆潘蒙梁罗农陈卢莫周唐何"
GIVEN = "明华强伟芳秀英玉兰红金福贵忠勇德志海春梅丽军平安国荣桂凤珍生"
VILLAGES = [("白山镇", "伏台村"), ("白山镇", "合群村"), ("林圩镇", "新坡村"), ("永州镇", "板劳村")]


@pytest.fixture(scope="module")
def namesakes(tmp_path_factory) -> Path:
    """1,600 registrants in four villages, 800 vehicle records of theirs (a quarter without
    ID), 400 strangers'; planted: CLEAR (no ID; two namesakes, the address names one's
    village: the runner-up is a confident match on its own, ~8 bits behind) and TIE (no ID;
    two namesakes in the same village)."""
    rng = random.Random(11)
    root = tmp_path_factory.mktemp("namesakes")
    people, used = [], set()
    for i in range(1600):
        while True:
            birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 60))
            body = f"450124{birth:%Y%m%d}{rng.randrange(1000):03d}"
            if body not in used:
                used.add(body)
                break
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(2))
        people.append([f"P{i:05d}", name, pid(body), birth, *VILLAGES[i % 4]])
    # CLEAR: P01000 and P01003 (villages 0 and 3, other townships); TIE: P01002 and P01006
    # (both village 2)
    for a, b in ((1000, 1003), (1002, 1006)):
        people[b][1], people[b][3] = people[a][1], people[a][3]
        people[b][2] = pid(f"450124{people[a][3]:%Y%m%d}{int(people[b][2][14:17]):03d}")
    write_csv(
        root / "poverty.csv",
        ["人员编号", "姓名", "证件号码", "乡镇", "行政村"],
        [(k, n, idn, t, v) for k, n, idn, _, t, v in people],
        "utf-8",
    )
    rows = []
    for j in range(800):
        k, name, idn, birth, t, v = people[j]
        rows.append((f"V{j:05d}", name, "" if j % 4 == 0 else idn, f"{birth}", f"马山县{t}{v}"))
    for j in range(800, 1200):
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 60))
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        idn = pid(f"450127{birth:%Y%m%d}{rng.randrange(1000):03d}")
        rows.append((f"V{j:05d}", name, idn, f"{birth}", "马山县古零镇古零村"))
    for key, who in (("CLEAR", 1000), ("TIE", 1002)):
        _, name, _, birth, t, v = people[who]
        rows.append((key, name, "", f"{birth}", f"马山县{t}{v}"))
    write_csv(
        root / "vehicles.csv",
        ["登记编号", "所有人", "身份证明号码", "出生日期", "住址"],
        rows,
        "utf-8",
    )
    manifest = write_manifest(
        root,
        {
            "poverty": {
                "role": "beneficiaries",
                "path": "poverty.csv",
                "key": "人员编号",
                "fields": {
                    "name": "姓名",
                    "id_number": "证件号码",
                    "township": "乡镇",
                    "village": "行政村",
                },
            },
            "vehicles": {
                "path": "vehicles.csv",
                "key": "登记编号",
                "fields": {
                    "name": "所有人",
                    "id_number": "身份证明号码",
                    "birth_date": "出生日期",
                    "address": "住址",
                },
            },
        },
    )
    m = load_manifest(manifest)
    load_workspace(m)
    link_workspace(m)
    return root


def _decision(root: Path, key: str) -> tuple[str, str, int]:
    con = duckdb.connect(str(root / "ws.duckdb"), read_only=True)
    try:
        row = con.execute(
            "SELECT person_key, decision, candidates FROM links WHERE record_key = ?", [key]
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return row


def test_a_clear_winner_over_a_namesake_in_another_village_is_a_match(namesakes: Path) -> None:
    assert _decision(namesakes, "CLEAR") == ("P01000", "match", 2)


def test_a_namesake_tie_goes_to_review(namesakes: Path) -> None:
    person, decision, candidates = _decision(namesakes, "TIE")
    assert (decision, candidates) == ("review", 2)
    assert person in ("P01002", "P01006")


def test_the_margin_is_a_setting(namesakes: Path, tmp_path: Path) -> None:
    """With a margin wider than the clear winner's lead, the clear case goes to review too."""
    root = tmp_path / "wide"
    shutil.copytree(namesakes, root, ignore=shutil.ignore_patterns("ws.duckdb*"))
    path = root / "linkaudit.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["linkage"] = {"ambiguity_margin": 40}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    m = load_manifest(path)
    load_workspace(m)
    link_workspace(m)
    assert _decision(root, "CLEAR")[1:] == ("review", 2)


def test_term_frequency_weighs_a_common_name_less(namesakes: Path) -> None:
    con = duckdb.connect(str(namesakes / "ws.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT r.name, k.weight_name FROM links k JOIN reg_vehicles r ON r._key = k.record_key "
            "WHERE k.level_name = 'name exact'"
        ).fetchall()
        freq = dict(
            con.execute(
                "SELECT name, count(*) FROM (SELECT name FROM reg_poverty UNION ALL "
                "SELECT name FROM reg_vehicles) GROUP BY name"
            ).fetchall()
        )
    finally:
        con.close()
    by_count: dict[int, set[float]] = {}
    for name, weight in rows:
        by_count.setdefault(freq[name], set()).add(round(weight, 6))
    counts = sorted(by_count)
    assert len(counts) >= 3
    # one weight per frequency, strictly falling as the name gets more common
    assert all(len(by_count[c]) == 1 for c in counts)
    weights = [by_count[c].pop() for c in counts]
    assert weights == sorted(weights, reverse=True) and len(set(weights)) == len(weights)


def test_hard_profile_writes_its_readme_and_truth(hard_ws: Path) -> None:
    readme = (hard_ws / "README.md").read_text(encoding="utf-8")
    assert "--profile hard" in readme and "namesakes without IDs" in readme
    summary = json.loads((hard_ws / "truth" / "summary.json").read_text(encoding="utf-8"))
    assert summary["profile"] == "hard"
    assert summary["hard"]["namesakes_without_id"] >= 20
    assert summary["hard"]["neighbour_county"] >= 20
    manifest = yaml.safe_load((hard_ws / "linkaudit.yaml").read_text(encoding="utf-8"))
    assert manifest["registries"]["business"]["residence"] == "none"
    assert manifest["registries"]["business"]["fields"]["address"] == "住所"


def test_unknown_profile_is_a_clear_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from conftest import run

    result = run(CliRunner(), "sample", "mashan", "--out", tmp_path / "x", "--profile", "harder")
    assert result.exit_code == 2, result.output
    assert "unknown profile 'harder'" in result.output
    assert not (tmp_path / "x" / "linkaudit.yaml").exists()
