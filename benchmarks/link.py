"""Benchmark `link`: linkaudit against Splink (DuckDB backend) on the synthetic Mashan county.

    python benchmarks/link.py [--scales 1 5] [--profiles default hard] [--keep DIR]
                              [--repeat N] [--u-pairs 5e6] [--em-max-pairs N] [--verbose]

For each profile and scale: generate the scenario (`linkaudit.sample.mashan`; `hard` adds the
hard linkage cases of `linkaudit.sample.hard`), load it with linkaudit, then
link every department record to at most one registrant twice, on the same normalised inputs:

* linkaudit: `linkaudit.link.engine.link_workspace` with the manifest's default settings;
* Splink: `link_only` between `reg_poverty` and the union of the six department `reg_*` tables,
  read from linkaudit's DuckDB file, with the configuration a careful Splink user would write
  for Chinese citizen IDs and names (`splink_settings`): λ from deterministic rules, u by
  random sampling, m by EM, then each department record's single best registrant at
  match_probability >= 0.95 (linkaudit's default match threshold).

Load, linkaudit's link and Splink's link each run in a child process of their own, which
reports the step's wall time and its own peak RSS (VmHWM; see `peak_rss_mib`). Both
tools' links are scored against truth/links.csv by one rule: precision, recall and F1 over exact
(registry, record_key, person_key) triples. Needs Splink: `pip install 'linkaudit[bench]'`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from linkaudit.evaluate import Score

DEPARTMENTS = ["payroll", "vehicles", "property", "business", "deaths", "medical"]
COLUMNS = ["name", "name_pinyin", "id_number", "birth_date"]
MATCH_THRESHOLD = 0.95  # linkaudit's default linkage.match_threshold
U_PAIRS = 5e6  # Splink's estimate_u_using_random_sampling max_pairs (--u-pairs)
RESULT = "RESULT "
KEYS = ["registry", "record_key", "person_key"]


# --------------------------------------------------------------------------------------------
# Children: each measured step runs in a fresh interpreter and prints one RESULT line.
# --------------------------------------------------------------------------------------------


def child_load(manifest_path: str) -> dict[str, Any]:
    from linkaudit import load_manifest, load_workspace

    manifest = load_manifest(manifest_path)
    started = time.perf_counter()
    report = load_workspace(manifest)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": sum(r.rows_loaded for r in report.registries)}


def child_linkaudit(manifest_path: str) -> dict[str, Any]:
    from linkaudit import load_manifest
    from linkaudit.link.engine import link_workspace

    manifest = load_manifest(manifest_path)
    started = time.perf_counter()
    report = link_workspace(manifest)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "links": sum(r.matches for r in report.registries),
        "reviews": sum(r.reviews for r in report.registries),
        "candidates": sum(r.candidates for r in report.registries),
        "warnings": report.warnings,
    }


def splink_settings() -> Any:
    """The Splink model: three comparisons on the fields linkaudit uses, five blocking rules."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="link_only",
        unique_id_column_name="unique_id",
        comparisons=[
            # 18-character citizen ID: exact, one or two edits (typo, transposition), else.
            cl.DamerauLevenshteinAtThresholds("id_number", [1, 2]),
            # Chinese name: exact (term-frequency adjusted: 韦/黄/覃 names are common),
            # homophone (same toneless pinyin), similar pinyin, else.
            cl.CustomComparison(
                output_column_name="name",
                comparison_levels=[
                    cll.NullLevel("name"),
                    cll.ExactMatchLevel("name", term_frequency_adjustments=True),
                    cll.ExactMatchLevel("name_pinyin").configure(
                        label_for_charts="Homophone (same pinyin)"
                    ),
                    cll.JaroWinklerLevel("name_pinyin", 0.9),
                    cll.ElseLevel(),
                ],
                comparison_description="name exact / same pinyin / pinyin JW >= 0.9 / else",
            ),
            # Splink's stock date-of-birth comparison: exact, one character off, <= 1 month,
            # <= 1 year, <= 10 years, else.
            cl.DateOfBirthComparison("birth_date", input_is_string=False),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("id_number"),
            block_on("name_pinyin", "birth_date"),
            block_on("name", "year(birth_date)"),
            # One mistyped or transposed digit leaves one of these two ID windows intact
            # (positions 1-10 or 11-14); errors in 15-18 are left to the name/birth-date rules.
            block_on("substr(id_number, 11, 8)"),
            block_on("substr(id_number, 1, 10)", "substr(id_number, 15, 4)"),
        ],
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
    )


