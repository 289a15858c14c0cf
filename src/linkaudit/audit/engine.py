"""Rules → SQL → findings, set-wise in DuckDB.

Each rule compiles to one SELECT producing finding rows
`(rule_id, person_key, household_key, evidence_registry, evidence_key, match_probability)`:
one row per beneficiary and evidence record. All rules run into the `findings` table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from linkaudit.audit.compile import ConditionError, Scope, compile_condition, rule_scope
from linkaudit.audit.rules import Rule
from linkaudit.config import DATE_TYPES, Manifest
from linkaudit.errors import RuleError, WorkspaceError
from linkaudit.store import Workspace, quote_ident, quote_literal, table_name

#: Fields whose values must never reach an output unmasked.
SENSITIVE_FIELDS = frozenset({"id_number"})


@dataclass
class RuleCheck:
    rule: Rule
    sql: str | None
    skipped: str | None = None  # why the rule does not apply to this manifest


@dataclass
class RuleResult:
    rule_id: str
    title_zh: str
    title_en: str
    severity: str
    scope: str
    registry: str
    persons: int = 0
    households: int = 0
    evidence_records: int = 0
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RulesReport:
    results: list[RuleResult] = field(default_factory=list)
    ineligible_distinct_cross_department: int = 0
    ineligible_distinct: int = 0


def _params(rule: Rule, manifest: Manifest) -> dict[str, Any]:
    merged = dict(rule.parameters)
    merged.update(manifest.parameters)  # the manifest adapts shipped rules to its county
    return merged


def _window_sql(rule: Rule, alias: str, as_of: dt.date) -> str:
    if not rule.window:
        return "TRUE"
    col = f"{alias}.{quote_ident(rule.window.field)}"
    span = (
        f"INTERVAL {rule.window.months} MONTH"
        if rule.window.months
        else f"INTERVAL {rule.window.days or 365} DAY"
    )
    day = f"DATE '{as_of.isoformat()}'"
    return f"({col} > {day} - {span} AND {col} <= {day})"


def compile_rule(rule: Rule, manifest: Manifest) -> str:
    """The rule's SELECT. Raises ConditionError (message without file/rule; caller adds them)."""
    ben = manifest.beneficiaries
    scope = rule_scope(manifest, rule.registry)
    params = _params(rule, manifest)
    as_of = manifest.as_of
    cond = compile_condition(rule.condition, scope, params, as_of)
    for col in rule.evidence:
        if col not in scope.record_columns:
            raise ConditionError(f"evidence field `{col}` is not a field of {rule.registry!r}")
        if col in SENSITIVE_FIELDS:
            raise ConditionError(
                f"evidence field `{col}` would print full ID numbers; use id_status, or the "
                "masked ID the spreadsheet shows anyway"
            )
    if rule.window:
        wf = rule.window.field
        if wf not in scope.record_columns:
            raise ConditionError(f"window field `{wf}` is not a field of {rule.registry!r}")
        reg_cfg = manifest.registries[rule.registry]
        if (
            wf not in ("birth_date", "id_birth_date")
            and reg_cfg.canonical_type(wf) not in DATE_TYPES
        ):
            raise ConditionError(f"window field `{wf}` is not a date field of {rule.registry!r}")
    bt = quote_ident(table_name("reg", ben.name))
    rid = quote_literal(rule.id)[1:-1]  # rule ids are validated identifiers; quoted anyway
    household = "b.household" if ben.household else "NULL::VARCHAR"
    register_only = rule.registry == ben.name
    if rule.duplicate_of:
        if not register_only:
            raise ConditionError("duplicate_of applies to the beneficiaries registry only")
        for col in rule.duplicate_of:
            if col not in scope.record_columns:
                raise ConditionError(f"duplicate_of field `{col}` is not a field of {ben.name!r}")
        on = " AND ".join(f"o.{quote_ident(c)} = b.{quote_ident(c)}" for c in rule.duplicate_of)
        other_cond = compile_condition(
            rule.condition, Scope(**{**scope.__dict__, "record_alias": "o"}), params, as_of
        )
        return (
            f"SELECT '{rid}' AS rule_id, b._key AS person_key, {household} AS household_key, "
            f"{quote_literal(ben.name)} AS evidence_registry, o._key AS evidence_key, "
            f"NULL::DOUBLE AS match_probability "
            f"FROM {bt} b JOIN {bt} o ON {on} AND o._key <> b._key "
            f"WHERE ({cond}) AND ({other_cond}) AND {_window_sql(rule, 'b', as_of)}"
        )
    if register_only:
        if rule.aggregate:
            raise ConditionError("aggregate needs a department registry (not the beneficiaries)")
        return (
            f"SELECT '{rid}' AS rule_id, b._key AS person_key, {household} AS household_key, "
            f"NULL::VARCHAR AS evidence_registry, NULL::VARCHAR AS evidence_key, "
            f"NULL::DOUBLE AS match_probability FROM {bt} b "
            f"WHERE ({cond}) AND {_window_sql(rule, 'b', as_of)}"
        )
    rt = quote_ident(table_name("reg", rule.registry))
    base = (
        f"SELECT b._key AS __person, {household} AS __household, k.match_probability AS __p, r.* "
        f"FROM links k JOIN {rt} r ON r._key = k.record_key JOIN {bt} b ON b._key = k.person_key "
        f"WHERE k.registry = {quote_literal(rule.registry)} AND k.decision = 'match' "
        f"AND ({cond}) AND {_window_sql(rule, 'r', as_of)}"
    )
    if not rule.aggregate:
        return (
            f"SELECT '{rid}' AS rule_id, __person AS person_key, __household AS household_key, "
            f"{quote_literal(rule.registry)} AS evidence_registry, _key AS evidence_key, "
            f"__p AS match_probability FROM ({base})"
        )
    # HAVING sees the department records only (the beneficiary is not in scope there).
    record_only = Scope(**{**scope.__dict__, "person_columns": frozenset()})
    having = compile_condition(
        rule.aggregate.having, record_only, params, as_of, allow_aggregates=True
    )
    unit = "__household" if rule.aggregate.by == "household" else "__person"
    return (
        f"WITH base AS ({base}), "
        f"flagged AS (SELECT {unit} AS __unit FROM base r GROUP BY {unit} HAVING {having}) "
        f"SELECT '{rid}' AS rule_id, __person AS person_key, __household AS household_key, "
        f"{quote_literal(rule.registry)} AS evidence_registry, _key AS evidence_key, "
        "__p AS match_probability "
        f"FROM base JOIN flagged ON flagged.__unit = base.{unit}"
    )


