"""Audit outputs: exceptions (csv + xlsx), links.csv and summary.json, written atomically.

An exception is one row per (rule, flagged unit): the person for person-scope rules, the
household for household-scope rules (listing the members that matched). Its evidence text names
each department record, its key, the matched name and the rule's evidence fields.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from linkaudit.audit.rules import Rule
from linkaudit.config import Manifest
from linkaudit.normalize import mask_ids
from linkaudit.privacy import (
    mask_frame,
    mask_text,
    neutralise_formulas,
    private_tmpdir,
    remove_stale_tmpdirs,
)
from linkaudit.store import Workspace, quote_ident, quote_literal, table_name

EXCEPTION_COLUMNS = [
    "run_id",
    "case_id",
    "status",
    "rule_id",
    "severity",
    "scope",
    "household_key",
    "person_key",
    "name",
    "id_number_masked",
    "township",
    "village",
    "evidence_department",
    "evidence_records",
    "matched_name",
    "evidence",
    "match_probability",
    "outcome",
    "reason",
]
#: Internal columns carried with exceptions (history), not written to the files.
CASE_COLUMNS = ["unit_key", "evidence_hash"]

#: Chinese headers of the spreadsheet, column for column with exceptions.csv.
CHINESE_HEADERS = {
    "run_id": "运行编号",
    "case_id": "疑点编号",
    "status": "状态",
    "rule_id": "规则",
    "severity": "类别",
    "scope": "范围",
    "household_key": "户编号",
    "person_key": "人员编号",
    "name": "姓名",
    "id_number_masked": "身份证号(脱敏)",
    "township": "乡镇",
    "village": "村",
    "evidence_department": "证据部门",
    "evidence_records": "证据记录号",
    "matched_name": "匹配姓名",
    "evidence": "比对证据",
    "match_probability": "匹配概率",
    "outcome": "核实结果",
    "reason": "核实说明",
}
HEADER_COLUMNS = {v: k for k, v in CHINESE_HEADERS.items()}

SEVERITY_ZH = {"ineligible": "不符合识别标准", "risk": "风险预警", "data_quality": "数据质量"}

DISCLAIMER = (
    "本表所列为数据比对发现的疑点，不是认定结论：每一条都须由乡镇干部入户核实后方可处理。"
    " Flags are suspects for field verification, not verdicts: every case must be verified "
    "before any action is taken."
)


def tmp_bases(target: Path) -> tuple[Path, Path]:
    """Where an output's temp files go: a private folder in the output folder's parent (so
    that out/ only ever holds finished files), else in the output folder itself."""
    return target.parent.parent, target.parent


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path in a private folder (see privacy.private_tmpdir); on success it
    replaces target in one rename. The folder goes on every way out; one left by a killed run
    is removed here by the next."""
    target.parent.mkdir(parents=True, exist_ok=True)
    bases = tmp_bases(target)
    remove_stale_tmpdirs(bases)
    with private_tmpdir(*bases) as folder:
        tmp_path = folder / target.name
        yield tmp_path
        # Files in the private folder are the user's; outputs get the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        _replace(tmp_path, target)


def _replace(tmp_path: Path, target: Path) -> None:
    try:
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # The output folder is another file system (a mount): copy beside it, then rename.
        fd, beside = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(tmp_path, beside)
            os.chmod(beside, os.stat(tmp_path).st_mode & 0o777)
            os.replace(beside, target)
        finally:
            Path(beside).unlink(missing_ok=True)