def child_splink(
    database: str,
    out_path: str,
    u_pairs: str,
    em_max_pairs: str,
    verbose: str,
    beneficiaries: str = "poverty",
    departments: str = ",".join(DEPARTMENTS),
) -> dict[str, Any]:
    """Splink linking the workspace's normalised registries: `beneficiaries` (one reg_* table)
    against the union of the comma-separated `departments`; links written to `out_path`.
    benchmarks/engines.py --splink runs this step too (`link.py --child splink ...`)."""
    from splink import DuckDBAPI, Linker, block_on

    out = Path(out_path)
    con = duckdb.connect()  # in memory, as a Splink user would start
    con.execute(f"SET temp_directory = '{out.parent / 'splink_tmp'}'")

    # Reading the inputs (linkaudit's normalised reg_* tables) is not part of the timed step.
    started = time.perf_counter()
    con.execute(f"ATTACH '{database}' AS la (READ_ONLY)")
    cols = ", ".join(COLUMNS)
    con.execute(
        f"CREATE TABLE poverty AS SELECT _key AS unique_id, {cols} FROM la.reg_{beneficiaries}"
    )
    con.execute(
        "CREATE TABLE departments AS "
        + " UNION ALL ".join(
            f"SELECT '{d}' || '|' || _key AS unique_id, {cols} FROM la.reg_{d}"
            for d in departments.split(",")
        )
    )
    con.execute("DETACH la")
    read_seconds = time.perf_counter() - started

    started = mark = time.perf_counter()
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = now - mark
        mark = now

    db_api = DuckDBAPI(connection=con)
    left = db_api.register("poverty", dataset_display_name="poverty")
    right = db_api.register("departments", dataset_display_name="departments")
    linker = Linker(
        [left, right],
        splink_settings(),
        log_level=logging.INFO if verbose == "1" else logging.WARNING,
    )
    # λ: exact-ID and name+birth-date agreement find most matches; assume they miss 5 %.
    linker.training.estimate_probability_two_random_records_match(
        [block_on("id_number"), block_on("name", "birth_date")], recall=0.95
    )
    phase("lambda")
    linker.training.estimate_u_using_random_sampling(max_pairs=float(u_pairs), seed=42)
    phase("u")
    # m by EM, each session leaving two comparisons free: pairs with the same name train the
    # ID and the birth date; pairs sharing the ID's tail (birth day, sequence number, check)
    # train the name and the birth date. (An exact-ID block would leave birth_date untrained,
    # as an equal ID carries an equal date; a birth-date block misleads EM, since people born
    # the same day in one county have IDs within two edits of each other.)
    em_pairs = None if em_max_pairs == "none" else float(em_max_pairs)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("name"), max_pairs=em_pairs
    )
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("substr(id_number, 11, 8)"), max_pairs=em_pairs
    )
    phase("m")
    predictions = linker.inference.predict(threshold_match_probability=MATCH_THRESHOLD)
    phase("predict")
    # One registrant per department record: its best candidate (link_only may put either
    # dataset on either side of a pair, so orient each pair first).
    con.execute(
        f"""
        CREATE TABLE best AS
        WITH pairs AS (
            SELECT
                CASE WHEN source_dataset_l = 'departments' THEN unique_id_l ELSE unique_id_r END AS d,
                CASE WHEN source_dataset_l = 'departments' THEN unique_id_r ELSE unique_id_l END AS person_key,
                match_weight, match_probability
            FROM {predictions.physical_name}
            WHERE match_probability >= {MATCH_THRESHOLD}
        )
        SELECT split_part(d, '|', 1) AS registry, split_part(d, '|', 2) AS record_key,
               person_key, match_probability
        FROM pairs
        QUALIFY row_number() OVER (PARTITION BY d ORDER BY match_weight DESC, person_key) = 1
        """
    )
    phase("best")
    seconds = time.perf_counter() - started

    con.execute(f"COPY best TO '{out}' (FORMAT parquet)")
    model = linker.misc.save_model_to_json(str(out.with_name("splink_model.json")), overwrite=True)
    return {
        "seconds": seconds,
        "read_seconds": read_seconds,
        "phases": phases,
        "links": con.execute("SELECT count(*) FROM best").fetchall()[0][0],
        "pairs_over_threshold": con.execute(
            f"SELECT count(*) FROM {predictions.physical_name}"
        ).fetchall()[0][0],
        "lambda": model["probability_two_random_records_match"],
        "untrained": untrained_levels(model),
    }


