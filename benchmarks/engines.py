"""Benchmark the whole audit on each engine (DuckDB, Spark local) side by side.

    python benchmarks/engines.py [--scales 0.2 1 5 10 50] [--runs N] [--engines duckdb spark]
                                 [--work DIR] [--timeout 900] [--sample-timeout 900]
                                 [--splink [SCALE ...]] [--spark-master local[2]]
                                 [--spark-conf KEY=VALUE ...] [--json]

For each scale: generates the Mashan sample once (`linkaudit sample mashan`, cached in
DIR/scale-S), then, per engine and run, deletes the workspace (linkaudit.duckdb, linkaudit.spark/,
out/) and runs `linkaudit audit --force -q --json` in a child process. It measures the child's
wall time, the summary's timings (load/link/rules/outputs), the peak RSS of the child's whole
process tree (Spark's JVM is a child of the CLI: the RSS of every process in the tree, summed,
sampled every 0.2 s), the load average before and after, the candidate pairs per blocking pass
(the link report kept in the workspace's `link_state`), and for Spark the Parquet sizes of its
tables (linkaudit.spark/tables/; the cmp_* tables are temp and gone at close). It checks that
the engines agree on `ineligible_distinct` and every rule's persons/households/evidence counts.

Prints tables (wall times are medians over the runs; peak RSS the largest); --json prints the
results as JSON instead. A run that exceeds --timeout is killed (its process tree) and reported.
Each scale also runs the DuckDB floor (benchmarks/floor.py: read every input, exact-ID join) in a
child process, printed beside the DuckDB audit with their ratio (--no-floor skips it).

--splink (off by default; needs '.[bench]'): after the DuckDB audit of a scale (of the scales
listed after it, or of every scale), Splink 5 (DuckDB backend) links the same normalised
registries, read from the workspace that audit left: benchmarks/link.py's Splink step (its
model `splink_settings`, its training and best-registrant choice, `link.py --child splink`) in a
child process per run. Printed beside linkaudit's link stage and whole audit: Splink's link
seconds (in process, reading its inputs excluded, as link.py counts), the child's wall time and
peak RSS, the ratios Splink link / linkaudit link and Splink link / linkaudit audit (wall), and
both tools' precision/recall/F1 over exact (registry, record_key, person_key) triples against
the sample's truth/links.csv. So --splink needs duckdb in --engines.

How long each takes on this project's 2-core machine, one run. b: measured for this benchmark
on a busy machine (load average 9-10 on the 2 cores, so 2-4x slower than quiet); q: measured
earlier on a quiet machine (README, issue #14). At scales 0.2 and 1 most of Splink's time is its
u estimate, which compares 5e6 random pairs whatever the size of the data.

    scale  registrants  dept records  sample (once; cached    DuckDB audit   Splink (--splink)
                                      in --work/scale-S)
    0.2        19 k          31 k     5 s b                   17 s b         127 s b
    1          96 k         153 k     8 s b                   30 s b; 9 s q  120 s b; 36 s q
    5         483 k         765 k     51 s b, 1.0 GB          34 s q         87 s q, 3.2 GB
    10        966 k         1.5 M     133 s b, 1.9 GB         53 s q         not measured
    50        4.8 M         7.7 M     183 s q, 2.6 GB         not measured   not measured

A sample that is not generated within --sample-timeout seconds is killed and its scale skipped
(reported in the table's notes and the JSON) instead of hanging the run; an audit, floor or
Splink run past --timeout is killed the same way.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import psutil
import yaml

SAMPLE_EVERY = 0.2  # seconds between RSS samples of the child's process tree
TIMINGS = ("load", "link", "rules", "outputs")
#: Spark tables whose size on disk is reported (prefix match); the rest are summed as "other".
SIZED = ("links", "entities", "findings", "reg_", "raw_")


def fmt_scale(scale: float) -> str:
    return f"{scale:g}"


def linkaudit_exe() -> str:
    exe = Path(sys.executable).with_name("linkaudit")
    return str(exe) if exe.exists() else "linkaudit"


class SampleSkipped(Exception):
    """The scale's sample could not be generated (killed at --sample-timeout, or failed)."""