def _evidence_text_sql(ws: Workspace, manifest: Manifest, rules: list[Rule]) -> str:
    """SQL giving (rule_id, person_key, evidence_registry, evidence_key, text) for every
    finding: the department record's fields, or the beneficiary's own for register rules."""
    ben = manifest.beneficiaries
    parts = []
    for rule in rules:
        reg = manifest.registries.get(rule.registry)
        if reg is None:
            continue
        table = table_name("reg", reg.name)
        if not ws.has_table(table):
            continue
        have = set(ws.columns(table))
        dept = reg.department or reg.name
        fields = [f for f in rule.evidence if f in have]
        pieces = [quote_literal(f"{dept} "), "e._key"]
        if "name_raw" in have:
            pieces += ["' '", "coalesce(e.name_raw, '')"]
        for f in fields:
            pieces += [f"' {f}='", f"coalesce(CAST(e.{quote_ident(f)} AS VARCHAR), '')"]
        text = " || ".join(pieces)
        own = rule.registry == ben.name and not rule.duplicate_of
        on = (
            "e._key = f.person_key AND f.evidence_key IS NULL"
            if own
            else (f"e._key = f.evidence_key AND f.evidence_registry = {quote_literal(reg.name)}")
        )
        parts.append(
            f"SELECT f.rule_id, f.person_key, f.evidence_registry, f.evidence_key, {text} AS text, "
            f"{quote_literal(dept)} AS department, "
            f"{'e.name_raw' if 'name_raw' in have else 'NULL::VARCHAR'} AS matched_name "
            f"FROM findings f JOIN {quote_ident(table)} e ON {on} "
            f"WHERE f.rule_id = {quote_literal(rule.id)}"
        )
    if not parts:
        return (
            "SELECT NULL::VARCHAR AS rule_id, NULL::VARCHAR AS person_key, "
            "NULL::VARCHAR AS evidence_registry, NULL::VARCHAR AS evidence_key, "
            "NULL::VARCHAR AS text, NULL::VARCHAR AS department, NULL::VARCHAR AS matched_name "
            "WHERE FALSE"
        )
    return " UNION ALL ".join(parts)


def build_exceptions(
    ws: Workspace, manifest: Manifest, rules: list[Rule], run_id: str
) -> pl.DataFrame:
    """One row per (rule, flagged unit), ordered by rule, township, household, person."""
    ben = manifest.beneficiaries
    bt = quote_ident(table_name("reg", ben.name))
    bcols = set(ws.columns(table_name("reg", ben.name)))
    township = "b.township" if "township" in bcols else "NULL::VARCHAR"
    village = "b.village" if "village" in bcols else "NULL::VARCHAR"
    meta = pl.DataFrame(
        {
            "rule_id": [r.id for r in rules],
            "severity": [r.severity for r in rules],
            "scope": [r.scope for r in rules],
        },
        schema={"rule_id": pl.Utf8, "severity": pl.Utf8, "scope": pl.Utf8},
    )
    ws.con.register("_rule_meta", meta.to_arrow())
    try:
        frame = ws.query_pl(
            f"""
            WITH ev AS ({_evidence_text_sql(ws, manifest, rules)}),
            rows AS (
                SELECT f.rule_id, m.severity, m.scope, f.household_key, f.person_key,
                       b.name_raw AS name, b.id_number, {township} AS township,
                       {village} AS village, ev.text AS evidence, f.match_probability,
                       ev.department, ev.matched_name, f.evidence_key,
                       f.evidence_registry || ':' || f.evidence_key AS evidence_ref,
                       CASE WHEN m.scope = 'household' THEN coalesce(f.household_key, f.person_key)
                            ELSE f.person_key END AS unit
                FROM findings f
                JOIN _rule_meta m USING (rule_id)
                JOIN {bt} b ON b._key = f.person_key
                LEFT JOIN ev ON ev.rule_id = f.rule_id AND ev.person_key = f.person_key
                     AND ev.evidence_registry IS NOT DISTINCT FROM f.evidence_registry
                     AND ev.evidence_key IS NOT DISTINCT FROM f.evidence_key
            )
            SELECT rule_id, any_value(severity) AS severity, any_value(scope) AS scope,
                   min(household_key) AS household_key,
                   string_agg(DISTINCT person_key, ';' ORDER BY person_key) AS person_key,
                   string_agg(DISTINCT name, ';' ORDER BY name) AS name,
                   string_agg(DISTINCT id_number, ';' ORDER BY id_number) AS id_number,
                   min(township) AS township, min(village) AS village,
                   string_agg(DISTINCT department, ';' ORDER BY department) AS evidence_department,
                   string_agg(DISTINCT evidence_key, ';' ORDER BY evidence_key) AS evidence_records,
                   string_agg(DISTINCT matched_name, ';' ORDER BY matched_name) AS matched_name,
                   string_agg(DISTINCT evidence, '; ' ORDER BY evidence) AS evidence,
                   min(match_probability) AS match_probability,
                   unit AS unit_key,
                   -- The case id: rule + unit + evidence record keys, stable across runs.
                   substr(md5(rule_id || '|' || unit || '|' || coalesce(
                       string_agg(DISTINCT evidence_ref, ',' ORDER BY evidence_ref), '')), 1, 12)
                       AS case_id,
                   -- What the evidence says (its values too): a change reopens a cleared case.
                   md5(coalesce(string_agg(DISTINCT evidence, '; ' ORDER BY evidence), ''))
                       AS evidence_hash
            FROM rows GROUP BY rule_id, unit
            ORDER BY rule_id, township NULLS LAST, household_key, person_key
            """
        )
    finally:
        ws.con.unregister("_rule_meta")
    parts = frame.select(
        pl.int_range(pl.len()).alias("i"), pl.col("id_number").str.split(";")
    ).explode("id_number")
    parts = parts.with_columns(mask_ids(parts.get_column("id_number")).alias("m"))
    id_masked = (
        parts.group_by("i", maintain_order=True)
        .agg(pl.col("m").drop_nulls().str.join(";"))
        .sort("i")
        .get_column("m")
    )
    id_masked = id_masked.replace("", None)
    frame = frame.with_columns(
        pl.lit(run_id).alias("run_id"),
        id_masked.alias("id_number_masked"),
        pl.col("match_probability").round(6),
        pl.lit("new").alias("status"),
        pl.lit(None, dtype=pl.Utf8).alias("outcome"),
        pl.lit(None, dtype=pl.Utf8).alias("reason"),
    ).drop("id_number")
    return frame.select(EXCEPTION_COLUMNS + CASE_COLUMNS)


