"""The DuckDB floor of an audit: read every input of a manifest and join on the exact ID.

    python benchmarks/floor.py MANIFEST [--json]

What no audit can go below on this machine: each registry's file read into DuckDB by the
fastest reader at hand (DuckDB's own CSV/JSON/Parquet readers; polars for a GBK CSV, which
DuckDB cannot decode offline; fastexcel for xlsx), then every department registry joined to
the beneficiaries on the raw ID text (trimmed). No normalising, no fuzzy linking, no rules, no
outputs. benchmarks/engines.py runs it in a child process beside each audit.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import duckdb
import yaml

SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "tsv", ".xlsx": "xlsx", ".parquet": "parquet"}
SUFFIXES |= {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _read(con: duckdb.DuckDBPyConnection, table: str, path: Path, reg: dict[str, Any]) -> None:
    fmt = reg.get("format") or SUFFIXES.get(path.suffix.lower(), "csv")
    encoding = (reg.get("encoding") or "utf-8").lower()
    source: str
    if fmt in ("csv", "tsv") and encoding.replace("-", "") in ("utf8", "utf8sig", "auto"):
        delim = reg.get("delimiter") or ("\t" if fmt == "tsv" else ",")
        skip = int(reg.get("header_row") or 1) - 1
        source = (
            f"read_csv({_literal(str(path))}, all_varchar = true, header = true, "
            f"delim = {_literal(delim)}, skip = {skip})"
        )
    elif fmt in ("csv", "tsv"):
        import polars as pl

        frame = pl.read_csv(
            path,
            encoding=encoding,
            infer_schema=False,
            separator=reg.get("delimiter") or ("\t" if fmt == "tsv" else ","),
            skip_rows=int(reg.get("header_row") or 1) - 1,
        )
        con.register("_incoming", frame.to_arrow())
        source = "_incoming"
    elif fmt == "xlsx":
        import fastexcel

        reader = fastexcel.read_excel(str(path))
        sheet = reg.get("sheet", 0)
        header = int(reg.get("header_row") or 1) - 1
        con.register("_incoming", reader.load_sheet(sheet, header_row=header).to_arrow())
        source = "_incoming"
    elif fmt == "parquet":
        source = f"read_parquet({_literal(str(path))})"
    else:
        source = f"read_json({_literal(str(path))}, format = 'newline_delimited')"
    con.execute(f"CREATE TABLE {_quote(table)} AS SELECT * FROM {source}").fetchall()
    if source == "_incoming":
        con.unregister("_incoming")


def floor(manifest: Path) -> dict[str, Any]:
    spec = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    root = manifest.parent
    started = time.perf_counter()
    con = duckdb.connect()
    rows: dict[str, int] = {}
    ids: dict[str, str] = {}
    beneficiaries = None
    for name, reg in spec["registries"].items():
        _read(con, name, root / reg["path"], reg)
        rows[name] = int(con.execute(f"SELECT count(*) FROM {_quote(name)}").fetchall()[0][0])
        ids[name] = reg.get("fields", {}).get("id_number", "")
        if reg.get("role") == "beneficiaries":
            beneficiaries = name
    read = time.perf_counter() - started
    matches: dict[str, int] = {}
    assert beneficiaries is not None, "no beneficiaries registry"
    ben_id = ids[beneficiaries]
    for name, column in ids.items():
        if name == beneficiaries or not column or not ben_id:
            continue
        matches[name] = int(
            con.execute(
                f"SELECT count(*) FROM {_quote(beneficiaries)} b JOIN {_quote(name)} d "
                f"ON trim(CAST(b.{_quote(ben_id)} AS VARCHAR)) = "
                f"trim(CAST(d.{_quote(column)} AS VARCHAR))"
            ).fetchall()[0][0]
        )
    return {
        "seconds": time.perf_counter() - started,
        "read_seconds": read,
        "rows": rows,
        "exact_id_matches": matches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = floor(args.manifest)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"read every input: {result['read_seconds']:.2f} s ({sum(result['rows'].values()):,} rows)"
    )
    print(f"read + exact-ID joins: {result['seconds']:.2f} s")
    for name, n in result["exact_id_matches"].items():
        print(f"  {name}: {n:,} exact-ID pairs")


if __name__ == "__main__":
    main()
