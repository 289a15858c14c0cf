"""Field verification outcomes: read back the cadres' spreadsheet, validate, store; rates.

Reported programmes confirm only part of machine flags, so each outcome is recorded and shapes
the next run (see `history.apply_history`): cleared cases are suppressed while their evidence is
unchanged, confirmed cases stay until the registrant leaves the register.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl

from linkaudit.engines.duckdb import Workspace
from linkaudit.errors import InputFileError
from linkaudit.history import OUTCOME_WORDS, OUTCOMES, ensure_history
from linkaudit.history_sql import (
    HISTORY_TABLES,
    insert_rows_sql,
    run_case_keys_sql,
    run_ids_sql,
    verification_status_sql,
)
from linkaudit.ingest.readers import read_small_csv
from linkaudit.privacy import mask_frame, undo_neutralised
from linkaudit.report.columns import CHINESE_HEADERS, HEADER_COLUMNS

_NEEDED = ("run_id", "case_id", "outcome")
_READ_COLUMNS = (*_NEEDED, "reason")


def _normalise_headers(frame: pl.DataFrame) -> pl.DataFrame:
    renames = {c: HEADER_COLUMNS.get(c.strip(), c.strip()) for c in frame.columns}
    return frame.rename(renames)


def _read_tables(path: Path) -> list[tuple[str, pl.DataFrame, int]]:
    """(where, frame, first data row number) for each table of cases in the file."""
    if not path.exists():
        raise InputFileError(f"{path}: file not found")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import fastexcel

        try:
            reader = fastexcel.read_excel(str(path))
            sheets = [
                (name, reader.load_sheet(name, header_row=0, dtypes="string").to_polars())
                for name in reader.sheet_names
            ]
        except Exception as exc:  # fastexcel has its own error kinds for non-xlsx content
            raise InputFileError(
                f"{path}: not a readable Excel workbook ({type(exc).__name__})",
                hint="import the exceptions.xlsx written by `linkaudit audit`, or a CSV",
            ) from None
        tables = []
        for name, sheet in sheets:
            frame = _normalise_headers(sheet)
            if "case_id" in frame.columns:
                tables.append((f"{path}: sheet {name!r}", frame, 2))
        if not tables:
            raise InputFileError(
                f"{path}: no sheet has a 疑点编号 (case_id) column",
                hint="import the exceptions.xlsx written by `linkaudit audit`, with 核实结果 filled",
            )
        _check_formulas(
            path, {name for name, sheet in sheets if "case_id" in _normalise_headers(sheet).columns}
        )
        return tables
    frame = _normalise_headers(read_small_csv(path, "verification outcomes"))
    # Our CSVs put a ' before text starting with = + - @ (so that Excel shows it as text).
    text = [c for c in ("outcome", "reason") if c in frame.columns]
    frame = frame.with_columns(undo_neutralised(pl.col(c).cast(pl.Utf8)) for c in text)
    return [(str(path), frame, 2)]


def _check_formulas(path: Path, sheet_names: set[str]) -> None:
    """Formula cells in the columns we read, without a cached value, are errors: fastexcel
    reads the value Excel last computed, and a formula never computed (written by a script,
    or by openpyxl) has none — it would be taken as blank, i.e. silently not verified."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            has_formulas = any(
                b"<f>" in zf.read(n) or b"<f " in zf.read(n)
                for n in zf.namelist()
                if n.startswith("xl/worksheets/") and n.endswith(".xml")
            )
    except (OSError, zipfile.BadZipFile):
        return  # fastexcel read it; nothing more to learn here
    if not has_formulas:  # the common case: one quick scan, openpyxl not needed
        return
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    cached = openpyxl.load_workbook(path, read_only=True, data_only=True)
    problems: list[str] = []
    try:
        for name in wb.sheetnames:
            if name not in sheet_names:
                continue
            rows = wb[name].iter_rows(values_only=False)
            header = next(rows, ())
            wanted = {
                i: HEADER_COLUMNS.get(str(c.value).strip(), str(c.value).strip())
                for i, c in enumerate(header)
                if c.value is not None
            }
            wanted = {i: col for i, col in wanted.items() if col in _READ_COLUMNS}
            values = cached[name].iter_rows(min_row=2, values_only=True)
            for cells, cached_row in zip(rows, values, strict=False):
                for i, col in wanted.items():
                    if i >= len(cells) or getattr(cells[i], "data_type", None) != "f":
                        continue
                    if i < len(cached_row) and cached_row[i] not in (None, ""):
                        continue  # Excel computed it: the value shown is the value read
                    problems.append(
                        f"{path}: sheet {name!r}: row {cells[i].row}, column "
                        f"{CHINESE_HEADERS[col]} ({col}), cell {cells[i].coordinate}: a formula "
                        f"({str(cells[i].value)[:40]}) without a computed value"
                    )
    finally:
        wb.close()
        cached.close()
    if problems:
        shown = problems[:30]
        more = f"\n  ... and {len(problems) - 30} more" if len(problems) > 30 else ""
        raise InputFileError(
            f"{path}: {len(problems)} formula cell{'s' if len(problems) != 1 else ''} without a "
            "value; nothing imported:\n" + "\n".join(f"  - {p}" for p in shown) + more,
            hint="type the outcome as text (属实 / 不属实 / 待核实, or confirmed / cleared / pending), or open the file in "
            "Excel and save it so that formulas have values",
        )


#: A case's answer as read: (run id, outcome, reason, where it was read).
_Answer = tuple[str, str, str | None, str]


