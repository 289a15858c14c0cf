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
from sqlglot import exp

from linkaudit.audit.compile import (
    ConditionError,
    Lookup,
    Scope,
    compile_condition,
    missing_lookup_sql,
    rule_scope,
)
from linkaudit.audit.rules import AGGREGATE_UNITS, Rule
from linkaudit.config import DATE_TYPES, Manifest
from linkaudit.engines.duckdb import Workspace
from linkaudit.errors import RuleError, WorkspaceError
from linkaudit.privacy import mask_text
from linkaudit.store import quote_ident, quote_literal, table_name

#: Fields whose values must never reach an output unmasked.
SENSITIVE_FIELDS = frozenset({"id_number"})


@dataclass
class RuleCheck:
    rule: Rule
    sql: str | None
    skipped: str | None = None  # why the rule does not apply to this manifest
    #: Parameter-table lookups of the condition, and the rows they are evaluated on
    #: (FROM and WHERE text), for the check that every key in the data has an entry.
    lookups: list[Lookup] = field(default_factory=list)
    lookup_rows: tuple[str, str] = ("", "TRUE")


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
    #: Rows left unflagged because a parameter table has no entry for their key
    #: (`lookup_missing: not_flagged`): {"$param[key]": rows}.
    unflagged_missing_lookup: dict[str, int] = field(default_factory=dict)

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


def _window_sql(rule: Rule, alias: str, as_of: dt.date | None) -> str:
    if not rule.window:
        return "TRUE"
    col = f"{alias}.{quote_ident(rule.window.field)}"
    span = (
        f"INTERVAL {rule.window.months} MONTH"
        if rule.window.months
        else f"INTERVAL {rule.window.days or 365} DAY"
    )
    day = f"DATE '{as_of.isoformat()}'" if as_of else "CAST(NULL AS DATE)"
    return f"({col} > {day} - {span} AND {col} <= {day})"


def compile_rule(rule: Rule, manifest: Manifest) -> str:
    """The rule's SELECT. Raises ConditionError (message without file/rule; caller adds them)."""
    return check_rule(rule, manifest).sql or ""


def check_rule(rule: Rule, manifest: Manifest) -> RuleCheck:
    """Compile a rule: its SELECT, and its parameter-table lookups with the rows they meet.
    Raises ConditionError (message without file/rule; the caller adds them)."""
    ben = manifest.beneficiaries
    bt = quote_ident(table_name("reg", ben.name))
    lookups: list[Lookup] = []
    sql = _compile_rule(rule, manifest, lookups)
    if rule.registry == ben.name:
        rows = (f"{bt} b", "TRUE")
    else:
        rt = quote_ident(table_name("reg", rule.registry))
        rows = (
            f"links k JOIN {rt} r ON r._key = k.record_key JOIN {bt} b ON b._key = k.person_key",
            f"k.registry = {quote_literal(rule.registry)} AND k.decision = 'match'",
        )
    return RuleCheck(rule, sql, lookups=lookups, lookup_rows=rows)


def _compile_rule(rule: Rule, manifest: Manifest, lookups: list[Lookup]) -> str:
    ben = manifest.beneficiaries
    scope = rule_scope(manifest, rule.registry)
    params = _params(rule, manifest)
    as_of = manifest.as_of
    cond = compile_condition(rule.condition, scope, params, as_of, lookups=lookups)
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
    having_lookups: list[Lookup] = []
    having = compile_condition(
        rule.aggregate.having,
        record_only,
        params,
        as_of,
        allow_aggregates=True,
        lookups=having_lookups,
    )
    if having_lookups:
        raise ConditionError(
            "parameter tables ($name[key]) are not supported in aggregate.having; "
            "use them in the condition"
        )
    unit = "__household" if aggregate_unit(rule, params) == "household" else "__person"
    return (
        f"WITH base AS ({base}), "
        f"flagged AS (SELECT {unit} AS __unit FROM base r GROUP BY {unit} HAVING {having}) "
        f"SELECT '{rid}' AS rule_id, __person AS person_key, __household AS household_key, "
        f"{quote_literal(rule.registry)} AS evidence_registry, _key AS evidence_key, "
        "__p AS match_probability "
        f"FROM base JOIN flagged ON flagged.__unit = base.{unit}"
    )