def sample(work: Path, scale: float, timeout: float) -> tuple[Path, float | None]:
    """The scale's sample folder, generated unless already there (seconds, or None if cached).

    A generator still running after `timeout` seconds is killed (its process tree), its
    half-written folder removed, and SampleSkipped raised; so is one that fails."""
    root = work / f"scale-{fmt_scale(scale)}"
    if (root / "linkaudit.yaml").exists() and (root / "truth" / "summary.json").exists():
        return root, None
    shutil.rmtree(root, ignore_errors=True)
    cmd = [linkaudit_exe(), "sample", "mashan", "--out", str(root), "--scale", fmt_scale(scale)]
    print(
        f"[scale {fmt_scale(scale)}] generating the sample: {' '.join(cmd[1:])} ...",
        file=sys.stderr,
    )
    err_path = work / f"scale-{fmt_scale(scale)}.sample-stderr.txt"
    started = time.perf_counter()
    with err_path.open("wb") as err:
        popen = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_tree(psutil.Process(popen.pid))
            popen.wait()
            shutil.rmtree(root, ignore_errors=True)
            raise SampleSkipped(
                f"sample not generated within --sample-timeout {timeout:.0f} s (killed)"
            ) from None
    seconds = time.perf_counter() - started
    if popen.returncode != 0:
        tail = err_path.read_text(errors="replace").strip().splitlines()[-3:]
        shutil.rmtree(root, ignore_errors=True)
        raise SampleSkipped(
            f"sample generation failed (exit {popen.returncode}): {' | '.join(tail)}"
        )
    print(f"[scale {fmt_scale(scale)}] sample generated in {seconds:.1f} s", file=sys.stderr)
    return root, seconds


def manifest_for(root: Path, engine: str, master: str, conf: dict[str, str]) -> Path:
    """The sample's manifest, or for Spark a copy beside it with the engine section."""
    path = root / "linkaudit.yaml"
    if engine == "duckdb":
        return path
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["engine"] = {"name": "spark", "master": master, "conf": conf}
    spark_path = root / "linkaudit.spark.yaml"
    spark_path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")
    return spark_path


def fresh_workspace(root: Path) -> None:
    for name in ("linkaudit.duckdb", "linkaudit.duckdb.wal"):
        (root / name).unlink(missing_ok=True)
    for name in ("linkaudit.spark", ".out.sets"):
        shutil.rmtree(root / name, ignore_errors=True)
    out = root / "out"
    if out.is_symlink() or out.is_file():
        out.unlink()
    elif out.is_dir():
        shutil.rmtree(out)


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def kill_tree(proc: psutil.Process) -> None:
    try:
        procs = [*proc.children(recursive=True), proc]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_child(cmd: list[str], root: Path, timeout: float) -> dict[str, Any]:
    """Run one child process; its wall time, the peak RSS of its process tree, the load."""
    load_before = os.getloadavg()
    out_path, err_path = root / ".bench-stdout.json", root / ".bench-stderr.txt"
    started = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        popen = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=root)
        proc = psutil.Process(popen.pid)
        peak, killed = 0, False
        while popen.poll() is None:
            peak = max(peak, tree_rss(proc))
            if time.perf_counter() - started > timeout:
                kill_tree(proc)
                popen.wait()
                killed = True
                break
            time.sleep(SAMPLE_EVERY)
    wall = time.perf_counter() - started
    result: dict[str, Any] = {
        "wall": wall,
        "peak_mib": peak / 2**20,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "exit_code": popen.returncode,
        "killed": killed,
    }
    if killed or popen.returncode != 0:
        result["stderr_tail"] = err_path.read_text(errors="replace")[-2000:]
    else:
        result["stdout"] = out_path.read_text(encoding="utf-8")
    return result