def check_rules(manifest: Manifest, rules: list[Rule]) -> list[RuleCheck]:
    """Compile every rule against the manifest; collect every problem, then raise once."""
    from linkaudit.audit.catalogue import shipped_rules_dir

    shipped = shipped_rules_dir().resolve()
    problems: list[str] = []
    checks: list[RuleCheck] = []
    for rule in rules:
        if rule.registry not in manifest.registries:
            if Path(rule.source).resolve().parent != shipped:
                # A user's own rule naming an unknown registry is a typo, not a county
                # without that department: say so.
                problems.append(
                    f"{rule.source}: rule {rule.id}: registry {rule.registry!r} is not in the "
                    f"manifest (registries: {', '.join(manifest.registries)})"
                )
                continue
            checks.append(
                RuleCheck(rule, None, f"registry {rule.registry!r} is not in the manifest")
            )
            continue
        try:
            checks.append(RuleCheck(rule, compile_rule(rule, manifest)))
        except ConditionError as exc:
            problems.append(f"{rule.source}: rule {rule.id}: {exc}")
    if problems:
        raise RuleError(
            problems, hint="fix the rule files; paths, rule ids and fields are named above"
        )
    return checks


def check_expressions(rules: list[Rule]) -> None:
    """Without a manifest: every condition parses and uses only allowed expressions."""
    from linkaudit.audit.compile import parse_checked

    problems = []
    for rule in rules:
        texts = [(rule.condition, False)]
        if rule.aggregate:
            texts.append((rule.aggregate.having, True))
        for text, aggregates in texts:
            try:
                parse_checked(text, aggregates)
            except ConditionError as exc:
                problems.append(f"{rule.source}: rule {rule.id}: {exc}")
    if problems:
        raise RuleError(
            problems, hint="fix the rule files; paths, rule ids and fields are named above"
        )