def aggregate_unit(rule: Rule, params: dict[str, Any]) -> str:
    """`person` or `household`: the rule's `aggregate.by`, or the parameter it names."""
    assert rule.aggregate is not None
    name = rule.aggregate.parameter
    if name is None:
        return rule.aggregate.by
    value = params.get(name)
    if value not in AGGREGATE_UNITS:
        raise ConditionError(
            f"aggregate.by: parameter ${name} is {value!r}; set parameters.{name} to "
            f"{' or '.join(AGGREGATE_UNITS)}"
        )
    return str(value)


def is_shipped(rule: Rule) -> bool:
    """A rule of the shipped catalogue (it bends to the manifest), not the user's own."""
    from linkaudit.audit.catalogue import shipped_rules_dir

    return Path(rule.source).resolve().parent == shipped_rules_dir().resolve()


def adapt_rules(manifest: Manifest, rules: list[Rule]) -> tuple[list[Rule], list[str]]:
    """Shipped rules bend to what the manifest maps: an evidence field the registry does not
    map is left out of the evidence (said once, here). The user's own rules stay as written
    (and fail loudly in check_rules). Returns the rules to run and the notes to show."""
    notes: list[str] = []
    adapted: list[Rule] = []
    for rule in rules:
        if not is_shipped(rule) or rule.registry not in manifest.registries:
            adapted.append(rule)
            continue
        known = rule_scope(manifest, rule.registry).record_columns
        dropped = [c for c in rule.evidence if c not in known]
        if dropped:
            keys = ", ".join(f"registries.{rule.registry}.fields.{c}" for c in dropped)
            notes.append(
                f"rule {rule.id}: evidence {', '.join(dropped)} not shown (map {keys} to show it)"
            )
            rule = rule.model_copy(update={"evidence": [c for c in rule.evidence if c in known]})
        adapted.append(rule)
    return adapted, notes


def unmet_needs(rule: Rule, manifest: Manifest) -> list[str]:
    """The manifest keys a rule needs and the manifest does not give: fields its condition,
    window, aggregate or duplicate check reads that are not mapped, and parameters that are
    set neither in the rule nor in the manifest."""
    from linkaudit.audit.compile import parse_checked

    scope = rule_scope(manifest, rule.registry)
    params = _params(rule, manifest)
    ben = manifest.beneficiaries.name
    needs: list[str] = []

    def need(key: str) -> None:
        if key not in needs:
            needs.append(key)

    trees = [parse_checked(rule.condition)]
    if rule.aggregate:
        trees.append(parse_checked(rule.aggregate.having, allow_aggregates=True))
        unit_param = rule.aggregate.parameter
        if unit_param is not None and unit_param not in params:
            need(f"parameters.{unit_param}")
    for tree in trees:
        for node in tree.walk():
            if isinstance(node, exp.Placeholder) and node.name not in params:
                need(f"parameters.{node.name}")
            elif isinstance(node, exp.Column):
                name, table = node.name, node.table
                if not table and name.lower() != "as_of" and name not in scope.record_columns:
                    need(f"registries.{rule.registry}.fields.{name}")
                elif table == "person" and name not in scope.person_columns:
                    need(f"registries.{ben}.fields.{name}")
    for name in ([rule.window.field] if rule.window else []) + list(rule.duplicate_of or []):
        if name not in scope.record_columns:
            need(f"registries.{rule.registry}.fields.{name}")
    return needs