def run_floor(root: Path, manifest: Path, timeout: float) -> dict[str, Any]:
    """The DuckDB floor (benchmarks/floor.py) on the same files, in a child process."""
    floor = Path(__file__).with_name("floor.py")
    result = run_child([sys.executable, str(floor), str(manifest), "--json"], root, timeout)
    if "stdout" in result:
        result["floor"] = json.loads(result.pop("stdout"))
    return result


def run_once(root: Path, manifest: Path, timeout: float) -> dict[str, Any]:
    fresh_workspace(root)
    cmd = [linkaudit_exe(), "audit", str(manifest), "--force", "-q", "--json"]
    result = run_child(cmd, root, timeout)
    if "stdout" not in result:
        return result
    summary = json.loads(result.pop("stdout"))
    result["timings"] = summary["timings_seconds"]
    result["ineligible_distinct"] = summary["ineligible_distinct"]
    result["ineligible_cross"] = summary["ineligible_distinct_cross_department"]
    result["rules"] = {
        k: [v["persons"], v["households"], v["evidence_records"]]
        for k, v in summary["rules"].items()
    }
    result["link_warnings"] = summary["link_warnings"]
    con = duckdb.connect(str(root / "linkaudit.duckdb"), read_only=True)
    try:
        report = json.loads(con.execute("SELECT report FROM link_state").fetchall()[0][0])
    finally:
        con.close()
    result["passes"] = report["passes"]
    result["link_registries"] = report["registries"]
    result["duckdb_file_mib"] = (root / "linkaudit.duckdb").stat().st_size / 2**20
    tables = root / "linkaudit.spark" / "tables"
    if tables.is_dir():
        result["spark_tables_mib"] = {
            t.name: dir_bytes(t) / 2**20 for t in sorted(tables.iterdir()) if t.is_dir()
        }
    return result


def link_bench() -> ModuleType:
    """benchmarks/link.py as a module (its Splink step's constants and its scoring)."""
    name = "linkaudit_bench_link"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("link.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def wants_splink(args: argparse.Namespace, scale: float) -> bool:
    return args.splink is not None and (not args.splink or scale in args.splink)


def registries(manifest: Path) -> tuple[str, list[str]]:
    """The manifest's beneficiaries registry and its department registries, in order."""
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))["registries"]
    beneficiaries = [k for k, v in data.items() if v.get("role") == "beneficiaries"]
    if len(beneficiaries) != 1:
        raise SystemExit(f"{manifest}: expected one beneficiaries registry, got {beneficiaries}")
    return beneficiaries[0], [k for k in data if k != beneficiaries[0]]


def score_dict(s: Any) -> dict[str, Any]:
    return {k: v for k, v in s.as_dict().items() if k != "registry"}


