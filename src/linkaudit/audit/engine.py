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
from linkaudit.audit.rule_sql import (
    aggregate_rule_sql,
    distinct_persons_sql,
    duplicate_rule_sql,
    findings_sql,
    household_persons_sql,
    linked_base_sql,
    linked_rows_sql,
    linked_rule_sql,
    register_rule_sql,
    rule_counts_sql,
    rule_findings_sql,
    window_sql,
)
from linkaudit.audit.rules import AGGREGATE_UNITS, Rule
from linkaudit.config import DATE_TYPES, Manifest
from linkaudit.engines.base import Engine
from linkaudit.errors import RuleError, WorkspaceError
from linkaudit.privacy import mask_text
from linkaudit.store import quote_ident, table_name

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
    w = rule.window
    return window_sql(w.field, alias, as_of, w.months, w.days)


def compile_rule(rule: Rule, manifest: Manifest) -> str:
    """The rule's SELECT. Raises ConditionError (message without file/rule; caller adds them)."""
    return check_rule(rule, manifest).sql or ""


def check_rule(rule: Rule, manifest: Manifest) -> RuleCheck:
    """Compile a rule: its SELECT, and its parameter-table lookups with the rows they meet.
    Raises ConditionError (message without file/rule; the caller adds them)."""
    ben = manifest.beneficiaries
    bt = table_name("reg", ben.name)
    lookups: list[Lookup] = []
    sql = _compile_rule(rule, manifest, lookups)
    if rule.registry == ben.name:
        rows = (f"{quote_ident(bt)} b", "TRUE")
    else:
        rows = linked_rows_sql(bt, table_name("reg", rule.registry), rule.registry)
    return RuleCheck(rule, sql, lookups=lookups, lookup_rows=rows)


def _check_rule_fields(rule: Rule, manifest: Manifest, scope: Scope) -> None:
    """The evidence and window fields a rule names exist, and print no ID number."""
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


def _compile_rule(rule: Rule, manifest: Manifest, lookups: list[Lookup]) -> str:
    """The rule's SELECT of findings, by its shape: a duplicate check, a rule on the register
    alone, or a rule on linked department records (per record, or aggregated per unit)."""
    scope = rule_scope(manifest, rule.registry)
    params = _params(rule, manifest)
    cond = compile_condition(rule.condition, scope, params, manifest.as_of, lookups=lookups)
    _check_rule_fields(rule, manifest, scope)
    ben = manifest.beneficiaries
    bt = table_name("reg", ben.name)
    if rule.duplicate_of:
        return _duplicate_sql(rule, manifest, scope, params, cond)
    if rule.registry == ben.name:
        if rule.aggregate:
            raise ConditionError("aggregate needs a department registry (not the beneficiaries)")
        window = _window_sql(rule, "b", manifest.as_of)
        return register_rule_sql(rule.id, bt, bool(ben.household), cond, window)
    base = linked_base_sql(
        bt,
        table_name("reg", rule.registry),
        rule.registry,
        bool(ben.household),
        cond,
        _window_sql(rule, "r", manifest.as_of),
    )
    if not rule.aggregate:
        return linked_rule_sql(rule.id, base, rule.registry)
    return _aggregate_sql(rule, manifest, scope, params, base)


def _duplicate_sql(
    rule: Rule, manifest: Manifest, scope: Scope, params: dict[str, Any], cond: str
) -> str:
    """`duplicate_of`: beneficiaries sharing the named fields, both meeting the condition."""
    ben = manifest.beneficiaries
    if rule.registry != ben.name:
        raise ConditionError("duplicate_of applies to the beneficiaries registry only")
    assert rule.duplicate_of
    for col in rule.duplicate_of:
        if col not in scope.record_columns:
            raise ConditionError(f"duplicate_of field `{col}` is not a field of {ben.name!r}")
    other_cond = compile_condition(
        rule.condition,
        Scope(**{**scope.__dict__, "record_alias": "o"}),
        params,
        manifest.as_of,
    )
    return duplicate_rule_sql(
        rule.id,
        ben.name,
        table_name("reg", ben.name),
        bool(ben.household),
        list(rule.duplicate_of),
        cond,
        other_cond,
        _window_sql(rule, "b", manifest.as_of),
    )


