"""Privacy: ID numbers (keys that are ID numbers included) never reach an output or a message
unmasked; CSV cells never run as formulas; temp files are private and go; rule SQL cannot touch
files. (Issue #9, "Privacy and security".)"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest

from conftest import POVERTY_REG, run, write_csv, write_manifest
from linkaudit import load_manifest
from linkaudit.audit.run import run_audit
from linkaudit.privacy import (
    TMP_PREFIX,
    mask_expr,
    mask_frame,
    mask_sql,
    mask_text,
    neutralise_formulas,
    private_tmpdir,
    remove_stale_tmpdirs,
)
from linkaudit.report import outputs
from linkaudit.report.outputs import write_csv as write_output_csv
from linkaudit.report.outputs import write_xlsx

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "mashan"
#: Any standalone ID-shaped token: 15 digits, or 17 digits + digit/X/x.
FULL_ID = re.compile(r"(?<![0-9A-Za-z_])(?:[0-9]{15}|[0-9]{17}[0-9Xx])(?![0-9A-Za-z_])")
TOKEN = re.compile(r"(?<![0-9A-Za-z_])[0-9A-Za-z]{15,19}(?![0-9A-Za-z_])")


# -- the masking functions -------------------------------------------------------------------

MASK_CASES = [
    ("450124199001011234", "450124********1234"),
    ("45012419900101123X", "450124********123X"),
    ("45012419900101123x", "450124********123x"),  # lower-case check character
    ("450124900101123", "450124*****1123"),  # 15-digit ID
    ("P 450124199001011234;450124900101123", "P 450124********1234;450124*****1123"),
    ("扶贫办 450124199001011234 韦小宝", "扶贫办 450124********1234 韦小宝"),
    ("身份证450124199001011234号", "身份证450124********1234号"),  # Chinese around it
    ("4501242001050423199", "450124*********3199"),  # a digit doubled (invalid_id lists it)
    ("45012420000325939", "450124*******5939"),  # a digit lost
    ("45O124199108103062", "45O124********3062"),  # a letter typed for a digit
    ("GS00000033", "GS00000033"),  # record keys stay
    ("V450124199001011234", "V450124199001011234"),  # inside a longer code: not an ID
    ("20150302123456", "20150302123456"),  # a 14-digit timestamp
    ("LSVAU2180N2183294", "LSVAU2180N2183294"),  # a VIN
    (
        "Conversion Error: '45012419700101001X' to INT64",
        "Conversion Error: '450124********001X' to INT64",
    ),
]


@pytest.mark.parametrize(("text", "masked"), MASK_CASES)
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


def test_polars_and_sql_masking_agree_with_mask_text() -> None:
    texts = [t for t, _ in MASK_CASES]
    expected = [m for _, m in MASK_CASES]
    frame = pl.DataFrame({"t": texts})
    assert frame.select(mask_expr(pl.col("t"))).get_column("t").to_list() == expected
    con = duckdb.connect()
    assert [con.execute(f"SELECT {mask_sql('$1')}", [t]).fetchone()[0] for t in texts] == expected


def test_mask_frame_leaves_numbers_alone() -> None:
    frame = pl.DataFrame({"k": ["450124199001011234"], "n": [450124199001011234], "p": [-0.5]})
    out = mask_frame(frame)
    assert out.row(0) == ("450124********1234", 450124199001011234, -0.5)


# -- 1. keys that are ID numbers -------------------------------------------------------------


def _id_keyed_workspace(root: Path) -> Path:
    """The Mashan sample with the register keyed by its ID column (no other key), the common
    layout; a lower-case check character and a 15-digit ID among the keys."""
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    manifest = root / "linkaudit.yaml"
    text = manifest.read_text(encoding="utf-8")
    assert "    key: 人员编号\n" in text and "      id_number: 证件号码\n" in text
    manifest.write_text(
        text.replace("    key: 人员编号\n", "    key: 证件号码\n"), encoding="utf-8"
    )
    path = root / "data" / "poverty.csv"
    frame = pl.read_csv(path, infer_schema=False)
    ids = pl.col("证件号码")
    # Record keys must be unique and present: the sample's planted duplicates and blanks go.
    frame = frame.filter(ids.is_not_null() & ~ids.is_duplicated())
    x_row = frame.with_row_index().filter(ids.str.ends_with("X")).get_column("index")[0]
    d_row = frame.with_row_index().filter(ids.str.contains(r"^[0-9]{6}19[0-9]{9}[0-9]$"))
    d_row = d_row.get_column("index")[0]
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == x_row)
        .then(ids.str.to_lowercase())
        .when(pl.int_range(pl.len()) == d_row)
        .then(ids.str.slice(0, 6) + ids.str.slice(8, 9))  # the old 15-digit form
        .otherwise(ids)
        .alias("证件号码")
    )
    frame.write_csv(path)
    return manifest


def _input_ids(root: Path) -> set[str]:
    """Every ID value of every input file (valid or not)."""
    data = root / "data"
    out = set(pl.read_csv(data / "poverty.csv", infer_schema=False).get_column("证件号码"))
    vehicles = (data / "vehicles.csv").read_bytes().decode("gb18030")
    out |= set(pl.read_csv(vehicles.encode(), infer_schema=False).get_column("身份证明号码"))
    out |= set(pl.read_parquet(data / "property.parquet").get_column("证件号码"))
    out |= set(pl.read_ndjson(data / "business.jsonl").get_column("身份证号码"))
    deaths = (data / "deaths.csv").read_bytes().decode("utf-8-sig")
    out |= set(pl.read_csv(deaths.encode(), infer_schema=False).get_column("公民身份号码"))
    medical = pl.read_csv(data / "medical.csv", infer_schema=False)
    out |= set(medical.get_column("身份证号码"))
    return {v for v in out if v and len(v) >= 15}


def _xlsx_text(path: Path) -> str:
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return "\n".join(
            str(v)
            for ws in wb.worksheets
            for row in ws.iter_rows(values_only=True)
            for v in row
            if v is not None
        )
    finally:
        wb.close()


def _assert_no_full_id(text: str, ids: set[str], where: str) -> None:
    shaped = FULL_ID.findall(text)
    assert not shaped, f"{where}: full IDs {shaped[:3]}"
    leaked = [t for t in TOKEN.findall(text) if t in ids]
    assert not leaked, f"{where}: input IDs {leaked[:3]}"


def _query(root: Path, sql: str, *params: object) -> list[tuple]:
    con = duckdb.connect(str(root / "linkaudit.duckdb"), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()  # an open connection would stop the next command from opening the file


@pytest.fixture(scope="module")
def id_keyed(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    root = tmp_path_factory.mktemp("idkeys") / "mashan"
    manifest = _id_keyed_workspace(root)
    result = run(CliRunner(), "audit", manifest)
    return root, manifest, result


def test_id_keys_are_masked_in_every_output_file(id_keyed) -> None:
    root, _, result = id_keyed
    assert result.exit_code == 0, result.output
    ids = _input_ids(root)
    assert len(ids) > 9000
    out = root / "out"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "exceptions.csv",
        "exceptions.xlsx",
        "links.csv",
        "report.html",
        "summary.json",
    ]
    texts = {
        name: _xlsx_text(out / name)
        if name.endswith(".xlsx")
        else (out / name).read_text(encoding="utf-8-sig")
        for name in names
    }
    # report.html inlines plotly.js (library code, whose numeric constants look like IDs):
    # the report's own text is what is checked.
    library = re.compile(r'<script id="plotly-js">.*?</script>', re.S)
    assert len(library.findall(texts["report.html"])) == 1
    texts["report.html"] = library.sub("", texts["report.html"])
    for name, text in texts.items():
        _assert_no_full_id(text, ids, name)
    # The keys are there, masked: the register's person keys and the keys of links.csv.
    exceptions = pl.read_csv(out / "exceptions.csv", infer_schema=False)
    person_keys = exceptions.get_column("person_key").str.split(";").explode()
    assert person_keys.str.contains(r"^[0-9]{6}\*{8}[0-9]{3}[0-9Xx]$").mean() > 0.95
    assert "*****" in texts["exceptions.xlsx"]
    links = pl.read_csv(out / "links.csv", infer_schema=False)
    assert links.height > 500
    assert links.get_column("person_key").str.contains(r"^[0-9]{6}\*+[0-9]{3}[0-9Xx]$").all()
    # The 15-digit and the lower-case-x keys are among the keys checked above.
    raw = pl.read_csv(root / "data" / "poverty.csv", infer_schema=False).get_column("证件号码")
    assert raw.str.contains(r"^[0-9]{15}$").sum() == 1 and raw.str.ends_with("x").sum() == 1
    assert set(raw.filter(raw.str.contains(r"^[0-9]{15}$|x$"))) <= ids


def test_id_keys_warned_once_in_output_and_summary(id_keyed) -> None:
    root, _, result = id_keyed
    warning = "registry 'poverty': the record key column '证件号码' holds ID numbers"
    assert result.output.count(warning) == 1
    summary = json.loads((root / "out" / "summary.json").read_text(encoding="utf-8"))
    assert [w for w in summary["warnings"] if warning in w] == [
        next(line for line in result.output.splitlines() if warning in line).removeprefix(
            "warning: "
        )
    ]
    assert "masked" in summary["warnings"][0]


def test_explain_masks_keys_and_accepts_the_masked_key_or_case_id(runner, id_keyed) -> None:
    root, manifest, _ = id_keyed
    ids = _input_ids(root)
    exceptions = pl.read_csv(root / "out" / "exceptions.csv", infer_schema=False)
    keys = pl.Series([r[0] for r in _query(root, "SELECT _key FROM reg_poverty")])
    masked_counts = keys.map_elements(mask_text, return_dtype=pl.Utf8).value_counts()
    unique = masked_counts.filter(pl.col("count") == 1).get_column("")
    shared_counts = masked_counts.filter(pl.col("count") > 1)
    shared = shared_counts.get_column("")
    shared_n = shared_counts.get_column("count")[0]
    cars = exceptions.filter(pl.col("rule_id") == "car_owner")
    case = cars.filter(pl.col("person_key").is_in(unique.implode())).row(0, named=True)
    full_key = _query(root, "SELECT unit_key FROM run_cases WHERE case_id = ?", case["case_id"])
    full_key = full_key[0][0]
    # ~9,600 IDs of one county share region and last four often: a masked key can be ambiguous.
    ambiguous = run(runner, "explain", manifest, shared[0])
    assert ambiguous.exit_code == 2
    assert (
        f"the masked key '{shared[0]}' fits {shared_n} registrants or households"
        in ambiguous.output
    )
    assert "use the case id (疑点编号)" in ambiguous.output
    assert FULL_ID.fullmatch(full_key) and mask_text(full_key) == case["person_key"]
    answers = {}
    for key in (full_key, case["person_key"], case["case_id"]):
        for extra in ((), ("--json",)):
            result = run(runner, "explain", manifest, key, *extra)
            assert result.exit_code == 0, result.output
            _assert_no_full_id(result.output, ids, f"explain {key} {extra}")
            answers[(key, extra)] = result.output
    data = json.loads(answers[(case["case_id"], ("--json",))])
    assert data["persons"][0]["person_key"] == case["person_key"]
    assert {f["rule_id"] for f in data["findings"]} >= {"car_owner"}
    same = json.loads(answers[(full_key, ("--json",))])
    assert same["findings"] == data["findings"]
    assert same["key"] == case["person_key"]  # the key typed in is masked in the answer too
    assert f"explain {case['person_key']}" in answers[(full_key, ())]
    unmasked = run(runner, "explain", manifest, full_key, "--json", "--unmask")
    assert json.loads(unmasked.output)["persons"][0]["person_key"] == full_key


def test_verify_import_maps_masked_rows_back_by_case_id(runner, id_keyed, tmp_path) -> None:
    root, manifest, _ = id_keyed
    wb = openpyxl.load_workbook(root / "out" / "exceptions.xlsx")
    sheet = next(ws for ws in wb.worksheets if ws.title == "家庭成员拥有汽车")
    header = [c.value for c in sheet[1]]
    case_id = sheet.cell(2, header.index("疑点编号") + 1).value
    masked_key = sheet.cell(2, header.index("人员编号") + 1).value
    assert "********" in masked_key
    sheet.cell(2, header.index("核实结果") + 1).value = "属实"
    wb.save(tmp_path / "returned.xlsx")
    result = run(runner, "verify", "import", tmp_path / "returned.xlsx", "-m", manifest)
    assert result.exit_code == 0, result.output
    assert "imported 1 outcomes" in result.output and "confirmed 1" in result.output
    stored = _query(root, "SELECT outcome, unit_key FROM verifications WHERE case_id = ?", case_id)
    # Stored against the real (unmasked) key of that case.
    assert len(stored) == 1 and stored[0][0] == "confirmed"
    assert FULL_ID.fullmatch(stored[0][1]) and mask_text(stored[0][1]) == masked_key
    status = run(runner, "verify", "status", "-m", manifest)
    assert status.exit_code == 0
    _assert_no_full_id(status.output, _input_ids(root), "verify status")


def test_diff_and_second_run_show_no_full_id(runner, id_keyed, tmp_path) -> None:
    root, manifest, _ = id_keyed
    ids = _input_ids(root)
    first_csv = tmp_path / "first.csv"
    shutil.copy(root / "out" / "exceptions.csv", first_csv)
    again = run(runner, "audit", manifest)
    assert again.exit_code == 0, again.output
    _assert_no_full_id(again.output, ids, "second audit")
    for args in (
        ("diff", "previous", "latest", "-m", manifest),
        ("diff", "previous", "latest", "-m", manifest, "--json"),
        ("diff", first_csv, root / "out" / "exceptions.csv"),
    ):
        result = run(runner, *args)
        assert result.exit_code == 0, result.output
        _assert_no_full_id(result.output, ids, " ".join(map(str, args)))
    for name in ("exceptions.csv", "links.csv", "summary.json"):
        _assert_no_full_id(
            (root / "out" / name).read_text(encoding="utf-8-sig"), ids, f"second {name}"
        )


def test_evidence_field_holding_ids_is_masked_and_warned(runner, tmp_path) -> None:
    """A rule listing as evidence a mapped field that holds ID numbers (here the vehicle
    owner's ID copied into a field of its own)."""
    root = tmp_path / "m"
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns("*.duckdb*", "out"))
    manifest = root / "linkaudit.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(
        text.replace(
            "      plate: 号牌号码\n", "      plate: 号牌号码\n      owner_id: 身份证明号码\n"
        ),
        encoding="utf-8",
    )
    rules = root / "rules"
    rules.mkdir()
    (rules / "car.yaml").write_text(
        "id: car_with_owner_id\ntitle: {zh: 汽车, en: Car}\nseverity: ineligible\n"
        "registry: vehicles\ncondition: vehicle_type = '小型轿车'\n"
        "evidence: [plate, owner_id]\n",
        encoding="utf-8",
    )
    result = run(runner, "audit", manifest, "--rules", rules)
    assert result.exit_code == 0, result.output
    assert (
        "registry 'vehicles': field 'owner_id' (column '身份证明号码'), evidence of rule "
        "car_with_owner_id, holds ID numbers"
    ) in result.output
    exceptions = (root / "out" / "exceptions.csv").read_text(encoding="utf-8-sig")
    assert "owner_id=450124********" in exceptions
    _assert_no_full_id(exceptions, _input_ids(root), "exceptions.csv")
    _assert_no_full_id(_xlsx_text(root / "out" / "exceptions.xlsx"), _input_ids(root), "xlsx")