def run_splink(
    root: Path, scale: float, args: argparse.Namespace, duck: dict[str, Any]
) -> dict[str, Any]:
    """Splink linking the registries the DuckDB audit just loaded, `--runs` times, each in a
    child process (`link.py --child splink`), scored with linkaudit against truth/links.csv."""
    import polars as pl

    link = link_bench()
    entry: dict[str, Any] = {"scale": scale, "engine": "splink", "runs": []}
    duck_ok = ok_runs(duck)
    last = duck["runs"][-1] if duck["runs"] else None
    if not duck_ok or last is None or last["killed"] or last["exit_code"] != 0:
        entry["skipped"] = "the DuckDB audit failed, so there is no workspace for Splink to read"
        return entry
    database = root / "linkaudit.duckdb"
    beneficiaries, departments = registries(root / "linkaudit.yaml")
    # linkaudit's links, read from the workspace the last audit left, before Splink runs.
    con = duckdb.connect(str(database), read_only=True)
    try:
        la_links = link.frame(
            con, "SELECT registry, record_key, person_key FROM links WHERE decision = 'match'"
        )
        persons = link.frame(
            con, "SELECT record_key, person_id FROM entities WHERE registry = 'beneficiaries'"
        )
    finally:
        con.close()
    out = root / "splink_links.parquet"
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("link.py")),
        "--child",
        "splink",
        str(database),
        str(out),
        repr(link.U_PAIRS),
        "none",  # EM on every blocked pair, as link.py's default
        "0",
        beneficiaries,
        ",".join(departments),
    ]
    s = fmt_scale(scale)
    for i in range(args.runs):
        out.unlink(missing_ok=True)
        print(f"[scale {s}] Splink run {i + 1} ...", file=sys.stderr)
        r = run_child(cmd, root, args.timeout)
        shutil.rmtree(root / "splink_tmp", ignore_errors=True)  # DuckDB's spill files
        stdout = r.pop("stdout", None)
        if stdout is not None:
            line = next(
                (ln for ln in reversed(stdout.splitlines()) if ln.startswith(link.RESULT)), None
            )
            if line is None:
                r["exit_code"], r["stderr_tail"] = -1, "no RESULT line: " + stdout[-2000:]
            else:
                r["splink"] = json.loads(line[len(link.RESULT) :])
        entry["runs"].append(r)
        print(
            f"[scale {s}] Splink run {i + 1}: {r['wall']:.1f} s, exit {r['exit_code']}"
            f"{' (killed at timeout)' if r['killed'] else ''}",
            file=sys.stderr,
        )
        if r["killed"] or r["exit_code"] != 0:
            break
    runs = ok_runs(entry)
    if not runs or len(runs) != len(entry["runs"]):
        return entry

    truth = pl.read_csv(root / "truth" / "links.csv", infer_schema=False).select(link.KEYS)
    sp_links = pl.read_parquet(out).select(link.KEYS)
    p_truth = link.as_persons(truth, persons)
    la_link = med([r["timings"]["link"] for r in duck_ok])
    audit_wall = med([r["wall"] for r in duck_ok])
    sp_link = med([r["splink"]["seconds"] for r in runs])
    final = runs[-1]["splink"]
    entry["summary"] = {
        "linkaudit_link_seconds": la_link,
        "linkaudit_audit_wall_seconds": audit_wall,
        "linkaudit_audit_peak_mib": max(r["peak_mib"] for r in duck_ok),
        "splink_link_seconds": sp_link,
        "splink_wall_seconds": med([r["wall"] for r in runs]),
        # the child's own high-water mark (VmHWM): exact, where the 0.2 s samples may miss
        "splink_peak_mib": max(max(r["splink"]["peak_mib"], r["peak_mib"]) for r in runs),
        "splink_link_over_linkaudit_link": sp_link / la_link,
        "splink_link_over_linkaudit_audit": sp_link / audit_wall,
        "splink_score": score_dict(link.score(sp_links, truth)),
        "linkaudit_score": score_dict(link.score(la_links, truth)),
        "splink_person_score": score_dict(link.score(link.as_persons(sp_links, persons), p_truth)),
        "linkaudit_person_score": score_dict(
            link.score(link.as_persons(la_links, persons), p_truth)
        ),
        "splink_phases": final["phases"],
        "splink_read_seconds": final["read_seconds"],
        "splink_pairs_over_threshold": final["pairs_over_threshold"],
        "splink_lambda": final["lambda"],
        "splink_untrained": final["untrained"],
        "match_threshold": link.MATCH_THRESHOLD,
        "u_pairs": link.U_PAIRS,
        "model": link.model_note(link.U_PAIRS, None),
    }
    return entry


