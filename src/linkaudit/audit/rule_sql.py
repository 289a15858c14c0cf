"""SQL of rules → findings: pure builders, DuckDB-dialect text, run by an engine.

Each rule becomes one SELECT of finding rows
`(rule_id, person_key, household_key, evidence_registry, evidence_key, match_probability)`;
the builders here take table names, aliases and already-compiled conditions (see
`audit.compile`) and return text, so a rule's SQL can be read and tested without a database.
Aliases: `b` the beneficiary, `r` a department record, `o` another beneficiary record,
`k` the accepted links.
"""

from __future__ import annotations

import datetime as dt

from linkaudit.store import quote_ident, quote_literal

__all__ = [
    "FINDINGS_COLUMNS",
    "aggregate_rule_sql",
    "distinct_persons_sql",
    "duplicate_rule_sql",
    "findings_table_sql",
    "household_persons_sql",
    "insert_findings_sql",
    "rule_findings_sql",
    "findings_sql",
    "linked_base_sql",
    "linked_rows_sql",
    "linked_rule_sql",
    "register_rule_sql",
    "rule_counts_sql",
    "window_sql",
]

#: The findings table: one row per (rule, beneficiary, evidence record).
FINDINGS_COLUMNS = (
    ("rule_id", "VARCHAR"),
    ("person_key", "VARCHAR"),
    ("household_key", "VARCHAR"),
    ("evidence_registry", "VARCHAR"),
    ("evidence_key", "VARCHAR"),
    ("match_probability", "DOUBLE"),
)


def _household(has_household: bool) -> str:
    return "b.household" if has_household else "CAST(NULL AS VARCHAR)"


def window_sql(
    column: str, alias: str, as_of: dt.date | None, months: int | None, days: int | None
) -> str:
    """`alias.column` within the window ending on the audit date: (as_of - span, as_of].
    A window of neither months nor days is a year (365 days)."""
    col = f"{alias}.{quote_ident(column)}"
    span = f"INTERVAL {int(months)} MONTH" if months else f"INTERVAL {int(days or 365)} DAY"
    day = f"DATE '{as_of.isoformat()}'" if as_of else "CAST(NULL AS DATE)"
    return f"({col} > {day} - {span} AND {col} <= {day})"


def register_rule_sql(
    rule_id: str, beneficiaries: str, has_household: bool, condition: str, window: str = "TRUE"
) -> str:
    """A rule on the register alone (false exit ...): the beneficiary is the evidence."""
    return (
        f"SELECT {quote_literal(rule_id)} AS rule_id, b._key AS person_key, "
        f"{_household(has_household)} AS household_key, "
        "CAST(NULL AS VARCHAR) AS evidence_registry, CAST(NULL AS VARCHAR) AS evidence_key, "
        f"CAST(NULL AS DOUBLE) AS match_probability FROM {quote_ident(beneficiaries)} b "
        f"WHERE ({condition}) AND {window}"
    )


def duplicate_rule_sql(
    rule_id: str,
    registry: str,
    beneficiaries: str,
    has_household: bool,
    same: list[str],
    condition: str,
    other_condition: str,
    window: str = "TRUE",
) -> str:
    """Two records (b, o) of the beneficiaries `registry` (table `beneficiaries`) equal on
    every `same` column, both meeting the condition: b is flagged, o is its evidence."""
    bt = quote_ident(beneficiaries)
    on = " AND ".join(f"o.{quote_ident(c)} = b.{quote_ident(c)}" for c in same)
    return (
        f"SELECT {quote_literal(rule_id)} AS rule_id, b._key AS person_key, "
        f"{_household(has_household)} AS household_key, "
        f"{quote_literal(registry)} AS evidence_registry, "
        "o._key AS evidence_key, CAST(NULL AS DOUBLE) AS match_probability "
        f"FROM {bt} b JOIN {bt} o ON {on} AND o._key <> b._key "
        f"WHERE ({condition}) AND ({other_condition}) AND {window}"
    )


def linked_rows_sql(beneficiaries: str, records: str, registry: str) -> tuple[str, str]:
    """FROM and WHERE of the department records accepted as links to a beneficiary."""
    return (
        f"links k JOIN {quote_ident(records)} r ON r._key = k.record_key "
        f"JOIN {quote_ident(beneficiaries)} b ON b._key = k.person_key",
        f"k.registry = {quote_literal(registry)} AND k.decision = 'match'",
    )