def check_rules(manifest: Manifest, rules: list[Rule]) -> list[RuleCheck]:
    """Compile every rule against the manifest; collect every problem, then raise once.

    A shipped rule whose registry, fields or parameters the manifest does not give is not
    applied (its RuleCheck says which manifest keys to add); the user's own rules fail."""
    problems: list[str] = []
    checks: list[RuleCheck] = []
    for rule in rules:
        if rule.registry not in manifest.registries:
            if not is_shipped(rule):
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
        if is_shipped(rule):
            try:
                needs = unmet_needs(rule, manifest)
            except ConditionError as exc:
                problems.append(f"{rule.source}: rule {rule.id}: {exc}")
                continue
            if needs:
                checks.append(RuleCheck(rule, None, f"set {', '.join(needs)} in the manifest"))
                continue
        try:
            checks.append(check_rule(rule, manifest))
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
    _forbid_file_access(ws)
    # Bind every rule's SQL before running any: type errors (a text field compared with a
    # number, a non-boolean condition) are rule problems, reported with file and rule id.
    problems = []
    for check in checks:
        if check.sql is None:
            continue
        try:
            ws.run(f"EXPLAIN {check.sql}")
        except duckdb.Error as exc:
            problems.append(f"{check.rule.source}: rule {check.rule.id}: {_first_line(exc)}")
    if problems:
        raise RuleError(problems, hint="fix the rule's condition; field types are in the README")
    unflagged = _missing_lookups(ws, manifest, checks)
    ws.run(
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
            ws.run(f"INSERT INTO findings SELECT DISTINCT * FROM ({check.sql})")
        except duckdb.Error as exc:  # e.g. an invalid regular expression met at run time
            raise RuleError(
                [f"{rule.source}: rule {rule.id}: {_first_line(exc)}"],
                hint="fix the rule's condition",
            ) from None
        row = ws.row(
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
                ws.value(
                    f"SELECT count(*) FROM {bt} WHERE household IN "
                    "(SELECT household_key FROM findings WHERE rule_id = ?)",
                    [rule.id],
                )
            )
        result.unflagged_missing_lookup = unflagged.get(rule.id, {})
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


def _missing_lookups(
    ws: Workspace, manifest: Manifest, checks: list[RuleCheck]
) -> dict[str, dict[str, int]]:
    """Check that every key a rule looks up in a parameter table has an entry.

    A key with no entry would make the lookup NULL and the comparison false: the rule would
    silently flag nobody for those rows (a poverty-line table ending in 2016 met exits of
    2017). Unless the rule says `lookup_missing: not_flagged`, stop with the rule, the
    parameter, the missing keys and their row counts. Returns, per rule that allows it, the
    rows left unflagged, by `$param[key]`."""
    problems: list[str] = []
    unflagged: dict[str, dict[str, int]] = {}
    for check in checks:
        if check.sql is None:
            continue
        from_sql, where_sql = check.lookup_rows
        for lookup in check.lookups:
            missing = ws.rows(missing_lookup_sql(lookup, from_sql, where_sql))
            if not missing:
                continue
            rows = sum(int(n) for _, n in missing)
            if check.rule.lookup_missing == "not_flagged":
                per_key = unflagged.setdefault(check.rule.id, {})
                for k, n in missing:
                    per_key[f"${lookup.parameter}[{k}]"] = int(n)
                continue
            shown = ", ".join(f"{k} ({int(n):,} rows)" for k, n in missing[:10])
            more = f" and {len(missing) - 10} more keys" if len(missing) > 10 else ""
            total = f"; {rows:,} rows in all" if len(missing) > 1 else ""
            known = ", ".join(sorted(lookup.keys)) or "none"
            problems.append(
                f"{check.rule.source}: rule {check.rule.id}: parameter ${lookup.parameter} "
                f"has no entry for {lookup.key_text} = {shown}{more}{total} "
                f"(entries: {known})"
            )
    if problems:
        raise RuleError(
            problems,
            hint="add the missing entries under `parameters:` in the manifest (e.g. "
            "parameters.poverty_line: {2017: ...}), or set `lookup_missing: not_flagged` "
            "in the rule to leave those rows unflagged (counted in the summary)",
        )
    return unflagged


def _forbid_file_access(ws: Workspace) -> None:
    """Defence in depth behind the condition allow-list: rule SQL runs with DuckDB's file
    access off (no read_csv, read_text, COPY, ATTACH, extensions) and the setting locked, so a
    gap in the allow-list still cannot read or write a file. DuckDB cannot turn it back on for
    this connection; nothing after the rules needs it (outputs are written by polars and
    xlsxwriter, not by DuckDB)."""
    state = ws.row(
        "SELECT current_setting('enable_external_access'), current_setting('lock_configuration')"
    )
    if state == (False, True):  # already locked down (a second run on this connection)
        return
    ws.run("SET enable_external_access = false")
    ws.run("SET lock_configuration = true")


def _first_line(exc: Exception) -> str:
    """The first line of a DuckDB error, ID-shaped values masked: a conversion error quotes
    the offending value, which may be a full ID number."""
    text = str(exc).strip()
    return mask_text(text.splitlines()[0]) if text else type(exc).__name__


def _distinct_persons(ws: Workspace, rule_ids: list[str]) -> int:
    if not rule_ids:
        return 0
    marks = ", ".join("?" for _ in rule_ids)
    return int(
        ws.value(
            f"SELECT count(DISTINCT person_key) FROM findings WHERE rule_id IN ({marks})", rule_ids
        )
    )