def import_outcomes(ws: Workspace, path: Path) -> dict[str, Any]:
    """Read the outcomes cadres filled in (a returned workbook or CSV), check every row
    against the run history, then store them all, or none if any row is wrong."""
    ensure_history(ws)
    known_runs = {r[0] for r in ws.rows(run_ids_sql())}
    cases = {(r[0], r[1]): (r[2], r[3], r[4]) for r in ws.rows(run_case_keys_sql())}
    problems: list[str] = []
    records: dict[str, _Answer] = {}
    for where, frame, first_row in _read_tables(path):
        missing = [c for c in _NEEDED if c not in frame.columns]
        if missing:
            problems.append(
                f"{where}: column not found: {', '.join(missing)} "
                "(运行编号 run_id, 疑点编号 case_id, 核实结果 outcome)"
            )
            continue
        _read_answers(where, frame, first_row, known_runs, cases, records, problems)
    if problems:
        shown = problems[:30]
        more = f"\n  ... and {len(problems) - 30} more" if len(problems) > 30 else ""
        raise InputFileError(
            f"{path}: {len(problems)} problem{'s' if len(problems) != 1 else ''}; nothing imported:\n"
            + "\n".join(f"  - {p}" for p in shown)
            + more,
            hint="fix the cells named above and import the file again",
        )
    _store_answers(ws, records, cases)
    by_outcome = {o: sum(1 for r in records.values() if r[1] == o) for o in OUTCOMES}
    return {
        "imported": len(records),
        "run_id": ", ".join(sorted({r[0] for r in records.values()})) or "-",
        "by_outcome": by_outcome,
    }


def _read_answers(
    where: str,
    frame: pl.DataFrame,
    first_row: int,
    known_runs: set[str],
    cases: dict[tuple[str, str], tuple[str, str, str]],
    records: dict[str, _Answer],
    problems: list[str],
) -> None:
    """The answered rows of one table into `records` (by case id), each problem (unknown
    outcome word, run or case; a cleared case without reason; two answers for one case) into
    `problems` with its row and column."""
    if "reason" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("reason"))
    rows = frame.select("run_id", "case_id", "outcome", "reason").with_row_index("i")
    for i, run_id, case_id, outcome_raw, reason in rows.iter_rows():
        row = i + first_row
        if outcome_raw is None or not str(outcome_raw).strip():
            continue  # not verified yet
        outcome = OUTCOME_WORDS.get(str(outcome_raw).strip().lower())
        if outcome is None:
            problems.append(
                f"{where}: row {row}, column 核实结果 (outcome): {outcome_raw!r} is not one of "
                f"{', '.join(OUTCOMES)} (or 属实 / 不属实 / 待核实)"
            )
            continue
        if run_id not in known_runs:
            problems.append(
                f"{where}: row {row}, column 运行编号 (run_id): run {run_id!r} is not in this "
                "workspace's history"
            )
            continue
        if (run_id, case_id) not in cases:
            problems.append(
                f"{where}: row {row}, column 疑点编号 (case_id): unknown case id {case_id!r} "
                f"in run {run_id}"
            )
            continue
        reason_text = (reason or "").strip() or None
        if outcome == "cleared" and not reason_text:
            problems.append(
                f"{where}: row {row}, column 核实说明 (reason): a cleared case needs a reason"
            )
            continue
        previous = records.get(case_id)
        if previous and (previous[1], previous[2]) != (outcome, reason_text):
            # The same case twice with different answers: which one holds is the cadre's
            # call, not ours (keeping the last would drop one silently).
            problems.append(
                f"{where}: row {row}, column 核实结果 (outcome): case {case_id} is here "
                f"{outcome!r} ({reason_text or 'no reason'}) but {previous[1]!r} "
                f"({previous[2] or 'no reason'}) at {previous[3]}"
            )
            continue
        if previous:
            continue  # the same answer twice (e.g. on the New sheet and the rule's): once
        records[case_id] = (run_id, outcome, reason_text, f"{where}: row {row}")


def _store_answers(
    ws: Workspace,
    records: dict[str, _Answer],
    cases: dict[tuple[str, str], tuple[str, str, str]],
) -> None:
    """The answers appended to `verifications`, with the case's rule, unit and evidence hash
    (an outcome holds for the evidence it was given for) and the time of the import."""
    if not records:
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    rows_out = []
    for case_id, (run_id, outcome, reason, source) in sorted(records.items()):
        rule_id, unit_key, evidence_hash = cases[(run_id, case_id)]
        rows_out.append(
            (case_id, run_id, rule_id, unit_key, outcome, reason, evidence_hash, source, now)
        )
    schema: dict[str, pl.DataType] = {c: pl.Utf8() for c, _ in HISTORY_TABLES["verifications"]}
    schema["imported_at"] = pl.Datetime("us")
    frame = pl.DataFrame(rows_out, schema=schema, orient="row")
    with ws.registered("_verifications", frame):
        ws.run(insert_rows_sql("verifications", "_verifications"))


def verification_status(
    ws: Workspace, rule: str | None = None, township: str | None = None
) -> pl.DataFrame:
    """Per rule and township, over the latest run's cases (cleared-and-suppressed included),
    optionally of one rule and/or one township."""
    ensure_history(ws)
    frame = ws.frame(verification_status_sql())
    if rule is not None:
        frame = frame.filter(pl.col("rule_id") == rule)
    if township is not None:
        frame = frame.filter(pl.col("township") == township)
    return mask_frame(frame)  # a human-facing table like the others


def status_totals(frame: pl.DataFrame) -> dict[str, Any]:
    """The totals row of a verification_status table."""
    sums = {
        c: int(frame.get_column(c).sum())
        for c in ("flagged", "verified", "confirmed", "cleared", "pending")
    }
    done = sums["confirmed"] + sums["cleared"]
    return {**sums, "confirmation_rate": sums["confirmed"] / done if done else None}
