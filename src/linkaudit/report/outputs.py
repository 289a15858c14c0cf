"""Audit outputs: exceptions (csv + xlsx), links.csv and summary.json, written atomically.

An exception is one row per (rule, flagged unit): the person for person-scope rules, the
household for household-scope rules (listing the members that matched). Its evidence text names
each department record, its key, the matched name and the rule's evidence fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from linkaudit.audit.rules import Rule
from linkaudit.config import Manifest
from linkaudit.engines.base import Engine
from linkaudit.normalize import mask_ids
from linkaudit.privacy import mask_frame, mask_text, neutralise_formulas
from linkaudit.report.atomic import atomic_path, tmp_bases
from linkaudit.report.columns import (
    CASE_COLUMNS,
    CHINESE_HEADERS,
    DISCLAIMER,
    EXCEPTION_COLUMNS,
    HEADER_COLUMNS,
)
from linkaudit.report.exceptions_sql import evidence_part_sql, evidence_text_sql, exception_rows_sql
from linkaudit.store import table_name

#: Names other modules and tests import from here (defined in report.columns, report.atomic).
__all__ = [
    "CASE_COLUMNS",
    "CHINESE_HEADERS",
    "DISCLAIMER",
    "EXCEPTION_COLUMNS",
    "HEADER_COLUMNS",
    "atomic_path",
    "build_exceptions",
    "tmp_bases",
    "write_csv",
    "write_json",
    "write_xlsx",
]


def _evidence_sql(ws: Engine, manifest: Manifest, rules: list[Rule]) -> str:
    """The evidence of every rule's findings, over the registry tables that are loaded (a
    rule's evidence fields that its table lacks are left out)."""
    ben = manifest.beneficiaries
    parts = []
    for rule in rules:
        reg = manifest.registries.get(rule.registry)
        if reg is None:
            continue
        table = table_name("reg", reg.name)
        if not ws.has_table(table):
            continue
        own = rule.registry == ben.name and not rule.duplicate_of
        parts.append(
            evidence_part_sql(rule.id, reg, table, set(ws.columns(table)), rule.evidence, own)
        )
    return evidence_text_sql(parts)


def _rule_meta(rules: list[Rule]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "rule_id": [r.id for r in rules],
            "severity": [r.severity for r in rules],
            "scope": [r.scope for r in rules],
        },
        schema={"rule_id": pl.Utf8, "severity": pl.Utf8, "scope": pl.Utf8},
    )


def _masked_id_lists(ids: pl.Series) -> pl.Series:
    """Each ';'-joined list of ID numbers with every ID masked (None for an empty list)."""
    parts = pl.DataFrame({"id_number": ids}).select(
        pl.int_range(pl.len()).alias("i"), pl.col("id_number").str.split(";")
    )
    parts = parts.explode("id_number")
    parts = parts.with_columns(mask_ids(parts.get_column("id_number")).alias("m"))
    masked = (
        parts.group_by("i", maintain_order=True)
        .agg(pl.col("m").drop_nulls().str.join(";"))
        .sort("i")
        .get_column("m")
    )
    return masked.replace("", None)


def build_exceptions(
    ws: Engine, manifest: Manifest, rules: list[Rule], run_id: str
) -> pl.DataFrame:
    """One row per (rule, flagged unit), ordered by rule, township, household, person: the
    rows from the workspace (see exceptions_sql), then ID numbers masked and the columns a
    new case starts with (status new, no outcome yet)."""
    bt = table_name("reg", manifest.beneficiaries.name)
    bcols = set(ws.columns(bt))
    query = exception_rows_sql(
        _evidence_sql(ws, manifest, rules),
        bt,
        "_rule_meta",
        has_township="township" in bcols,
        has_village="village" in bcols,
    )
    with ws.registered("_rule_meta", _rule_meta(rules)):
        frame = ws.frame(query)
    frame = frame.with_columns(
        pl.lit(run_id).alias("run_id"),
        _masked_id_lists(frame.get_column("id_number")).alias("id_number_masked"),
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
        # Written by polars straight to the file (no Python string of the whole CSV).
        frame.write_csv(tmp, include_bom=True)


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
