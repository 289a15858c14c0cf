"""Benchmark the whole audit (load + link + rules + outputs) on the Mashan scenario.

    python benchmarks/audit.py [--scales 1 5] [--keep DIR]

For each scale: generates the scenario, runs `run_audit` in a child process twice — a first run
on a fresh workspace, then a second run on unchanged inputs (which reuses loads and links) — and
prints wall time per step, peak RSS of the child, the headline counts and the speed-up of the
second run, as a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, re, sys, time
from linkaudit import load_manifest
from linkaudit.audit.run import run_audit
t = time.perf_counter()
result = run_audit(load_manifest(sys.argv[1]))
wall = time.perf_counter() - t
peak = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024
s = result.summary
print(json.dumps({"wall": wall, "peak_mib": peak, "timings": s["timings_seconds"],
                  "ineligible": s["ineligible_distinct_cross_department"],
                  "rules": {k: v["persons"] for k, v in s["rules"].items()},
                  "cars": s["rules"]["car_owner"]["evidence_records"],
                  "false_exit_households": s["rules"]["false_exit"]["households"]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    from linkaudit.sample.mashan import generate

    rows = []
    for scale in args.scales:
        root = (args.keep or Path(tempfile.mkdtemp(prefix="linkaudit-audit-"))) / f"scale{scale:g}"
        t = time.perf_counter()
        generate(root, scale=scale)
        gen = time.perf_counter() - t
        for run in ("first", "second"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(root / "linkaudit.yaml")],
                check=True,
                capture_output=True,
                text=True,
            )
            data = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((scale, run, gen, data))
    header = (
        f"{'scale':>5} {'run':>6} {'gen s':>6} {'load s':>7} {'link s':>7} {'rules s':>8} "
        f"{'out s':>6} {'total s':>8} {'peak MiB':>9} {'ineligible':>10} {'cars':>6} {'false-exit hh':>13}"
    )
    print(header)
    print("-" * len(header))
    first_wall = {}
    for scale, run, gen, d in rows:
        if run == "first":
            first_wall[scale] = d["wall"]
        t = d["timings"]
        print(
            f"{scale:>5g} {run:>6} {gen:>6.1f} {t['load']:>7.2f} {t['link']:>7.2f} {t['rules']:>8.2f} "
            f"{t['outputs']:>6.2f} {d['wall']:>8.2f} {d['peak_mib']:>9.0f} {d['ineligible']:>10,} "
            f"{d['cars']:>6,} {d['false_exit_households']:>13,}"
        )
    for scale, run, _, d in rows:
        if run == "second":
            print(
                f"scale {scale:g}: second run {first_wall[scale] / d['wall']:.1f}x faster than the first"
            )


if __name__ == "__main__":
    main()