def model_note(u_pairs: float, em_max_pairs: float | None) -> str:
    """The Splink model of `splink_settings` and `child_splink`'s training, in one line."""
    return (
        "Splink model: link_only; id_number exact / Damerau-Levenshtein <= 1 / <= 2 / else; "
        "name exact (term-frequency adjusted) / same pinyin / pinyin Jaro-Winkler >= 0.9 / "
        "else; birth_date DateOfBirthComparison; blocking on id_number, name_pinyin+birth_date, "
        "name+year(birth_date), substr(id_number, 11, 8), substr(id_number, 1, 10)+"
        "substr(id_number, 15, 4); λ from exact id_number or name+birth_date at recall 0.95; "
        f"u from {u_pairs:.0e} random pairs (seed 42); m by EM blocked on name, then on "
        "substr(id_number, 11, 8)"
        + ("" if em_max_pairs is None else f", each sampled to ~{em_max_pairs:.0e} pairs")
        + "."
    )


def untrained_levels(model: dict[str, Any]) -> list[str]:
    """Levels whose m or u Splink could not estimate (it then falls back to defaults)."""
    out = []
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            missing = [
                p for p in ("m", "u") if not isinstance(level.get(f"{p}_probability"), int | float)
            ]
            if missing:
                name = level.get("label_for_charts") or level["sql_condition"]
                out.append(f"{'/'.join(missing)} of {comparison['output_column_name']}: {name}")
    return out


def peak_rss_mib() -> float:
    """This process's own peak resident set size.

    VmHWM, the high-water mark of this process's address space, where Linux has it. Not
    getrusage's ru_maxrss: Linux carries that across fork and exec, so a child started by a
    parent that once held 1.5 GiB reports at least 1.5 GiB (and RUSAGE_CHILDREN, a maximum
    over all children, inherits the same figure).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, else KiB


CHILDREN = {"load": child_load, "linkaudit": child_linkaudit, "splink": child_splink}


def run_child(step: str, *args: str, verbose: bool = False, repeat: int = 1) -> dict[str, Any]:
    """Run one measured step in a fresh interpreter `repeat` times: the last run's figures,
    with the median wall time and the largest peak RSS over the runs."""
    runs = [_run_child_once(step, *args, verbose=verbose) for _ in range(max(repeat, 1))]
    result = runs[-1]
    result["all_seconds"] = [r["seconds"] for r in runs]
    result["seconds"] = statistics.median(result["all_seconds"])
    result["peak_mib"] = max(r["peak_mib"] for r in runs)
    return result


def _run_child_once(step: str, *args: str, verbose: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", step, *args]
    proc = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=None if verbose else subprocess.PIPE, text=True
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        sys.stderr.write(proc.stderr or "")
        raise SystemExit(f"benchmark step {step!r} failed (exit code {proc.returncode})")
    line = next(ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(RESULT))
    result: dict[str, Any] = json.loads(line[len(RESULT) :])
    return result


# --------------------------------------------------------------------------------------------
# Scoring: one rule for both tools.
# --------------------------------------------------------------------------------------------


def prf(s: Score) -> str:
    return f"{s.precision:.4f}/{s.recall:.4f}/{s.f1:.4f}"


def score(pred: pl.DataFrame, truth: pl.DataFrame) -> Score:
    """Exact (registry, record_key, person_key) triples."""
    pred, truth = pred.select(KEYS).unique(), truth.select(KEYS).unique()
    tp = pred.join(truth, on=KEYS, how="inner").height
    return Score("overall", truth.height, pred.height, tp)


def as_persons(frame: pl.DataFrame, persons: pl.DataFrame) -> pl.DataFrame:
    """Registrant keys replaced by linkaudit's person id (one valid ID = one person)."""
    return (
        frame.join(persons, left_on="person_key", right_on="record_key", how="left")
        .with_columns(pl.coalesce("person_id", "person_key").alias("person_key"))
        .select(KEYS)
    )


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    scale: float
    tool: str
    seconds: float
    peak_mib: float
    score: Score | None = None
    profile: str = "default"


def versions() -> str:
    out = []
    for pkg in ("linkaudit", "splink", "duckdb", "polars"):
        try:
            out.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            out.append(f"{pkg} (not installed)")
    return ", ".join(out)


