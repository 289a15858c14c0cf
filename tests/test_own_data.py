"""A county's own data: registers without a key, department codes, headers spelt otherwise."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import polars as pl
import yaml

from conftest import run, set_manifest


def _registries(root: Path) -> dict:
    return yaml.safe_load((root / "linkaudit.yaml").read_text(encoding="utf-8"))["registries"]


def _read_gb(path: Path) -> pl.DataFrame:
    return pl.read_csv(path.read_bytes().decode("gb18030").encode(), infer_schema=False)


def test_a_register_without_a_key_gets_stable_surrogate_keys(runner, sample_ws: Path) -> None:
    regs = _registries(sample_ws)
    keyed = run(runner, "audit", sample_ws, "--json", "-q")
    assert keyed.exit_code == 0
    keyed_rules = json.loads(keyed.output)["rules"]
    del regs["poverty"]["key"]
    set_manifest(sample_ws, registries=regs)
    first = run(runner, "audit", sample_ws, "--json", "-q", "--baseline", "none")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output)
    assert any("has no key column" in n for n in summary["load_notes"])
    # The same findings as with the register's own key: the key is only a name.
    assert {k: v["persons"] for k, v in summary["rules"].items()} == {
        k: v["persons"] for k, v in keyed_rules.items()
    }
    con = duckdb.connect(str(sample_ws / "linkaudit.duckdb"), read_only=True)
    keys = dict(con.execute('SELECT "_row", _key FROM reg_poverty').fetchall())
    ids = con.execute(
        "SELECT _key, id_number FROM reg_poverty WHERE id_status = 'valid'"
    ).fetchall()
    con.close()
    assert len(set(keys.values())) == len(keys)
    assert all(k.startswith("P") and len(k.split("-")[0]) == 17 for k in keys.values())
    # Keyed with the workspace's secret: hashing every possible ID does not find the key.
    for key, id_number in ids[:200]:
        plain = hashlib.sha256(f"id|{id_number}".encode()).hexdigest()[:16].upper()
        assert key[1:17] != plain and id_number not in key
    # Reloaded from scratch (another run, another day): every person keeps their key.
    again = run(runner, "audit", sample_ws, "--json", "-q", "--force")
    assert json.loads(again.output)["cases"]["new"] == 0
    con = duckdb.connect(str(sample_ws / "linkaudit.duckdb"), read_only=True)
    assert dict(con.execute('SELECT "_row", _key FROM reg_poverty').fetchall()) == keys
    con.close()


def test_value_maps_turn_department_codes_into_the_vocabulary(runner, sample_ws: Path) -> None:
    expected = json.loads(run(runner, "audit", sample_ws, "--json", "-q").output)["rules"]
    vehicles = sample_ws / "data" / "vehicles.csv"
    frame = _read_gb(vehicles)
    codes = {"正常": "A", "注销": "E", "报废": "M"}
    frame = frame.with_columns(pl.col("机动车状态").replace(codes))
    vehicles.write_bytes(frame.write_csv().encode("gb18030"))
    regs = _registries(sample_ws)
    # Unmapped, the codes would count every scrapped car (status 'M' is not 报废).
    plain = run(runner, "audit", sample_ws, "--json", "-q")
    assert (
        json.loads(plain.output)["rules"]["car_owner"]["persons"] > expected["car_owner"]["persons"]
    )
    regs["vehicles"]["values"] = {"vehicle_status": {v: k for k, v in codes.items()}}
    set_manifest(sample_ws, registries=regs)
    mapped = run(runner, "audit", sample_ws, "--json", "-q")
    assert mapped.exit_code == 0, mapped.output
    assert json.loads(mapped.output)["rules"]["car_owner"] == expected["car_owner"]


def test_value_map_codes_that_yaml_reads_as_booleans_are_refused(runner, sample_ws: Path) -> None:
    regs = _registries(sample_ws)
    regs["vehicles"]["values"] = {"vehicle_status": {True: "正常"}}
    set_manifest(sample_ws, registries=regs)
    result = run(runner, "audit", sample_ws, "-q")
    assert result.exit_code == 2
    assert "registries.vehicles.values" in result.output and "quote the codes" in result.output


def test_headers_differing_in_full_width_punctuation_or_spaces_match(
    runner, sample_ws: Path
) -> None:
    expected = json.loads(run(runner, "audit", sample_ws, "--json", "-q").output)["rules"]
    poverty = sample_ws / "data" / "poverty.csv"
    text = poverty.read_text(encoding="utf-8")
    header, rest = text.split("\n", 1)
    assert "人均纯收入(元)" in header
    poverty.write_text(header.replace("人均纯收入(元)", "人均纯收入（元） ") + "\n" + rest, "utf-8")
    result = run(runner, "audit", sample_ws, "--json", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rules"]["false_exit"] == expected["false_exit"]