def test_every_sheet_is_masked_quarantine_and_summary_included(tmp_path: Path) -> None:
    full = "450124199001011234"
    exceptions = pl.DataFrame(
        {c: [None] for c in outputs.EXCEPTION_COLUMNS},
        schema=dict.fromkeys(outputs.EXCEPTION_COLUMNS, pl.Utf8),
    ).with_columns(
        pl.lit("r1").alias("rule_id"),
        pl.lit(full).alias("person_key"),
        pl.lit(f"扶贫办 {full} 韦小宝").alias("evidence"),
        pl.lit("new").alias("status"),
    )
    from linkaudit.audit.rules import Rule

    rule = Rule.model_validate(
        {
            "id": "r1",
            "title": {"zh": "规则", "en": "Rule"},
            "severity": "risk",
            "registry": "poverty",
            "condition": "TRUE",
            "source": "x.yaml",
        }
    )
    quarantine = pl.DataFrame(
        {
            "registry": ["poverty"],
            "file": ["p.csv"],
            "row": [7],
            "column": ["证件号码"],
            "reason": [f"unreadable value {full}"],
        }
    )
    summary = [
        {
            "rule_id": "r1",
            "title_zh": "规则",
            "title_en": "Rule",
            "severity": "risk",
            "scope": "person",
            "persons": 1,
            "households": 1,
            "evidence_records": 0,
            "skipped": f"note {full}",
        }
    ]
    path = tmp_path / "out" / "exceptions.xlsx"
    write_xlsx(exceptions, [rule], summary, quarantine, path, changes={"new": 1})
    wb = openpyxl.load_workbook(path)
    assert len(wb.worksheets) == 4  # summary, new, the rule's, quarantine
    for ws in wb.worksheets:
        text = "\n".join(str(v) for row in ws.iter_rows(values_only=True) for v in row if v)
        assert full not in text, ws.title
        assert "450124********1234" in text, ws.title


