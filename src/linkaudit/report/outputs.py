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
from linkaudit.config import Manifest, RegistryConfig
from linkaudit.engines.duckdb import Workspace
from linkaudit.normalize import mask_ids
from linkaudit.privacy import (
    mask_frame,
    mask_text,
    neutralise_formulas,
    private_tmpdir,
    remove_stale_tmpdirs,
)
from linkaudit.report.labels import FIELD_LABELS, ID_STATUS_ZH
from linkaudit.store import quote_ident, quote_literal, table_name

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
        text_zh = _evidence_zh_sql(reg, fields, dept, own, "name_raw" in have)
        on = (
            "e._key = f.person_key AND f.evidence_key IS NULL"
            if own
            else (f"e._key = f.evidence_key AND f.evidence_registry = {quote_literal(reg.name)}")
        )
        parts.append(
            f"SELECT f.rule_id, f.person_key, f.evidence_registry, f.evidence_key, {text} AS text, "
            f"{text_zh} AS text_zh, "
            f"{quote_literal(dept)} AS department, "
            f"{'e.name_raw' if 'name_raw' in have else 'NULL::VARCHAR'} AS matched_name "
            f"FROM findings f JOIN {quote_ident(table)} e ON {on} "
            f"WHERE f.rule_id = {quote_literal(rule.id)}"
        )
    if not parts:
        return (
            "SELECT NULL::VARCHAR AS rule_id, NULL::VARCHAR AS person_key, "
            "NULL::VARCHAR AS evidence_registry, NULL::VARCHAR AS evidence_key, "
            "NULL::VARCHAR AS text, NULL::VARCHAR AS text_zh, NULL::VARCHAR AS department, "
            "NULL::VARCHAR AS matched_name "
            "WHERE FALSE"
        )
    return " UNION ALL ".join(parts)


def _evidence_zh_sql(
    reg: RegistryConfig, fields: list[str], department: str, own: bool, has_name: bool
) -> str:
    """SQL of one record's evidence as a cadre reads it: '号牌：桂A·12345；车辆类型：小型轿车'.
    A department's record is introduced by its department, key and name; the register's own
    record (false exit ...) by nothing, so that members of a household repeating the same
    household fields collapse into one line."""
    shown = []
    for f in fields:
        label = FIELD_LABELS.get(f) or reg.fields.get(f) or f
        col = f"e.{quote_ident(f)}"
        if f == "id_status":
            cases = " ".join(
                f"WHEN {quote_literal(k)} THEN {quote_literal(v)}" for k, v in ID_STATUS_ZH.items()
            )
            value = f"CASE {col} {cases} ELSE CAST({col} AS VARCHAR) END"
        elif reg.canonical_type(f) == "amount":
            value = f"CAST(CAST({col} AS DECIMAL(20, 2)) AS VARCHAR)"
        else:
            value = f"CAST({col} AS VARCHAR)"
        shown.append(f"{quote_literal(label + '：')} || coalesce({value}, '（空）')")
    body = " || '；' || ".join(shown) if shown else "''"
    if own:
        return body
    head = f"{quote_literal(department + ' ')} || e._key"
    if has_name:
        head += " || coalesce('（' || e.name_raw || '）', '')"
    return f"{head} || {quote_literal('：' if shown else '')} || {body}"


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
    ws.register("_rule_meta", meta)
    try:
        frame = ws.frame(
            f"""
            WITH ev AS ({_evidence_text_sql(ws, manifest, rules)}),
            rows AS (
                SELECT f.rule_id, m.severity, m.scope, f.household_key, f.person_key,
                       b.name_raw AS name, b.id_number, {township} AS township,
                       {village} AS village, ev.text AS evidence, ev.text_zh AS evidence_zh,
                       f.match_probability,
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
                   string_agg(DISTINCT evidence_zh, chr(10) ORDER BY evidence_zh)
                       AS evidence_zh,
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
        ws.unregister("_rule_meta")
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
    """The county's workbook (see report.workbook)."""
    from linkaudit.report.workbook import write_workbook

    write_workbook(exceptions, rules, summary_rows, quarantine, path, changes=changes)