def write_csv(frame: pl.DataFrame, path: Path) -> None:
    """A CSV for people and machines: ID-shaped text masked, formula-like text neutralised."""
    frame = neutralise_formulas(mask_frame(frame))
    with atomic_path(path) as tmp:
        # UTF-8 with BOM so that Excel opens Chinese text correctly; machines read it too.
        tmp.write_bytes(b"\xef\xbb\xbf" + frame.write_csv().encode("utf-8"))


def write_json(data: dict[str, Any], path: Path) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    with atomic_path(path) as tmp:
        tmp.write_text(mask_text(text) + "\n", encoding="utf-8")


def write_xlsx(
    exceptions: pl.DataFrame,
    rules: list[Rule],
    summary_rows: list[dict[str, Any]],
    quarantine: pl.DataFrame,
    path: Path,
    changes: dict[str, int] | None = None,
) -> None:
    """The spreadsheet for township cadres. Every text cell is written as a string, so a value
    such as '=HYPERLINK(...)' stays text and is never evaluated as a formula. Cadres fill the
    outcome column (a drop-down) and hand the file back to `linkaudit verify import`.
    ID-shaped text is masked in every sheet (keys that are ID numbers included); rows map back
    to their case through the case id. xlsxwriter's constant-memory temp files (every cell of
    the run) stay in the private temp folder, removed however the writing ends."""
    import xlsxwriter

    exceptions = mask_frame(exceptions.select(EXCEPTION_COLUMNS))
    quarantine = mask_frame(quarantine)
    summary_rows = [
        {k: mask_text(v) if isinstance(v, str) else v for k, v in r.items()} for r in summary_rows
    ]
    with atomic_path(path) as tmp:
        wb = xlsxwriter.Workbook(
            str(tmp),
            {
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "constant_memory": True,
                "tmpdir": str(tmp.parent),
            },
        )
        wb.set_properties({"title": "linkaudit exceptions", "comments": DISCLAIMER})
        bold = wb.add_format({"bold": True})
        header = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
        wrap = wb.add_format({"text_wrap": True})

        ws = wb.add_worksheet("汇总 Summary")
        ws.set_column(0, 0, 24)
        ws.set_column(1, 1, 44)
        ws.set_column(2, 7, 14)
        ws.write_string(0, 0, "疑点汇总 Summary of flags", bold)
        ws.write_string(1, 0, DISCLAIMER, wrap)
        row = 2
        if changes:
            text = "  ".join(f"{k}: {v:,}" for k, v in changes.items())
            ws.write_string(row, 0, f"与上次运行相比 Since the baseline run — {text}")
        row = 3
        cols = [
            "规则 rule",
            "名称 title",
            "类别 severity",
            "范围 scope",
            "人数 persons",
            "户数 households",
            "证据记录 evidence records",
            "说明 note",
        ]
        ws.write_row(row, 0, cols, header)
        for r in summary_rows:
            row += 1
            ws.write_row(
                row,
                0,
                [
                    r["rule_id"],
                    f"{r['title_zh']} {r['title_en']}",
                    SEVERITY_ZH.get(r["severity"], r["severity"]),
                    r["scope"],
                    r["persons"],
                    r["households"],
                    r["evidence_records"],
                    r.get("skipped") or "",
                ],
            )
        row += 2
        by_town = (
            exceptions.group_by("rule_id", "township")
            .agg(pl.len().alias("n"))
            .sort("rule_id", "township", nulls_last=True)
        )
        ws.write_string(row, 0, "按乡镇 By township (flagged units)", bold)
        row += 1
        ws.write_row(row, 0, ["规则 rule", "乡镇 township", "疑点数 flags"], header)
        for rule_id, town, n in by_town.iter_rows():
            row += 1
            ws.write_row(row, 0, [rule_id, town or "", n])

        headers = [CHINESE_HEADERS[c] for c in EXCEPTION_COLUMNS]
        used_names: set[str] = set()
        if changes is not None:
            fresh = exceptions.filter(pl.col("status").is_in(["new", "reopened"]))
            sheet = wb.add_worksheet(_sheet_name("本次新增 New", "new", used_names))
            _write_table(sheet, headers, fresh, header, outcome_col=True)
        for rule in rules:
            rows = exceptions.filter(pl.col("rule_id") == rule.id)
            sheet = wb.add_worksheet(_sheet_name(rule.title.zh, rule.id, used_names))
            _write_table(sheet, headers, rows, header, outcome_col=True)
        if quarantine.height:
            sheet = wb.add_worksheet(_sheet_name("未能读取的行", "quarantine", used_names))
            q_headers = ["登记册 registry", "文件 file", "行 row", "列 column", "原因 reason"]
            _write_table(sheet, q_headers, quarantine, header, outcome_col=False)
        wb.close()


