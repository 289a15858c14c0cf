"""Linkage: comparison levels (table tests), blocking, and end-to-end decisions on planted cases."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path

import duckdb
import pytest

from conftest import run, write_csv, write_manifest
from linkaudit import load_manifest, load_workspace
from linkaudit.link import comparisons as C
from linkaudit.link.engine import link_workspace
from linkaudit.normalize import check_char

# -- comparison levels ----------------------------------------------------------------------


def _level(comparison: C.Comparison, left: dict, right: dict) -> str | None:
    cols = sorted(set(left) | set(right))
    con = duckdb.connect()

    def side(values: dict) -> str:
        exprs = []
        for c in cols:
            v = values.get(c)
            if isinstance(v, dt.date):
                exprs.append(f"DATE '{v.isoformat()}' AS {c}")
            elif isinstance(v, bool):
                exprs.append(f"{str(v).upper()} AS {c}")
            elif v is None:
                exprs.append(f"NULL::{'DATE' if 'date' in c else 'VARCHAR'} AS {c}")
            else:
                exprs.append(f"'{v}' AS {c}")
        return "SELECT " + ", ".join(exprs)

    level = con.execute(
        f"SELECT {comparison.level_sql()} FROM ({side(left)}) l, ({side(right)}) r"
    ).fetchone()[0]
    return None if level is None else comparison.labels[level]


def pid(first17: str) -> str:
    return first17 + check_char(first17)


ID_A = pid("45012419850409522")
B = dt.date(1985, 4, 9)


def idrow(number: str | None, status: str, birth: dt.date | None = B) -> dict:
    usable = status in ("valid", "upgraded_15", "bad_checksum") or (
        status == "malformed" and number is not None and len(number) == 18
    )
    suspect = usable and status in ("bad_checksum", "malformed")
    return {"id_number": number, "id_usable": usable, "id_suspect": suspect, "birth_date": birth}


def typo(number: str, pos: int) -> str:
    d = str((int(number[pos]) + 1) % 10)
    return number[:pos] + d + number[pos + 1 :]


def swap(number: str, pos: int) -> str:
    return number[:pos] + number[pos + 1] + number[pos] + number[pos + 2 :]


ID_CASES = [
    (idrow(ID_A, "valid"), idrow(ID_A, "valid"), "id exact"),
    (idrow(ID_A, "valid"), idrow(ID_A, "upgraded_15"), "id exact"),
    (
        idrow(ID_A, "valid"),
        idrow(ID_A[:17] + ("0" if ID_A[17] != "0" else "1"), "bad_checksum"),
        "id check character typo",
    ),
    (idrow(ID_A, "valid"), idrow(typo(ID_A, 14), "bad_checksum"), "id one digit mistyped"),
    (idrow(ID_A, "valid"), idrow(swap(ID_A, 12), "bad_checksum"), "id two digits transposed"),
    # two valid numbers one digit apart are two people, not a typo
    (idrow(ID_A, "valid"), idrow(pid(typo(ID_A, 14)[:17]), "valid"), "id different"),
    (idrow(ID_A, "valid"), idrow(pid("45012419850409533"), "valid"), "id different"),
    # a transposition inside the birth date makes an impossible date: still a typo of ID_A
    (idrow(ID_A, "valid"), idrow(swap(ID_A, 10), "malformed"), "id two digits transposed"),
    (idrow(ID_A, "valid"), idrow(None, "missing"), "no id, birth date exact"),
    (
        idrow(ID_A, "valid"),
        idrow(None, "missing", dt.date(1985, 4, 8)),
        "no id, birth date one digit off",
    ),
    (
        idrow(ID_A, "valid"),
        idrow("12345", "malformed", dt.date(1990, 1, 1)),
        "no id, birth date differs",
    ),
    (idrow(ID_A, "valid"), idrow(None, "missing", None), None),
]


@pytest.mark.parametrize(("left", "right", "expected"), ID_CASES)
def test_citizen_id_levels(left: dict, right: dict, expected: str | None) -> None:
    assert _level(C.citizen_id(), left, right) == expected
    assert _level(C.citizen_id(), right, left) == expected  # symmetric


NAME_CASES = [
    ("韦小宝", "wei xiao bao", "韦小宝", "wei xiao bao", "name exact"),
    ("韦小宝", "wei xiao bao", "维小宝", "wei xiao bao", "name homophone"),
    ("王玉兰", "wang yu lan", "玉玉兰", "yu yu lan", "name one character off"),
    ("蓝秀英", "lan xiu ying", "蓝秀莹", "lan xiu yin", "name one character off"),
    ("梁振", "liang zhen", "梁忠", "liang zhong", "name one of two characters off"),
    ("覃明", "qin ming", "谭敏", "tan min", "name differs"),
    ("韦小宝", "wei xiao bao", None, None, None),
]


@pytest.mark.parametrize(("ln", "lp", "rn", "rp", "expected"), NAME_CASES)
def test_chinese_name_levels(ln, lp, rn, rp, expected) -> None:
    left = {"name": ln, "name_pinyin": lp}
    right = {"name": rn, "name_pinyin": rp}
    assert _level(C.chinese_name(), left, right) == expected


def test_pinyin_similar_level() -> None:
    left = {"name": "黄春花", "name_pinyin": "huang chun hua"}
    right = {"name": "黄纯华子", "name_pinyin": "huang chun hua zi"}
    assert _level(C.chinese_name(), left, right) == "name pinyin similar"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("smith", "smith", "surname exact"),
        ("smith", "smyth", "surname jaro-winkler >= 0.85"),
        ("smith", "jones", "surname differs"),
        (None, "x", None),
    ],
)
def test_string_levels(a, b, expected) -> None:
    assert _level(C.string("surname", (0.92, 0.85)), {"surname": a}, {"surname": b}) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("5304218", "5304218", "ssn exact"),
        ("5304218", "5304281", "ssn within 1 edits"),
        ("5304218", "5304000", "ssn differs"),
    ],
)
def test_edit_distance_levels(a, b, expected) -> None:
    assert _level(C.edit_distance("ssn", (1, 2)), {"ssn": a}, {"ssn": b}) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (B, B, "birth_date exact"),
        (B, dt.date(1985, 4, 19), "birth_date one digit off"),
        (B, dt.date(1985, 12, 1), "birth_date same year"),
        (B, dt.date(1990, 1, 1), "birth_date differs"),
    ],
)
def test_date_levels(a, b, expected) -> None:
    assert _level(C.date("birth_date"), {"birth_date": a}, {"birth_date": b}) == expected


# -- end to end on a planted population ---------------------------------------------------

SURNAMES = "韦蓝黄覃李陆潘蒙梁罗农陈卢莫周唐何"
GIVEN = "明华强伟芳秀英玉兰红金福贵忠勇德志海春梅丽军平安国荣桂凤珍生"


@pytest.fixture(scope="module")
def linked(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """2,000 beneficiaries, 1,200 vehicle records: 600 of beneficiaries (with noise), 600 not,
    plus planted hard cases. Returns (manifest path, planted record key -> expected person)."""
    rng = random.Random(7)
    root = tmp_path_factory.mktemp("link")
    people = []
    used = set()
    for i in range(2000):
        while True:
            birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 60))
            first17 = f"450124{birth:%Y%m%d}{rng.randrange(1000):03d}"
            if first17 not in used:
                used.add(first17)
                break
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))
        people.append((f"P{i:05d}", f"H{i // 4:04d}", name, pid(first17), birth))
    write_csv(
        root / "poverty.csv",
        ["人员编号", "户编号", "姓名", "证件号码"],
        [(k, h, n, idn) for k, h, n, idn, _ in people],
        "utf-8",
    )
    vehicles = []
    expected: dict[str, str | None] = {}
    for j in range(600):  # true links, some with noise that must still link
        k, _, name, idn, birth = people[j]
        kind = j % 6
        if kind == 1:
            idn = typo(idn, 7 + j % 10)
        elif kind == 2:
            idn = swap(idn, 8 + j % 8) if idn[8 + j % 8] != idn[9 + j % 8] else idn
        elif kind == 3:
            idn = idn[:6] + idn[8:17] if birth.year < 2000 else idn  # 15-digit legacy form
        elif kind == 4:
            idn = ""
        vehicles.append((f"V{j:05d}", name, idn, birth.strftime("%Y-%m-%d")))
        expected[f"V{j:05d}"] = k
    for j in range(600, 1200):  # strangers
        birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 60))
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        first17 = f"450125{birth:%Y%m%d}{rng.randrange(1000):03d}"
        vehicles.append((f"V{j:05d}", name, pid(first17), birth.strftime("%Y-%m-%d")))
        expected[f"V{j:05d}"] = None
    # Hard cases.
    k, _, name, idn, birth = people[1500]
    other = pid(f"450124{birth:%Y%m%d}{(int(idn[14:17]) + 2) % 1000:03d}")
    vehicles.append(("DECOY_SAME_NAME_BIRTH", name, other, birth.strftime("%Y-%m-%d")))
    expected["DECOY_SAME_NAME_BIRTH"] = None
    k2, _, name2, idn2, birth2 = people[1501]
    near = pid(typo(idn2, 15)[:17])
    vehicles.append(("DECOY_NEAR_ID", "欧阳正", near, birth2.strftime("%Y-%m-%d")))
    expected["DECOY_NEAR_ID"] = None
    k3, _, name3, idn3, birth3 = people[1502]
    pos = next(p for p in range(6, 16) if idn3[p] != idn3[p + 1])
    vehicles.append(("TRANSPOSED", name3, swap(idn3, pos), ""))
    expected["TRANSPOSED"] = k3
    write_csv(
        root / "vehicles.csv", ["登记编号", "所有人", "身份证明号码", "出生日期"], vehicles, "utf-8"
    )
    manifest = write_manifest(
        root,
        {
            "poverty": {
                "role": "beneficiaries",
                "path": "poverty.csv",
                "key": "人员编号",
                "household": "户编号",
                "fields": {"name": "姓名", "id_number": "证件号码"},
            },
            "vehicles": {
                "path": "vehicles.csv",
                "key": "登记编号",
                "fields": {"name": "所有人", "id_number": "身份证明号码", "birth_date": "出生日期"},
            },
        },
    )
    m = load_manifest(manifest)
    load_workspace(m)
    link_workspace(m)
    return manifest, expected  # type: ignore[return-value]


def _links(manifest: Path) -> dict[str, tuple[str, str]]:
    con = duckdb.connect(str(manifest.parent / "ws.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT record_key, person_key, decision FROM links").fetchall()
    finally:
        con.close()
    return {r: (p, d) for r, p, d in rows}


def test_same_name_and_birth_date_is_not_linked(linked) -> None:
    manifest, _ = linked
    assert "DECOY_SAME_NAME_BIRTH" not in _links(manifest)


def test_valid_id_one_digit_away_with_other_name_is_not_linked(linked) -> None:
    manifest, _ = linked
    assert "DECOY_NEAR_ID" not in _links(manifest)


def test_transposed_digits_link_when_name_agrees(linked) -> None:
    manifest, expected = linked
    assert _links(manifest)["TRANSPOSED"] == (expected["TRANSPOSED"], "match")


def test_planted_population_precision_and_recall(linked) -> None:
    manifest, expected = linked
    links = {r: p for r, (p, d) in _links(manifest).items() if d == "match"}
    true = {r: p for r, p in expected.items() if p}
    tp = sum(1 for r, p in links.items() if true.get(r) == p)
    assert tp / len(links) == 1.0  # precision
    assert tp / len(true) >= 0.99  # recall, every noise kind included


def test_link_cli_and_evaluate(runner, linked, tmp_path: Path) -> None:
    manifest, expected = linked
    truth = tmp_path / "truth"
    truth.mkdir()
    lines = ["registry,record_key,person_key"] + [
        f"vehicles,{r},{p}" for r, p in expected.items() if p
    ]
    (truth / "links.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run(runner, "link", manifest)
    assert result.exit_code == 0, result.output
    assert "vehicles" in result.output and "id_variants" in result.output
    result = run(runner, "evaluate", manifest, "--truth", truth, "--json")
    assert result.exit_code == 0, result.output
    import json

    overall = json.loads(result.output)["overall"]
    assert overall["precision"] == 1.0 and overall["recall"] >= 0.99


def test_link_before_load_is_a_clear_error(runner, tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("k,姓名\n1,韦一\n", encoding="utf-8")
    manifest = write_manifest(
        tmp_path,
        {
            "poverty": {
                "role": "beneficiaries",
                "path": "p.csv",
                "key": "k",
                "fields": {"name": "姓名"},
            }
        },
    )
    result = run(runner, "link", manifest)
    assert result.exit_code == 2
    assert "not loaded" in result.output or "not found" in result.output


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("马山县白山镇合群村12号", "address in the same village"),
        ("马山县白山镇民族大道", "address in the same township"),
        ("马山县林圩镇合群村", "address elsewhere"),
        (None, None),
    ],
)
def test_residence_levels(address, expected) -> None:
    left = {"township": "白山镇", "village": "合群村"}
    assert _level(C.residence(), left, {"address": address}) == expected


def test_runaway_blocking_pass_is_counted_skipped_and_reported(
    runner, linked, tmp_path: Path
) -> None:
    import yaml

    manifest, _ = linked
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    data["linkage"] = {"max_block_pairs": 500}  # the name passes (about 600 pairs) explode
    data["database"] = str(manifest.parent / "ws.duckdb")
    small = tmp_path / "small.yaml"
    for reg in data["registries"].values():
        reg["path"] = str(manifest.parent / reg["path"])
    small.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run(runner, "link", small)
    assert result.exit_code == 0, result.output
    assert "skipped: too many pairs" in result.output
    assert "would produce" in result.stderr and "linkage.max_block_pairs" in result.stderr


# -- blocking keys: parsed, then built into SQL ----------------------------------------------


@pytest.mark.parametrize(
    ("key", "parts", "sql"),
    [
        ("name", ("name",), 'l."name"'),
        # The column is a substring of the function's name: text rewriting gave l."ye"ar(ye).
        ("year(ye)", ("ye", "year"), 'year(l."ye")'),
        ("year(birth_date)", ("birth_date", "year"), 'year(l."birth_date")'),
        ("substr(sub, 1, 2)", ("sub", "substr", (1, 2)), 'substr(l."sub", 1, 2)'),
        ("substr( str ,3)", ("str", "substr", (3,)), 'substr(l."str", 3)'),
        ("left(le, 4)", ("le", "left", (4,)), 'left(l."le", 4)'),
        ("  left(eft,1)  ", ("eft", "left", (1,)), 'left(l."eft", 1)'),
    ],
)
def test_blocking_key_sql_is_built_from_its_parts(key: str, parts: tuple, sql: str) -> None:
    from linkaudit.link.blocking import BlockingKey, key_column, key_sql, parse_key

    parsed = BlockingKey(*parts)
    assert parse_key(key) == parsed
    assert key_sql(parsed, "l") == sql
    assert key_sql(parsed, "r") == sql.replace("l.", "r.")
    assert key_column(key) == parsed.column


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("lower(name)", "lower() is not allowed"),
        ("year(birth_date, 1)", "wrong number of arguments"),
        ("left(name, 1, 2)", "wrong number of arguments"),
        ("substr(name)", "wrong number of arguments"),
        ("substr(name, 0, 2)", "positions and lengths start at 1"),
        ("year(birth_date", "must be a column name, year(col), substr(col, a, b) or left(col, n)"),
        ("name; DROP TABLE x", "must be a column name"),
        ("substr(name, -1, 2)", "must be a column name"),
    ],
)
def test_blocking_key_rejected(key: str, message: str) -> None:
    from linkaudit.link.blocking import parse_key

    with pytest.raises(ValueError, match=re.escape(message)):
        parse_key(key)


def test_blocking_keys_with_functions_find_the_right_pairs(tmp_path: Path) -> None:
    """year(ye), substr(sub, a, b) and left(le, n) on a tiny workspace: exactly the pairs whose
    keys agree, through the pass counts and the pairs the linker joins on."""
    from linkaudit.engines.duckdb import Workspace
    from linkaudit.link.blocking import count_pairs_sql, pairs_sql, parse_passes

    header = ["key", "姓名", "ye", "sub", "le"]
    write_csv(
        tmp_path / "ben.csv",
        header,
        [
            ("B1", "韦明", "1985-04-09", "ABCD", "4501"),
            ("B2", "蓝玉", "1990-01-01", "ABXX", "4502"),
            ("B3", "黄荣", "1985-12-31", "ZZCD", "9999"),
        ],
        "utf-8",
    )
    write_csv(
        tmp_path / "dept.csv",
        header,
        [
            ("D1", "韦明", "1985-01-01", "XBCY", "4501"),  # year B1, B3; substr B1; left B1, B2
            ("D2", "蓝玉", "1991-01-01", "QBXQ", "4503"),  # substr B2; left B1, B2
            ("D3", "黄荣", "", "", ""),  # no keys: no pairs
        ],
        "utf-8",
    )
    fields = {"name": "姓名", "ye": "ye", "sub": "sub", "le": "le"}
    types = {"ye": "date"}
    blocking = [["year(ye)"], ["substr(sub, 2, 2)"], ["left(le, 3)"], ["year(ye)", "left(le, 4)"]]
    path = write_manifest(
        tmp_path,
        {
            "ben": {
                "role": "beneficiaries",
                "path": "ben.csv",
                "key": "key",
                "fields": fields,
                "types": types,
            },
            "dept": {"path": "dept.csv", "key": "key", "fields": fields, "types": types},
        },
        linkage={"blocking": blocking},
    )
    manifest = load_manifest(path)
    load_workspace(manifest)
    expected = [
        {("B1", "D1"), ("B3", "D1")},
        {("B1", "D1"), ("B2", "D2")},
        {("B1", "D1"), ("B1", "D2"), ("B2", "D1"), ("B2", "D2")},
        {("B1", "D1")},
    ]
    ws = Workspace(manifest.database)
    try:
        for p, want in zip(parse_passes(blocking), expected, strict=True):
            got = set(ws.rows(pairs_sql(p, "reg_ben", "reg_dept")))
            assert got == want, p.name
            assert ws.value(count_pairs_sql(p, "reg_ben", "reg_dept")) == len(want)
    finally:
        ws.close()
    report = link_workspace(manifest)
    assert [(c.name, c.pairs, c.skipped) for c in report.passes] == [
        ("year(ye)", 2, False),
        ("substr(sub, 2, 2)", 2, False),
        ("left(le, 3)", 4, False),
        ("year(ye) + left(le, 4)", 1, False),
    ]


def test_double_reading_surname_matches_homophones_under_either() -> None:
    cmp = C.chinese_name()
    qin = {"name": "覃明", "name_pinyin": "qin ming"}
    assert _level(cmp, qin, {"name": "谭明", "name_pinyin": "tan ming"}) == "name homophone"
    assert _level(cmp, {"name": "谭明", "name_pinyin": "tan ming"}, qin) == "name homophone"
    assert _level(cmp, qin, {"name": "秦明", "name_pinyin": "qin ming"}) == "name homophone"
    # the other reading is the surname's only: 谭 has one
    assert _level(cmp, {"name": "谭敏", "name_pinyin": "tan min"}, qin) != "name homophone"