# -- 2. messages ----------------------------------------------------------------------------


def _small_workspace(
    root: Path, ids: tuple[str, str] = ("450124198504095224", "45012419700101001X")
) -> Path:
    """A register of two, with one user rule of its own (rules: [rules/])."""
    root.mkdir(parents=True, exist_ok=True)
    write_csv(
        root / "poverty.csv",
        ["人员编号", "户编号", "姓名", "证件号码", "人均纯收入(元)", "脱贫年度"],
        [
            ("P001", "H01", "韦小宝", ids[0], "2600", "2014"),
            ("P002", "H01", "蓝玉", ids[1], "2600", "2014"),
        ],
        "utf-8",
    )
    _user_rule(root, "id_status <> 'valid'", rule_id="not_valid")
    return write_manifest(root, {"poverty": dict(POVERTY_REG)}, rules=["rules/"], output="out/")


def _user_rule(root: Path, condition: str, rule_id: str = "id_as_number") -> Path:
    (root / "rules").mkdir(exist_ok=True)
    path = root / "rules" / f"{rule_id}.yaml"
    path.write_text(
        f"id: {rule_id}\ntitle: {{zh: 测试, en: Test}}\nseverity: risk\nscope: person\n"
        f'registry: poverty\ncondition: "{condition}"\n',
        encoding="utf-8",
    )
    return path