def machine() -> str:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, "
        f"Python {platform.python_version()}"
    )


def frame(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    result = pl.from_arrow(con.sql(sql).to_arrow_table())
    assert isinstance(result, pl.DataFrame)
    return result


def fmt_scale(scale: float) -> str:
    return f"{scale:g}"


def bench_scale(
    scale: float,
    profile: str,
    work: Path,
    u_pairs: float,
    em_max_pairs: float | None,
    repeat: int,
    verbose: bool,
    notes: list[str],
) -> list[Row]:
    from linkaudit import load_manifest
    from linkaudit.evaluate import evaluate_links
    from linkaudit.sample.mashan import generate

    s = fmt_scale(scale) if profile == "default" else f"{fmt_scale(scale)} {profile}"
    print(f"[scale {s}] generating the scenario in {work} ...", flush=True)
    started = time.perf_counter()
    generate(work, scale=scale, profile=profile)
    gen_seconds = time.perf_counter() - started
    manifest_path = work / "linkaudit.yaml"
    manifest = load_manifest(manifest_path)
    database = Path(manifest.database)
    for stale in (database, database.with_name(database.name + ".wal")):
        stale.unlink(missing_ok=True)  # a kept folder from an earlier run: load afresh

    print(f"[scale {s}] linkaudit load ...", flush=True)
    load = run_child("load", str(manifest_path), verbose=verbose)
    print(f"[scale {s}] linkaudit link ...", flush=True)
    la = run_child("linkaudit", str(manifest_path), verbose=verbose, repeat=repeat)
    print(f"[scale {s}] Splink link ...", flush=True)
    out = work / "splink_links.parquet"
    sp = run_child(
        "splink",
        str(database),
        str(out),
        repr(u_pairs),
        "none" if em_max_pairs is None else repr(em_max_pairs),
        "1" if verbose else "0",
        verbose=verbose,
        repeat=repeat,
    )

    truth = pl.read_csv(work / "truth" / "links.csv", infer_schema=False).select(KEYS)
    con = duckdb.connect(str(database), read_only=True)
    try:
        la_links = frame(
            con, "SELECT registry, record_key, person_key FROM links WHERE decision = 'match'"
        )
        persons = frame(
            con, "SELECT record_key, person_id FROM entities WHERE registry = 'beneficiaries'"
        )
        registrants = con.execute("SELECT count(*) FROM reg_poverty").fetchall()[0][0]
        records = sum(
            con.execute(f"SELECT count(*) FROM reg_{d}").fetchall()[0][0] for d in DEPARTMENTS
        )
    finally:
        con.close()
    sp_links = pl.read_parquet(out).select(KEYS)
    la_score, sp_score = score(la_links, truth), score(sp_links, truth)

    overall = evaluate_links(manifest, work / "truth").overall
    assert overall is not None
    official = overall
    p_truth = as_persons(truth, persons)
    la_p = score(as_persons(la_links, persons), p_truth)
    sp_p = score(as_persons(sp_links, persons), p_truth)

    phases = ", ".join(f"{k} {v:.1f} s" for k, v in sp["phases"].items())
    if repeat > 1:
        notes.append(
            f"scale {s}: wall times of the {repeat} runs: linkaudit "
            + ", ".join(f"{t:.1f}" for t in la["all_seconds"])
            + " s; Splink "
            + ", ".join(f"{t:.1f}" for t in sp["all_seconds"])
            + " s (median in the table; figures below are from the last run)"
        )
    notes += [
        f"scale {s}: {registrants:,} registrants, {records:,} department records, "
        f"{truth.height:,} true links; generated in {gen_seconds:.1f} s, loaded "
        f"{load['rows']:,} rows in {load['seconds']:.1f} s",
        f"scale {s}: linkaudit compared {la['candidates']:,} candidate pairs: "
        f"{la['links']:,} match + {la['reviews']:,} review",
        f"scale {s}: Splink {phases}; {sp['pairs_over_threshold']:,} pairs at "
        f"p >= {MATCH_THRESHOLD}; λ = {sp['lambda']:.3g}; reading its inputs took "
        f"{sp['read_seconds']:.1f} s (not timed)",
        f"scale {s}: person-level P/R/F1 (a registrant registered twice under one valid ID is "
        f"one person, as `linkaudit evaluate` counts): linkaudit {prf(la_p)} "
        f"(evaluate_links says {prf(official)}), Splink {prf(sp_p)}",
    ]
    notes += [f"scale {s}: linkaudit warning: {w}" for w in la["warnings"]]
    if sp["untrained"]:
        notes.append(
            f"scale {s}: Splink could not estimate (so used its defaults for) "
            + "; ".join(sp["untrained"])
        )
    return [
        Row(scale, "linkaudit load", load["seconds"], load["peak_mib"], None, profile),
        Row(scale, "linkaudit link", la["seconds"], la["peak_mib"], la_score, profile),
        Row(scale, "Splink link", sp["seconds"], sp["peak_mib"], sp_score, profile),
    ]


def print_table(rows: list[Row]) -> None:
    header = [
        "profile",
        "scale",
        "tool",
        "wall (s)",
        "peak RSS (MiB)",
        "precision",
        "recall",
        "F1",
        "links",
    ]
    body = [
        [
            r.profile,
            fmt_scale(r.scale),
            r.tool,
            f"{r.seconds:.1f}",
            f"{r.peak_mib:,.0f}",
            f"{r.score.precision:.4f}" if r.score else "-",
            f"{r.score.recall:.4f}" if r.score else "-",
            f"{r.score.f1:.4f}" if r.score else "-",
            f"{r.score.predicted:,}" if r.score else "-",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, 2) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for b in body:
        print(line(b))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        result = CHILDREN[sys.argv[2]](*sys.argv[3:])
        result["peak_mib"] = peak_rss_mib()
        print(RESULT + json.dumps(result, ensure_ascii=False), flush=True)
        return

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument(
        "--profiles",
        nargs="+",
        default=["default", "hard"],
        choices=["default", "hard"],
        help="scenario profiles, side by side (default: default hard)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="keep each scenario in DIR/scale-S (else a temp dir)",
    )
    parser.add_argument(
        "--u-pairs",
        type=float,
        default=U_PAIRS,
        help=f"Splink's estimate_u max_pairs (default {U_PAIRS:g})",
    )
    parser.add_argument(
        "--em-max-pairs",
        type=float,
        default=None,
        help="Splink's EM max_pairs (default: none, EM on every blocked pair)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each link step N times and report the median wall time (default 1)",
    )
    parser.add_argument("--verbose", action="store_true", help="show the children's logs")
    args = parser.parse_args()
    try:
        import splink  # noqa: F401
    except ImportError:
        raise SystemExit("Splink is not installed: pip install 'linkaudit[bench]'") from None

    rows: list[Row] = []
    notes: list[str] = []
    runs = [(profile, scale) for profile in args.profiles for scale in args.scales]
    for profile, scale in runs:
        name = f"{profile}-scale-{fmt_scale(scale)}"
        if args.keep:
            work = args.keep.resolve() / name
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(tempfile.mkdtemp(prefix=f"linkaudit-link-bench-{name}-"))
        try:
            rows += bench_scale(
                scale,
                profile,
                work,
                args.u_pairs,
                args.em_max_pairs,
                args.repeat,
                args.verbose,
                notes,
            )
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"machine:  {machine()}")
    print(f"versions: {versions()}")
    print()
    print_table(rows)
    print()
    for profile, scale in runs:
        here = [r for r in rows if r.scale == scale and r.profile == profile]
        la = next(r for r in here if r.tool == "linkaudit link")
        sp = next(r for r in here if r.tool == "Splink link")
        print(
            f"{profile} scale {fmt_scale(scale)}: Splink / linkaudit wall time "
            f"{sp.seconds / la.seconds:.2f}x, peak RSS {sp.peak_mib / la.peak_mib:.2f}x"
        )
    print()
    print("notes:")
    general = [
        "wall = the step's own wall-clock time in its child process (interpreter start and "
        "imports excluded; Splink's reading of its inputs excluded); peak RSS = that child's "
        "own high-water mark (VmHWM), imports included. Splink's child holds its inputs "
        "in an in-memory DuckDB; linkaudit's works in its on-disk workspace.",
        "precision/recall/F1/links in the table: exact (registry, record_key, person_key) "
        "triples against truth/links.csv, the same rule for both tools (a registrant registered "
        "twice counts as two keys here; the person-level figures below merge them). linkaudit: "
        f"decision = 'match' only; Splink: each department record's best registrant at "
        f"p >= {MATCH_THRESHOLD}.",
        model_note(args.u_pairs, args.em_max_pairs),
    ]
    for n in general + notes:
        print(f"- {n}")


if __name__ == "__main__":
    main()