def run_rules(ws: Workspace, manifest: Manifest, rules: list[Rule]) -> RulesReport:
    checks = check_rules(manifest, rules)
    if not ws.has_table("links"):
        raise WorkspaceError(
            f"{manifest.database}: no links yet", hint="run `linkaudit link MANIFEST` first"
        )
    # Bind every rule's SQL before running any: type errors (a text field compared with a
    # number, a non-boolean condition) are rule problems, reported with file and rule id.
    problems = []
    for check in checks:
        if check.sql is None:
            continue
        try:
            ws.execute(f"EXPLAIN {check.sql}")
        except duckdb.Error as exc:
            problems.append(f"{check.rule.source}: rule {check.rule.id}: {_first_line(exc)}")
    if problems:
        raise RuleError(problems, hint="fix the rule's condition; field types are in the README")
    ws.execute(
        "CREATE OR REPLACE TABLE findings (rule_id VARCHAR, person_key VARCHAR, "
        "household_key VARCHAR, evidence_registry VARCHAR, evidence_key VARCHAR, "
        "match_probability DOUBLE)"
    )
    report = RulesReport()
    for check in checks:
        rule = check.rule
        result = RuleResult(
            rule.id, rule.title.zh, rule.title.en, rule.severity, rule.scope, rule.registry
        )
        if check.sql is None:
            result.skipped = check.skipped
            report.results.append(result)
            continue
        try:
            ws.execute(f"INSERT INTO findings SELECT DISTINCT * FROM ({check.sql})")
        except duckdb.Error as exc:  # e.g. an invalid regular expression met at run time
            raise RuleError(
                [f"{rule.source}: rule {rule.id}: {_first_line(exc)}"],
                hint="fix the rule's condition",
            ) from None
        row = ws.fetchone(
            "SELECT count(DISTINCT person_key), count(DISTINCT household_key), "
            "count(DISTINCT (evidence_registry, evidence_key)) FILTER (evidence_key IS NOT NULL) "
            "FROM findings WHERE rule_id = ?",
            [rule.id],
        )
        assert row is not None
        result.persons, result.households, result.evidence_records = (int(x) for x in row)
        if rule.scope == "household" and manifest.beneficiaries.household:
            # A flagged household puts every member at issue, not only the one who matched.
            bt = quote_ident(table_name("reg", manifest.beneficiaries.name))
            result.persons = int(
                ws.scalar(
                    f"SELECT count(*) FROM {bt} WHERE household IN "
                    "(SELECT household_key FROM findings WHERE rule_id = ?)",
                    [rule.id],
                )
            )
        report.results.append(result)
    cross = [
        c.rule.id
        for c in checks
        if c.sql
        and c.rule.severity == "ineligible"
        and c.rule.registry != manifest.beneficiaries.name
    ]
    every = [c.rule.id for c in checks if c.sql and c.rule.severity == "ineligible"]
    report.ineligible_distinct_cross_department = _distinct_persons(ws, cross)
    report.ineligible_distinct = _distinct_persons(ws, every)
    return report


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _distinct_persons(ws: Workspace, rule_ids: list[str]) -> int:
    if not rule_ids:
        return 0
    marks = ", ".join("?" for _ in rule_ids)
    return int(
        ws.scalar(
            f"SELECT count(DISTINCT person_key) FROM findings WHERE rule_id IN ({marks})", rule_ids
        )
    )
