"""SQL of the exception rows: findings grouped per (rule, flagged unit) with their evidence.

Pure builders returning DuckDB-dialect text; `report.outputs` runs them through the engine.
The evidence of a finding is its department record (or, for a rule on the register alone, the
beneficiary's own record) as text: one line for machines (`evidence`) and one as a cadre reads
it (`evidence_zh`, Chinese field labels).
"""

from __future__ import annotations

from collections.abc import Collection

from linkaudit.config import RegistryConfig
from linkaudit.report.labels import FIELD_LABELS, ID_STATUS_ZH
from linkaudit.store import quote_ident, quote_literal

__all__ = [
    "EMPTY_EVIDENCE_SQL",
    "evidence_part_sql",
    "evidence_text_sql",
    "evidence_zh_sql",
    "exception_rows_sql",
]

#: The evidence relation when no rule has evidence to show (its columns, no rows).
EMPTY_EVIDENCE_SQL = (
    "SELECT CAST(NULL AS VARCHAR) AS rule_id, CAST(NULL AS VARCHAR) AS person_key, "
    "CAST(NULL AS VARCHAR) AS evidence_registry, CAST(NULL AS VARCHAR) AS evidence_key, "
    "CAST(NULL AS VARCHAR) AS text, CAST(NULL AS VARCHAR) AS text_zh, "
    "CAST(NULL AS VARCHAR) AS department, CAST(NULL AS VARCHAR) AS matched_name "
    "WHERE FALSE"
)


def evidence_zh_sql(
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


def evidence_part_sql(
    rule_id: str,
    reg: RegistryConfig,
    table: str,
    columns: Collection[str],
    evidence: list[str],
    own: bool,
) -> str:
    """(rule_id, person_key, evidence_registry, evidence_key, text, text_zh, department,
    matched_name) for the findings of one rule: its evidence records in `table` (which has
    `columns`), showing the rule's `evidence` fields it has. `own`: the evidence is the
    beneficiary's own record (a rule on the register alone)."""
    dept = reg.department or reg.name
    has_name = "name_raw" in columns
    fields = [f for f in evidence if f in columns]
    pieces = [quote_literal(f"{dept} "), "e._key"]
    if has_name:
        pieces += ["' '", "coalesce(e.name_raw, '')"]
    for f in fields:
        pieces += [f"' {f}='", f"coalesce(CAST(e.{quote_ident(f)} AS VARCHAR), '')"]
    text = " || ".join(pieces)
    text_zh = evidence_zh_sql(reg, fields, dept, own, has_name)
    on = (
        "e._key = f.person_key AND f.evidence_key IS NULL"
        if own
        else f"e._key = f.evidence_key AND f.evidence_registry = {quote_literal(reg.name)}"
    )
    return (
        f"SELECT f.rule_id, f.person_key, f.evidence_registry, f.evidence_key, {text} AS text, "
        f"{text_zh} AS text_zh, "
        f"{quote_literal(dept)} AS department, "
        f"{'e.name_raw' if has_name else 'CAST(NULL AS VARCHAR)'} AS matched_name "
        f"FROM findings f JOIN {quote_ident(table)} e ON {on} "
        f"WHERE f.rule_id = {quote_literal(rule_id)}"
    )


def evidence_text_sql(parts: list[str]) -> str:
    """The evidence of every rule: its parts (evidence_part_sql) one after another."""
    return " UNION ALL ".join(parts) if parts else EMPTY_EVIDENCE_SQL


def exception_rows_sql(
    evidence_sql: str,
    beneficiaries: str,
    rule_meta: str,
    has_township: bool,
    has_village: bool,
) -> str:
    """One row per (rule, flagged unit): the unit is the household for household-scope rules
    (`rule_meta` gives each rule_id its severity and scope), else the person. Members, names,
    ID numbers (unmasked: the caller masks them), departments and evidence are joined with ';'.
    The case id hashes rule, unit and evidence record keys (stable across runs); the evidence
    hash also covers the evidence text, so a change in what a department says reopens a case."""
    township = "b.township" if has_township else "CAST(NULL AS VARCHAR)"
    village = "b.village" if has_village else "CAST(NULL AS VARCHAR)"
    return f"""
        WITH ev AS ({evidence_sql}),
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
            JOIN {quote_ident(rule_meta)} m ON m.rule_id = f.rule_id
            JOIN {quote_ident(beneficiaries)} b ON b._key = f.person_key
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
               substr(md5(rule_id || '|' || unit || '|' || coalesce(
                   string_agg(DISTINCT evidence_ref, ',' ORDER BY evidence_ref), '')), 1, 12)
                   AS case_id,
               md5(coalesce(string_agg(DISTINCT evidence, '; ' ORDER BY evidence), ''))
                   AS evidence_hash
        FROM rows GROUP BY rule_id, unit
        ORDER BY rule_id, township NULLS LAST, household_key, person_key
        """