def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    conf = dict(kv.split("=", 1) for kv in args.spark_conf)
    results: list[dict[str, Any]] = []
    for scale in args.scales:
        try:
            root, gen = sample(args.work, scale, args.sample_timeout)
        except SampleSkipped as exc:
            print(f"[scale {fmt_scale(scale)}] skipped: {exc}", file=sys.stderr)
            results.append({"scale": scale, "engine": "sample", "skipped": str(exc), "runs": []})
            continue
        truth = json.loads((root / "truth" / "summary.json").read_text(encoding="utf-8"))
        if not args.no_floor:
            floors = [
                run_floor(root, root / "linkaudit.yaml", args.timeout) for _ in range(args.runs)
            ]
            results.append({"scale": scale, "engine": "floor", "runs": floors})
        for engine in args.engines:
            manifest = manifest_for(root, engine, args.spark_master, conf)
            runs = []
            for i in range(args.runs):
                print(f"[scale {fmt_scale(scale)}] {engine} run {i + 1} ...", file=sys.stderr)
                r = run_once(root, manifest, args.timeout)
                runs.append(r)
                print(
                    f"[scale {fmt_scale(scale)}] {engine} run {i + 1}: {r['wall']:.1f} s, "
                    f"exit {r['exit_code']}{' (killed at timeout)' if r['killed'] else ''}",
                    file=sys.stderr,
                )
                if r["killed"] or r["exit_code"] != 0:
                    break  # a failed or killed run is not repeated
            entry = {
                "scale": scale,
                "engine": engine,
                "generated_seconds": gen,
                "truth_ineligible": truth.get("ineligible_distinct"),
                "runs": runs,
            }
            results.append(entry)
            if engine == "duckdb" and wants_splink(args, scale):
                # before any other engine's run deletes the workspace Splink reads
                results.append(run_splink(root, scale, args, entry))
    return results


def ok_runs(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in entry["runs"] if not r["killed"] and r["exit_code"] == 0]


def med(values: list[float]) -> float:
    return statistics.median(values)


def agree(results: list[dict[str, Any]], entry: dict[str, Any]) -> str:
    """Whether this engine's counts equal DuckDB's at the same scale."""
    runs = ok_runs(entry)
    if not runs:
        return "-"
    base = next(
        (e for e in results if e["scale"] == entry["scale"] and e["engine"] == "duckdb"), None
    )
    if base is None or not ok_runs(base):
        return "no duckdb"
    if entry is base:
        return "(ref)"
    a, b = runs[0], ok_runs(base)[0]
    keys = ("ineligible_distinct", "ineligible_cross", "rules")
    return "same" if all(a[k] == b[k] for k in keys) else "DIFFERENT"