def test_rule_error_quoting_an_id_is_masked(runner, tmp_path: Path) -> None:
    manifest = _small_workspace(tmp_path / "w")
    rule = _user_rule(tmp_path / "w", "CAST(id_number AS BIGINT) > 0")
    result = run(runner, "audit", manifest)
    assert result.exit_code == 2, result.output
    assert f"{rule}: rule id_as_number: Conversion Error" in result.output
    assert "'450124********001X'" in result.output
    assert "45012419700101001X" not in result.output
    assert "internal error" not in result.output


def test_unexpected_error_text_is_masked(runner, tmp_path: Path, monkeypatch) -> None:
    manifest = _small_workspace(tmp_path / "w")

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("value 45012419700101001X and 450124198504095224 broke it")

    monkeypatch.setattr("linkaudit.audit.run.run_audit", boom)
    result = run(runner, "audit", manifest)
    assert result.exit_code == 3
    assert (
        "internal error: RuntimeError: value 450124********001X and 450124********5224 broke it"
        in result.output
    )


def test_linkaudit_error_message_and_hint_are_masked(runner, tmp_path: Path, monkeypatch) -> None:
    from linkaudit.errors import InputFileError

    manifest = _small_workspace(tmp_path / "w")

    def bad(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise InputFileError("row 3: key 450124198504095224", hint="fix 45012419700101001x")

    monkeypatch.setattr("linkaudit.audit.run.run_audit", bad)
    result = run(runner, "audit", manifest)
    assert result.exit_code == 2
    assert "error: row 3: key 450124********5224" in result.output
    assert "hint: fix 450124********001x" in result.output


# -- 3. temp files ---------------------------------------------------------------------------


def test_xlsx_failure_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    system_tmp = tmp_path / "systmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))  # where $TMPDIR files would go
    out = tmp_path / "ws" / "out"
    seen: dict[str, object] = {}
    from linkaudit.report import sheet_xml

    real = sheet_xml.rows_xml

    def failing(*args):  # type: ignore[no-untyped-def]
        for n, piece in enumerate(real(*args)):
            if n == 3:  # well into the data rows (in the worker thread): temp files are open
                private = sorted((tmp_path / "ws").glob(f"{TMP_PREFIX}*"))
                seen["private"] = private
                seen["files"] = [p for d in private for p in d.iterdir()]
                seen["mode"] = [d.stat().st_mode & 0o777 for d in private]
                seen["system"] = list(system_tmp.iterdir())
                raise OSError(28, "No space left on device")
            yield piece

    monkeypatch.setattr(sheet_xml, "rows_xml", failing)
    monkeypatch.setattr(sheet_xml, "CHUNK_ROWS", 10)
    frame = pl.DataFrame({c: ["450124199001011234"] * 100 for c in outputs.EXCEPTION_COLUMNS})
    frame = frame.with_columns(pl.lit("r1").alias("rule_id"), pl.lit("new").alias("status"))
    from linkaudit.audit.rules import Rule

    rule = Rule.model_validate(
        {
            "id": "r1",
            "title": {"zh": "规则", "en": "Rule"},
            "severity": "risk",
            "registry": "poverty",
            "condition": "TRUE",
            "source": "x.yaml",
        }
    )
    empty_q = pl.DataFrame(schema={"registry": pl.Utf8, "file": pl.Utf8, "row": pl.Int64})
    with pytest.raises(OSError, match="No space left"):
        write_xlsx(frame, [rule], [], empty_q, out / "exceptions.xlsx")
    # While writing: one private folder (0700) beside out/, holding the workbook xlsxwriter
    # wrote and the one being written; nothing in the system temp folder.
    assert len(seen["private"]) == 1 and seen["mode"] == [0o700]  # type: ignore[arg-type]
    assert len(seen["files"]) >= 2 and seen["system"] == []  # type: ignore[arg-type]
    # After the failure: all gone, no partial output.
    assert list((tmp_path / "ws").glob(f"{TMP_PREFIX}*")) == []
    assert list(system_tmp.iterdir()) == []
    assert list(out.iterdir()) == []


def test_stale_temp_folders_of_killed_runs_are_removed(runner, tmp_path: Path) -> None:
    manifest = _small_workspace(tmp_path / "w")
    dead = tmp_path / "w" / f"{TMP_PREFIX}999999999-abc"  # left by a kill -9
    dead.mkdir()
    (dead / "sheet1.xml").write_text("450124198504095224", encoding="utf-8")
    alive = tmp_path / "w" / f"{TMP_PREFIX}1-def"  # a running process's (pid 1)
    alive.mkdir()
    past = time.time() - 3600
    for p in (dead, alive):
        os.utime(p, (past, past))
    result = run(runner, "audit", manifest)
    assert result.exit_code == 0, result.output
    assert not dead.exists()
    assert alive.exists()
    assert sorted(p.name for p in (tmp_path / "w").glob(".*")) == sorted([".out.sets", alive.name])
    assert sorted(p.name for p in (tmp_path / "w" / "out").iterdir()) == [
        "exceptions.csv",
        "exceptions.xlsx",
        "links.csv",
        "report.html",
        "summary.json",
    ]


def test_private_tmpdir_goes_on_error_and_stale_removal_spares_new_ones(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with private_tmpdir(tmp_path) as folder:
            (folder / "x").write_text("secret", encoding="utf-8")
            raise KeyboardInterrupt
    assert not folder.exists()
    started = time.time()
    old = tmp_path / f"{TMP_PREFIX}999999999-old"
    old.mkdir()
    os.utime(old, (started - 60, started - 60))
    new = tmp_path / f"{TMP_PREFIX}999999999-new"  # made after the run started: not stale
    new.mkdir()
    os.utime(new, (started + 60, started + 60))
    assert remove_stale_tmpdirs([tmp_path], started) == [old]
    assert new.exists()


# -- 4. CSV formula injection -----------------------------------------------------------------


def test_csv_cells_that_would_run_as_formulas_are_neutralised(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "name": ["=蓝燕", "@SUM(1)", "+1", "-x", "\tTAB", "\rCR", "韦小宝", "-5", None],
            "match_probability": [-0.5, 1.0, 0.25, -1.0, 0.0, 0.0, 0.5, -5.0, None],
        }
    )
    path = tmp_path / "x.csv"
    write_output_csv(frame, path)
    golden = (
        "\ufeffname,match_probability\n"
        "'=蓝燕,-0.5\n"
        "'@SUM(1),1.0\n"
        "'+1,0.25\n"
        "'-x,-1.0\n"
        "'\tTAB,0.0\n"
        '"\'\rCR",0.0\n'
        "韦小宝,0.5\n"
        "'-5,-5.0\n"
        ",\n"
    )
    assert path.read_bytes().decode("utf-8") == golden
    assert neutralise_formulas(pl.DataFrame({"n": [-3]})).get_column("n").to_list() == [-3]


def test_audit_csvs_neutralise_formula_names_and_keys(runner, tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    # Names a cadre's Excel would run; invalid IDs so that invalid_id flags each of them.
    rows = [
        ("=1+1", "H01", "=蓝燕", "4501241985040952", "2600", "2014"),
        ("P2", "H01", "@SUM(1)", "4501241985040953", "2600", "2014"),
        ("P3", "H02", "+1", "4501241985040954", "2600", "2014"),
        ("P4", "H02", "-x", "4501241985040955", "2600", "2014"),
    ]
    write_csv(
        root / "poverty.csv",
        ["人员编号", "户编号", "姓名", "证件号码", "人均纯收入(元)", "脱贫年度"],
        rows,
        "utf-8",
    )
    _user_rule(root, "id_status <> 'valid'", rule_id="invalid_id")
    manifest = write_manifest(root, {"poverty": dict(POVERTY_REG)}, rules=["rules/"], output="out/")
    result = run(runner, "audit", manifest)
    assert result.exit_code == 0, result.output
    text = (root / "out" / "exceptions.csv").read_text(encoding="utf-8-sig")
    frame = pl.read_csv(text.encode(), infer_schema=False).filter(pl.col("rule_id") == "invalid_id")
    assert sorted(frame.get_column("name")) == ["'+1", "'-x", "'=蓝燕", "'@SUM(1)"]
    assert "'=1+1" in frame.get_column("person_key").to_list()
    text_columns = [c for c in frame.columns if c != "match_probability"]
    for column in text_columns:
        values = frame.get_column(column).drop_nulls()
        assert not values.str.contains(r"^[=+\-@\t\r]").any(), column
    # The spreadsheet keeps them as text cells, as they were.
    wb = openpyxl.load_workbook(root / "out" / "exceptions.xlsx")
    ws = next(w for w in wb.worksheets if w.title == "测试")
    header = [c.value for c in ws[1]]
    cells = [ws.cell(r, header.index("姓名") + 1) for r in range(2, ws.max_row + 1)]
    assert sorted(c.value for c in cells) == ["+1", "-x", "=蓝燕", "@SUM(1)"]
    assert {c.data_type for c in cells} == {"s"}


# -- 5. rule SQL cannot touch files ------------------------------------------------------------


@pytest.fixture
def allow_list_gap(monkeypatch):  # type: ignore[no-untyped-def]
    """Simulate a hole in the condition allow-list: every parsed expression passes."""
    import sqlglot

    from linkaudit.audit import compile as compile_mod

    monkeypatch.setattr(
        compile_mod,
        "parse_checked",
        lambda text, allow_aggregates=False: sqlglot.parse_one(text, read="duckdb"),
    )


@pytest.mark.parametrize("reader", ["read_text", "read_csv"])
def test_rule_sql_cannot_read_files_even_through_an_allow_list_gap(
    runner, tmp_path: Path, allow_list_gap, reader: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("a\nSECRET\n", encoding="utf-8")
    manifest = _small_workspace(tmp_path / "w")
    rule = _user_rule(
        tmp_path / "w", f"EXISTS (SELECT 1 FROM {reader}('{secret}'))", rule_id="smuggle"
    )
    result = run(runner, "audit", manifest)
    assert result.exit_code == 2, result.output
    assert f"{rule}: rule smuggle:" in result.output
    assert "file system operations are disabled by configuration" in result.output
    assert not (tmp_path / "w" / "out").exists()


def test_rule_sql_cannot_list_files(tmp_path: Path, allow_list_gap) -> None:
    from linkaudit.errors import RuleError

    manifest = _small_workspace(tmp_path / "w")
    _user_rule(tmp_path / "w", f"(SELECT count(*) FROM glob('{tmp_path}/*')) > 0", "smuggle")
    with pytest.raises(RuleError, match="file system operations are disabled"):
        run_audit(load_manifest(manifest))


def test_rules_run_with_external_access_locked(tmp_path: Path) -> None:
    from linkaudit.audit.engine import run_rules
    from linkaudit.audit.run import load_manifest_rules
    from linkaudit.engines.duckdb import Workspace
    from linkaudit.link.engine import link_workspace
    from linkaudit.load import load_workspace

    manifest = load_manifest(_small_workspace(tmp_path / "w"))
    _user_rule(tmp_path / "w", "id_status = 'valid'", rule_id="ok_rule")
    with Workspace(manifest.database) as ws:
        load_workspace(manifest, ws=ws)
        link_workspace(manifest, ws=ws)
        assert ws.row("SELECT current_setting('enable_external_access')") == (True,)
        run_rules(ws, manifest, load_manifest_rules(manifest))
        state = ws.row(
            "SELECT current_setting('enable_external_access'), current_setting('lock_configuration')"
        )
        assert state == (False, True)
        with pytest.raises(duckdb.Error, match="locked"):
            ws.run("SET enable_external_access = true")
        run_rules(ws, manifest, load_manifest_rules(manifest))  # a second run on it works


def test_output_folder_on_another_file_system_still_gets_whole_files(
    tmp_path: Path, monkeypatch
) -> None:
    """The private folder sits beside out/; if out/ is a mount, the rename across file systems
    fails (EXDEV): the file is copied beside its target and renamed there, and nothing stays."""
    import errno

    real = os.replace
    failed: list[str] = []

    def cross_device(src, dst):  # type: ignore[no-untyped-def]
        if TMP_PREFIX in str(src) and not failed:
            failed.append(str(src))
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", cross_device)
    out = tmp_path / "ws" / "out"
    write_output_csv(pl.DataFrame({"k": ["450124199001011234"]}), out / "links.csv")
    assert failed  # the fallback ran
    assert (out / "links.csv").read_text(encoding="utf-8-sig") == "k\n450124********1234\n"
    assert sorted(p.name for p in out.iterdir()) == ["links.csv"]
    assert list((tmp_path / "ws").glob(f"{TMP_PREFIX}*")) == []


def test_evaluate_worst_errors_mask_id_keys(runner, id_keyed) -> None:
    root, manifest, _ = id_keyed
    # truth/ is keyed by 人员编号 while this register is keyed by ID: every link is an 'error',
    # so the worst-errors list is all ID-shaped keys.
    result = run(runner, "evaluate", manifest, "--truth", root / "truth", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["worst_errors"]
    _assert_no_full_id(result.output, _input_ids(root), "evaluate --json")
    table = run(runner, "evaluate", manifest, "--truth", root / "truth")
    _assert_no_full_id(table.output, _input_ids(root), "evaluate")