def _sheet_name(title: str, rule_id: str, used: set[str]) -> str:
    bad = "[]:*?/\\"
    base = "".join("_" if ch in bad else ch for ch in title)[:28] or rule_id[:28]
    name, i = base, 2
    while name.lower() in used:
        name = f"{base[:26]}{i}"
        i += 1
    used.add(name.lower())
    return name


def _write_table(
    sheet: Any, headers: list[str], rows: pl.DataFrame, header: Any, outcome_col: bool
) -> None:
    sheet.freeze_panes(1, 0)
    for c, h in enumerate(headers):
        sheet.set_column(c, c, 40 if "证据" in h or "file" in h else max(10, len(h) * 2))
    sheet.autofilter(0, 0, max(rows.height, 1), len(headers) - 1)
    if outcome_col and "核实结果" in headers and rows.height:
        c = headers.index("核实结果")
        sheet.data_validation(
            1,
            c,
            rows.height,
            c,
            {"validate": "list", "source": ["confirmed", "cleared", "pending"]},
        )
    sheet.write_row(0, 0, headers, header)
    # Rows in order (constant-memory mode). Each column's writer is chosen once from its dtype:
    # text through write_string (never a formula), numbers through write_number.
    numeric = [dtype.is_numeric() for dtype in rows.dtypes]
    write_number, write_string = sheet.write_number, sheet.write_string
    for r, values in enumerate(rows.iter_rows(), start=1):
        for c, value in enumerate(values):
            if value is None:
                continue
            if numeric[c]:
                write_number(r, c, value)
            else:
                write_string(r, c, str(value))