def _aggregate_sql(
    rule: Rule, manifest: Manifest, scope: Scope, params: dict[str, Any], base: str
) -> str:
    """`aggregate`: the linked records of each unit whose records together pass HAVING."""
    assert rule.aggregate is not None
    # HAVING sees the department records only (the beneficiary is not in scope there).
    record_only = Scope(**{**scope.__dict__, "person_columns": frozenset()})
    having_lookups: list[Lookup] = []
    having = compile_condition(
        rule.aggregate.having,
        record_only,
        params,
        manifest.as_of,
        allow_aggregates=True,
        lookups=having_lookups,
    )
    if having_lookups:
        raise ConditionError(
            "parameter tables ($name[key]) are not supported in aggregate.having; "
            "use them in the condition"
        )
    unit = "__household" if aggregate_unit(rule, params) == "household" else "__person"
    return aggregate_rule_sql(rule.id, base, rule.registry, unit, having)


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


def run_rules(ws: Engine, manifest: Manifest, rules: list[Rule]) -> RulesReport:
    """Compile and bind every rule, check its parameter-table lookups, then run each into the
    findings table and count what it flagged."""
    checks = check_rules(manifest, rules)
    if not ws.has_table("links"):
        raise WorkspaceError(
            f"{manifest.database}: no links yet", hint="run `linkaudit link MANIFEST` first"
        )
    # Defence in depth behind the condition allow-list: rule SQL runs with the engine's file
    # access off, so a gap in the allow-list still cannot read or write a file.
    ws.forbid_file_access()
    _bind_rules(ws, checks)
    unflagged = _missing_lookups(ws, manifest, checks)
    report = RulesReport()
    parts = []
    for i, check in enumerate(checks):
        result = _run_rule(ws, manifest, check, f"findings_{i}")
        result.unflagged_missing_lookup = unflagged.get(check.rule.id, {})
        report.results.append(result)
        if check.sql is not None:
            parts.append(f"findings_{i}")
    ws.create("findings", findings_sql(parts))
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


def _bind_rules(ws: Engine, checks: list[RuleCheck]) -> None:
    """Bind every rule's SQL before running any: type errors (a text field compared with a
    number, a non-boolean condition) are rule problems, reported with file and rule id."""
    problems = []
    for check in checks:
        if check.sql is None:
            continue
        try:
            ws.check(check.sql)
        except duckdb.Error as exc:
            problems.append(f"{check.rule.source}: rule {check.rule.id}: {_first_line(exc)}")
    if problems:
        raise RuleError(problems, hint="fix the rule's condition; field types are in the README")


def _run_rule(ws: Engine, manifest: Manifest, check: RuleCheck, table: str) -> RuleResult:
    """One rule's findings into a table of its own, and its counts (a skipped rule says
    why)."""
    rule = check.rule
    result = RuleResult(
        rule.id, rule.title.zh, rule.title.en, rule.severity, rule.scope, rule.registry
    )
    if check.sql is None:
        result.skipped = check.skipped
        return result
    try:
        ws.create(table, rule_findings_sql(check.sql), temp=True)
    except duckdb.Error as exc:  # e.g. an invalid regular expression met at run time
        raise RuleError(
            [f"{rule.source}: rule {rule.id}: {_first_line(exc)}"],
            hint="fix the rule's condition",
        ) from None
    row = ws.row(rule_counts_sql(table), [rule.id])
    assert row is not None
    result.persons, result.households, result.evidence_records = (int(x) for x in row)
    if rule.scope == "household" and manifest.beneficiaries.household:
        # A flagged household puts every member at issue, not only the one who matched.
        bt = table_name("reg", manifest.beneficiaries.name)
        result.persons = int(ws.value(household_persons_sql(bt, table), [rule.id]))
    return result


def _missing_lookups(
    ws: Engine, manifest: Manifest, checks: list[RuleCheck]
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


def _first_line(exc: Exception) -> str:
    """The first line of a DuckDB error, ID-shaped values masked: a conversion error quotes
    the offending value, which may be a full ID number."""
    text = str(exc).strip()
    return mask_text(text.splitlines()[0]) if text else type(exc).__name__


def _distinct_persons(ws: Engine, rule_ids: list[str]) -> int:
    if not rule_ids:
        return 0
    return int(ws.value(distinct_persons_sql(len(rule_ids)), rule_ids))