def linked_base_sql(
    beneficiaries: str,
    records: str,
    registry: str,
    has_household: bool,
    condition: str,
    window: str = "TRUE",
) -> str:
    """The linked department records meeting the condition, each with its beneficiary
    (`__person`, `__household`) and link probability (`__p`), then the record's columns."""
    rows, linked = linked_rows_sql(beneficiaries, records, registry)
    return (
        f"SELECT b._key AS __person, {_household(has_household)} AS __household, "
        f"k.match_probability AS __p, r.* FROM {rows} "
        f"WHERE {linked} AND ({condition}) AND {window}"
    )


def linked_rule_sql(rule_id: str, base: str, registry: str) -> str:
    """One finding per record of `base` (a linked_base_sql)."""
    return (
        f"SELECT {quote_literal(rule_id)} AS rule_id, __person AS person_key, "
        f"__household AS household_key, {quote_literal(registry)} AS evidence_registry, "
        f"_key AS evidence_key, __p AS match_probability FROM ({base})"
    )


def aggregate_rule_sql(rule_id: str, base: str, registry: str, unit: str, having: str) -> str:
    """The records of `base` whose unit (`__person` or `__household`) passes HAVING over all
    its records: every record of a flagged unit is a finding."""
    if unit not in ("__person", "__household"):
        raise ValueError(f"aggregate unit {unit!r} is not __person or __household")
    return (
        f"WITH base AS ({base}), "
        f"flagged AS (SELECT {unit} AS __unit FROM base r GROUP BY {unit} HAVING {having}) "
        f"SELECT {quote_literal(rule_id)} AS rule_id, __person AS person_key, "
        f"__household AS household_key, {quote_literal(registry)} AS evidence_registry, "
        "_key AS evidence_key, __p AS match_probability "
        f"FROM base JOIN flagged ON flagged.__unit = base.{unit}"
    )


def findings_table_sql() -> str:
    """A new, empty findings table (the previous run's findings replaced)."""
    cols = ", ".join(f"{name} {kind}" for name, kind in FINDINGS_COLUMNS)
    return f"CREATE OR REPLACE TABLE findings ({cols})"


def insert_findings_sql(rule_sql: str) -> str:
    """A rule's distinct findings appended to the findings table."""
    return f"INSERT INTO findings SELECT DISTINCT * FROM ({rule_sql})"


def rule_findings_sql(rule_sql: str) -> str:
    """A rule's distinct findings, typed as the findings table's columns (by position, as
    an INSERT would): one table per rule, united into `findings` by `findings_sql`."""
    names = [name for name, _ in FINDINGS_COLUMNS]
    cols = ", ".join(f"CAST(f.{n} AS {kind}) AS {n}" for n, kind in FINDINGS_COLUMNS)
    return f"SELECT DISTINCT {cols} FROM ({rule_sql}) AS f({', '.join(names)})"


def findings_sql(rule_tables: list[str]) -> str:
    """`findings`: every rule's table, or no rows with the columns typed."""
    if not rule_tables:
        cols = ", ".join(f"CAST(NULL AS {kind}) AS {n}" for n, kind in FINDINGS_COLUMNS)
        return f"SELECT {cols} WHERE FALSE"
    return " UNION ALL ".join(f"SELECT * FROM {quote_ident(t)}" for t in rule_tables)


def rule_counts_sql(table: str = "findings") -> str:
    """Persons, households and evidence records of one rule (parameter 1: the rule id)."""
    return (
        "SELECT count(DISTINCT person_key), count(DISTINCT household_key), "
        "count(DISTINCT (evidence_registry, evidence_key)) "
        "FILTER (WHERE evidence_key IS NOT NULL) "
        f"FROM {quote_ident(table)} WHERE rule_id = ?"
    )


def household_persons_sql(beneficiaries: str, table: str = "findings") -> str:
    """Members of the households one rule flags (parameter 1: the rule id)."""
    return (
        f"SELECT count(*) FROM {quote_ident(beneficiaries)} WHERE household IN "
        f"(SELECT household_key FROM {quote_ident(table)} WHERE rule_id = ?)"
    )


def distinct_persons_sql(rules: int) -> str:
    """Persons flagged by any of `rules` rules (their ids bound as parameters 1..rules)."""
    if rules < 1:
        raise ValueError("distinct_persons_sql needs at least one rule")
    marks = ", ".join("?" for _ in range(rules))
    return f"SELECT count(DISTINCT person_key) FROM findings WHERE rule_id IN ({marks})"