def table(header: list[str], body: list[list[str]], left: tuple[int, ...] = (0, 1)) -> None:
    widths = [
        max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for b in body:
        print(line(b))


def print_floor(results: list[dict[str, Any]]) -> None:
    """The DuckDB floor beside linkaudit on DuckDB: the ratio issue 14 bounds."""
    floors = {e["scale"]: e for e in results if e["engine"] == "floor"}
    if not floors:
        return
    body = []
    for e in results:
        if e["engine"] != "duckdb" or e["scale"] not in floors or not ok_runs(e):
            continue
        f = ok_runs(floors[e["scale"]])
        if not f:
            continue
        floor_wall = med([r["wall"] for r in f])
        audit_wall = med([r["wall"] for r in ok_runs(e)])
        body.append(
            [
                fmt_scale(e["scale"]),
                f"{floor_wall:.2f}",
                f"{med([r['floor']['seconds'] for r in f]):.2f}",
                f"{max(r['peak_mib'] for r in f):.0f}",
                f"{audit_wall:.1f}",
                f"{audit_wall / floor_wall:.1f}x",
            ]
        )
    print()
    print("DuckDB floor (read every input + exact-ID join, benchmarks/floor.py) vs the audit:")
    table(
        [
            "scale",
            "floor wall s",
            "floor in-process s",
            "floor peak MiB",
            "audit wall s",
            "audit / floor",
        ],
        body,
    )


def prf(score: dict[str, Any]) -> str:
    return f"{score['precision']:.4f}/{score['recall']:.4f}/{score['f1']:.4f}"


def print_splink(results: list[dict[str, Any]]) -> list[str]:
    """Splink beside linkaudit's link stage and whole audit; returns the notes it wants."""
    entries = [e for e in results if e["engine"] == "splink"]
    if not entries:
        return []
    notes: list[str] = []
    body = []
    for e in entries:
        s = fmt_scale(e["scale"])
        m = e.get("summary")
        if m is None:
            r = e["runs"][-1] if e["runs"] else None
            why = (
                f"skipped: {e['skipped']}"
                if "skipped" in e
                else f"run killed after {r['wall']:.0f} s (--timeout)"
                if r and r["killed"]
                else f"run failed (exit {r['exit_code'] if r else '-'}): "
                + " | ".join((r or {}).get("stderr_tail", "").strip().splitlines()[-3:])
            )
            body.append([s, *["-"] * 10])
            notes.append(f"scale {s}: Splink {why}")
            continue
        body.append(
            [
                s,
                f"{m['linkaudit_link_seconds']:.1f}",
                f"{m['linkaudit_audit_wall_seconds']:.1f}",
                f"{m['linkaudit_audit_peak_mib']:,.0f}",
                f"{m['splink_link_seconds']:.1f}",
                f"{m['splink_wall_seconds']:.1f}",
                f"{m['splink_peak_mib']:,.0f}",
                f"{m['splink_link_over_linkaudit_link']:.1f}x",
                f"{m['splink_link_over_linkaudit_audit']:.1f}x",
                prf(m["linkaudit_score"]),
                prf(m["splink_score"]),
            ]
        )
        phases = ", ".join(f"{k} {v:.1f} s" for k, v in m["splink_phases"].items())
        notes.append(
            f"scale {s}: Splink {phases}; {m['splink_pairs_over_threshold']:,} pairs at "
            f"p >= {m['match_threshold']}; λ = {m['splink_lambda']:.3g}; reading its inputs "
            f"{m['splink_read_seconds']:.1f} s (in its wall, not in its link s); links "
            f"{m['splink_score']['predicted']:,} (linkaudit {m['linkaudit_score']['predicted']:,}"
            f", truth {m['splink_score']['true_links']:,})"
        )
        notes.append(
            f"scale {s}: person-level P/R/F1 (a registrant registered twice under one valid ID "
            f"is one person): linkaudit {prf(m['linkaudit_person_score'])}, "
            f"Splink {prf(m['splink_person_score'])}"
        )
        if m["splink_untrained"]:
            notes.append(
                f"scale {s}: Splink could not estimate (so used its defaults for) "
                + "; ".join(m["splink_untrained"])
            )
        if len(e["runs"]) > 1:
            notes.append(
                f"scale {s}: Splink link s of the runs "
                + ", ".join(f"{r['splink']['seconds']:.1f}" for r in e["runs"])
                + "; walls "
                + ", ".join(f"{r['wall']:.1f}" for r in e["runs"])
            )
    print()
    print(
        "Splink (DuckDB backend, benchmarks/link.py's model) linking the same registries vs "
        "linkaudit (DuckDB audit):"
    )
    table(
        [
            "scale",
            "linkaudit link s",
            "audit wall s",
            "audit peak MiB",
            "Splink link s",
            "Splink wall s",
            "Splink peak MiB",
            "Splink link / linkaudit link",
            "Splink link / audit wall",
            "linkaudit P/R/F1",
            "Splink P/R/F1",
        ],
        body,
        left=(0,),
    )
    model = next((e["summary"]["model"] for e in entries if "summary" in e), None)
    if model:
        notes.insert(0, model)
    notes.insert(
        0,
        "Splink columns: link s = its link step in process (training, predict, best "
        "registrant; reading its inputs excluded), as benchmarks/link.py counts; wall = its "
        "child process incl. interpreter start, imports and reading linkaudit's normalised "
        "reg_* tables; peak = the child's VmHWM. linkaudit link s = the audit's link timing; "
        "P/R/F1 over exact (registry, record_key, person_key) triples against truth/links.csv "
        "(linkaudit: decision = 'match'; Splink: each department record's best registrant "
        "at p >= 0.95).",
    )
    return notes


def print_tables(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    skipped_scales = [e for e in results if e["engine"] == "sample"]
    print_floor(results)
    splink_notes = print_splink(results)
    results = [e for e in results if e["engine"] not in ("floor", "splink", "sample")]
    print(
        f"machine: {os.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM; runs per engine: {args.runs}; "
        f"spark master {args.spark_master}, conf {args.spark_conf or 'none (BASE_CONF)'}"
    )
    print()
    header = [
        "scale",
        "engine",
        "wall s",
        *[f"{t} s" for t in TIMINGS],
        "peak RSS MiB",
        "x duckdb wall",
        "x duckdb RSS",
        "load avg before/after",
        "counts vs duckdb",
    ]
    body = []
    for e in results:
        runs = ok_runs(e)
        s = fmt_scale(e["scale"])
        if not runs:
            r = e["runs"][-1]
            why = "killed at timeout" if r["killed"] else f"exit {r['exit_code']}"
            body.append(
                [
                    s,
                    e["engine"],
                    f">{r['wall']:.0f}" if r["killed"] else f"{r['wall']:.0f}",
                    *["-"] * len(TIMINGS),
                    f"{r['peak_mib']:,.0f}",
                    "-",
                    "-",
                    f"{r['load_before'][0]:.2f}/{r['load_after'][0]:.2f}",
                    why,
                ]
            )
            continue
        wall = med([r["wall"] for r in runs])
        peak = max(r["peak_mib"] for r in runs)
        base = next(
            (
                b
                for b in results
                if b["scale"] == e["scale"] and b["engine"] == "duckdb" and ok_runs(b)
            ),
            None,
        )
        ratio_w = ratio_m = "-"
        if base is not None and base is not e:
            ratio_w = f"{wall / med([r['wall'] for r in ok_runs(base)]):.1f}"
            ratio_m = f"{peak / max(r['peak_mib'] for r in ok_runs(base)):.1f}"
        body.append(
            [
                s,
                e["engine"],
                f"{wall:.1f}",
                *[f"{med([r['timings'][t] for r in runs]):.1f}" for t in TIMINGS],
                f"{peak:,.0f}",
                ratio_w,
                ratio_m,
                f"{runs[0]['load_before'][0]:.2f}/{runs[-1]['load_after'][0]:.2f}",
                agree(results, e),
            ]
        )
    table(header, body)

    print()
    print(
        "candidate pairs per blocking pass (summed over the department registries; "
        "per record = pairs / department records)"
    )
    header = ["scale", "engine", "dept records", "pass", "pairs", "per record", "skipped"]
    body = []
    for e in results:
        runs = ok_runs(e)
        if not runs:
            continue
        r = runs[0]
        records = sum(g["records"] for g in r["link_registries"])
        by_pass: dict[str, list[int]] = {}
        for p in r["passes"]:
            acc = by_pass.setdefault(p["name"], [0, 0])
            acc[0] += p["pairs"]
            acc[1] += int(p["skipped"])
        for name, (pairs, skipped) in by_pass.items():
            body.append(
                [
                    fmt_scale(e["scale"]),
                    e["engine"],
                    f"{records:,}",
                    name,
                    f"{pairs:,}",
                    f"{pairs / records:.3f}",
                    str(skipped),
                ]
            )
        cand = sum(g["candidates"] for g in r["link_registries"])
        body.append(
            [
                fmt_scale(e["scale"]),
                e["engine"],
                f"{records:,}",
                "(distinct candidates)",
                f"{cand:,}",
                f"{cand / records:.3f}",
                "-",
            ]
        )
    table(header, body, left=(0, 1, 3))

    spark = [e for e in results if e["engine"] == "spark" and ok_runs(e)]
    if spark:
        print()
        print("Spark tables on disk (Parquet, MiB; last run; cmp_* are temp, removed at close)")
        header = ["scale", "table", "MiB"]
        body = []
        for e in spark:
            sizes = ok_runs(e)[-1].get("spark_tables_mib", {})
            other = 0.0
            for name, mib in sorted(sizes.items(), key=lambda kv: -kv[1]):
                if name.startswith(SIZED):
                    body.append([fmt_scale(e["scale"]), name, f"{mib:.2f}"])
                else:
                    other += mib
            body.append([fmt_scale(e["scale"]), "(other tables)", f"{other:.2f}"])
            body.append([fmt_scale(e["scale"]), "(all)", f"{sum(sizes.values()):.2f}"])
        table(header, body, left=(0, 1))
    duck = [e for e in results if e["engine"] == "duckdb" and ok_runs(e)]
    if duck:
        print()
        for e in duck:
            print(
                f"scale {fmt_scale(e['scale'])}: DuckDB workspace file "
                f"{ok_runs(e)[-1]['duckdb_file_mib']:.1f} MiB"
            )
    print()
    print("notes:")
    for e in skipped_scales:
        print(f"- scale {fmt_scale(e['scale'])} skipped: {e['skipped']}")
    for n in splink_notes:
        print(f"- {n}")
    print(
        "- wall = the child's wall clock incl. interpreter (and JVM) start; timings from "
        "summary.json; peak RSS = max over 0.2 s samples of the summed RSS of the child's "
        "process tree (CLI + JVM)."
    )
    print(
        "- DuckDB floor: benchmarks/floor.py in a child process (DuckDB's readers, polars for "
        "GBK CSV, fastexcel for xlsx; then exact-ID joins), wall incl. interpreter start."
    )
    for e in results:
        for i, r in enumerate(e["runs"]):
            if r["killed"] or r["exit_code"] != 0:
                tail = r.get("stderr_tail", "").strip().splitlines()[-3:]
                print(
                    f"- scale {fmt_scale(e['scale'])} {e['engine']} run {i + 1}: "
                    f"{'killed after ' + format(r['wall'], '.0f') + ' s' if r['killed'] else 'failed'}"
                    f"; stderr: {' | '.join(tail)}"
                )
        warnings = dict.fromkeys(w for r in e["runs"] for w in r.get("link_warnings", []))
        for w in warnings:
            print(f"- scale {fmt_scale(e['scale'])} {e['engine']}: link warning: {w}")
        if len(e["runs"]) > 1:
            print(
                f"- scale {fmt_scale(e['scale'])} {e['engine']}: walls "
                + ", ".join(f"{r['wall']:.1f}" for r in e["runs"])
                + " s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[0.2, 1.0],
        help="sample scales, e.g. 1 5 10 50 (default 0.2 1; times per scale above)",
    )
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--engines", nargs="+", default=["duckdb", "spark"], choices=["duckdb", "spark"]
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/linkaudit-bench-engines"),
        help="samples cached in DIR/scale-S (default /tmp/linkaudit-bench-engines)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="kill a run (its process tree) after this many seconds (default 900)",
    )
    parser.add_argument(
        "--sample-timeout",
        type=float,
        default=900.0,
        help="skip a scale whose sample is not generated within this many seconds (default 900)",
    )
    parser.add_argument(
        "--splink",
        type=float,
        nargs="*",
        default=None,
        metavar="SCALE",
        help="also run Splink on the DuckDB audit's registries: at every scale, or only at the "
        "scales listed (off by default; ~35 s at scale 1, ~90 s at scale 5; needs '.[bench]')",
    )
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--spark-conf", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the DuckDB floor (benchmarks/floor.py)"
    )
    args = parser.parse_args()
    if args.splink is not None:
        if "duckdb" not in args.engines:
            parser.error("--splink reads the DuckDB audit's workspace: include duckdb in --engines")
        if importlib.util.find_spec("splink") is None:
            parser.error("--splink needs Splink: pip install -e '.[bench]'")
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    results = bench(args)
    (args.work / "engines.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        print_tables(results, args)


if __name__ == "__main__":
    main()
