"""Benchmark `load`: rows/s and peak memory for a generated 1,000,000-row registry CSV.

    python benchmarks/load.py [--rows 1000000] [--encoding utf-8|gbk] [--keep DIR]

Generates the CSV (vectorised, seeded), then loads it in a child process and reports wall time,
rows/s and the child's peak RSS, as a table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

SURNAMES = list("韦蓝黄覃李陆潘蒙梁罗农陈卢莫周唐何")
GIVEN = list("明华强伟芳秀英玉兰红金福贵忠勇德志海春梅丽军平安国荣")
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def make_csv(path: Path, rows: int, encoding: str, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    surname = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), rows)]
    g1 = np.array(GIVEN)[rng.integers(0, len(GIVEN), rows)]
    g2 = np.where(rng.random(rows) < 0.7, np.array(GIVEN)[rng.integers(0, len(GIVEN), rows)], "")
    birth = np.datetime64("1940-01-01") + rng.integers(0, 365 * 70, rows).astype("timedelta64[D]")
    births = pl.Series(birth).dt.strftime("%Y%m%d")
    seq = pl.Series(rng.integers(0, 1000, rows)).cast(pl.Utf8).str.zfill(3)
    first17 = pl.select(pl.lit("450124") + births + seq).to_series()
    digits = (
        np.frombuffer("".join(first17.to_list()).encode(), dtype=np.uint8).reshape(rows, 17) - 48
    )
    check = np.array(list("10X98765432"))[(digits * np.array(WEIGHTS)).sum(axis=1) % 11]
    ids = first17 + pl.Series(check)
    frame = pl.DataFrame(
        {
            "序号": pl.int_range(1, rows + 1, eager=True).cast(pl.Utf8),
            "户编号": (pl.int_range(0, rows, eager=True) // 4).cast(pl.Utf8),
            "姓名": pl.Series(surname) + pl.Series(g1) + pl.Series(g2),
            "公民身份号码": ids,
            "人均纯收入(元)": pl.Series(rng.integers(1000, 9000, rows)).cast(pl.Utf8),
            "脱贫年度": pl.Series(rng.choice(["2014", "2015", ""], rows)),
            "登记日期": births.str.slice(0, 4) + "/3/2",
        }
    )
    text = frame.write_csv()
    path.write_bytes(text.encode(encoding))


MANIFEST = """database: bench.duckdb
registries:
  poverty:
    role: beneficiaries
    path: poverty.csv
    key: 序号
    household: 户编号
    fields: {{name: 姓名, id_number: 公民身份号码, income_per_capita: 人均纯收入(元), exit_year: 脱贫年度, registered_on: 登记日期}}
    encoding: {encoding}
"""

CHILD = """
import re, sys, time
from linkaudit import load_manifest, load_workspace
t = time.perf_counter()
report = load_workspace(load_manifest(sys.argv[1]))
elapsed = time.perf_counter() - t
# The child's own high-water mark (ru_maxrss of a forked child starts from the parent's).
with open("/proc/self/status") as fh:
    peak_kib = int(re.search(r"VmHWM:\\s+(\\d+)", fh.read()).group(1))
print(elapsed, report.registries[0].rows_loaded, peak_kib)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--encoding", default="utf-8", choices=["utf-8", "gbk"])
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="linkaudit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    csv = work / "poverty.csv"
    t = time.perf_counter()
    make_csv(csv, args.rows, args.encoding)
    gen = time.perf_counter() - t
    (work / "linkaudit.yaml").write_text(MANIFEST.format(encoding="auto"), encoding="utf-8")
    (work / "bench.duckdb").unlink(missing_ok=True)
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(work / "linkaudit.yaml")],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    inner, loaded, peak = out.stdout.split()
    peak_kib = int(peak)
    size_mb = csv.stat().st_size / 1e6
    rows = [
        ("rows", f"{args.rows:,}"),
        ("file", f"{size_mb:.1f} MB {args.encoding} CSV (generated in {gen:.1f} s)"),
        ("rows loaded", f"{int(loaded):,}"),
        ("load time (in process)", f"{float(inner):.2f} s"),
        ("rows/s (in process)", f"{args.rows / float(inner):,.0f}"),
        ("wall incl. interpreter start", f"{wall:.2f} s"),
        ("rows/s (wall)", f"{args.rows / wall:,.0f}"),
        ("peak RSS", f"{peak_kib / 1024:,.0f} MiB"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'metric':<{width}}  value")
    print(f"{'-' * width}  {'-' * 40}")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
