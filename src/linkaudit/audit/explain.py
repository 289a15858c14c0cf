"""`explain`: why a registrant or household was flagged — every rule it trips, each evidence
record, and the link's per-field weights.

The answer is masked like every output (ID numbers, and keys that are ID numbers) unless
`unmask`; so that a key copied from the masked spreadsheet still works, the key may also be a
case id (疑点编号) or a masked key that names one registrant or household. An ID number (in any
form the register's reader accepts: 15 digits, lower-case x, full-width) or a registrant's name
works too; a name that several registrants share lists them instead.

For each finding the answer shows the values behind the rule's condition: the fields it reads,
each parameter looked up (the poverty line of the exit year ...) and the condition with the
values in place ('1589.05 < 2736'); for an aggregate rule, the records summed and the total
against the threshold.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import partial
from typing import Any

from linkaudit.audit.explain_sql import (
    case_unit_sql,
    findings_of_sql,
    link_weights_sql,
    masked_key_sql,
    people_sql,
    people_with_households_sql,
    record_sql,
)
from linkaudit.audit.rules import Rule
from linkaudit.config import Manifest
from linkaudit.engines.base import Engine
from linkaudit.engines.duckdb import Workspace
from linkaudit.errors import LinkauditError, WorkspaceError
from linkaudit.normalize import mask_id
from linkaudit.normalize.idcard import normalize_id
from linkaudit.privacy import mask_value
from linkaudit.store import table_name


def explain(
    ws: Workspace,
    manifest: Manifest,
    key: str,
    unmask: bool = False,
    data: Engine | None = None,
) -> dict[str, Any]:
    """Who `key` names (see the module's docstring for the keys understood), every finding of
    theirs with its evidence record, the link's weights and the condition's values. `ws`
    holds the history (case ids); `data` the registries, links and findings (the workspace
    itself on DuckDB)."""
    history, ws = ws, data or ws  # type: ignore[assignment]
    ben = manifest.beneficiaries
    bt = table_name("reg", ben.name)
    if not ws.has_table("findings"):
        raise WorkspaceError(
            f"{manifest.database}: no audit results yet",
            hint="run `linkaudit audit MANIFEST` first",
        )
    has_household = "household" in ws.columns(bt)
    people = _find_people(ws, manifest, bt, has_household, key, history)
    if not people:
        named = ws.rows(people_sql(bt, has_household, "name_raw = ?"), [key.strip()])
        if len(named) > 1:
            return _matches(key, named, unmask)
        if named:
            people = _people(ws, bt, has_household, named[0][1] or named[0][0])
    if not people:
        raise LinkauditError(
            f"no registrant or household with key {key!r} in registry {ben.name!r}",
            hint="use a person key, household key, case id (疑点编号), ID number or name",
        )
    keys = [p[0] for p in people]
    findings = ws.rows(findings_of_sql(len(keys)), keys)
    rules = _rules(manifest)
    level_cols = [c for c in ws.columns("links") if c.startswith("level_")]
    out_findings = [_finding(ws, manifest, bt, rules, level_cols, finding) for finding in findings]
    _aggregates(out_findings, rules, manifest)
    answer = {
        "key": key,
        "persons": [
            {
                "person_key": k,
                "household": h,
                "name": n,
                "id_number": idn if unmask else mask_id(idn),
            }
            for k, h, n, idn in people
        ],
        "findings": out_findings,
    }
    return answer if unmask else mask_value(answer)


def _find_people(
    ws: Workspace,
    manifest: Manifest,
    bt: str,
    has_household: bool,
    key: str,
    history: Workspace,
) -> list[tuple[Any, ...]]:
    """The registrants (with their households) a key names: a person or household key, a
    case id, a masked key naming one unit, or an ID number in any form the reader accepts."""
    people = _people(ws, bt, has_household, key)
    if not people:
        unit = _case_unit(history, key)
        if unit is not None:
            people = _people(ws, bt, has_household, unit)
    if not people and "*" in key:
        people = _people_by_masked_key(ws, bt, has_household, key, manifest.beneficiaries.name)
    if not people:
        info = normalize_id(key, as_of=manifest.as_of)
        if info.status in ("valid", "upgraded_15") and info.id_number:
            people = _people_where(ws, bt, has_household, "id_number = ?", [info.id_number])
    return people


def _finding(
    ws: Workspace,
    manifest: Manifest,
    bt: str,
    rules: dict[str, Rule],
    level_cols: list[str],
    finding: tuple[Any, ...],
) -> dict[str, Any]:
    """One finding: its evidence record and link (for a department's record), and the values
    behind the rule's condition."""
    rule_id, person_key, registry, record_key, p = finding
    ben = manifest.beneficiaries
    item: dict[str, Any] = {
        "rule_id": rule_id,
        "person_key": person_key,
        "registry": registry,
        "record_key": record_key,
        "match_probability": p,
    }
    if registry and registry != ben.name and record_key:
        item["department"] = manifest.registries[registry].department
        item["record"] = {
            c: (None if v is None else str(v))
            for c, v in (_row(ws, table_name("reg", registry), record_key) or {}).items()
        }
        link = ws.row(link_weights_sql(level_cols), [registry, record_key])
        if link:
            item["link"] = _link_weights(link, level_cols)
    rule = rules.get(rule_id)
    if rule is not None:
        own = _row(ws, bt, person_key)
        record = item.get("record") if registry and registry != ben.name else own
        item["condition"] = _condition_values(rule, manifest, record or {}, own or {})
    return item


def _link_weights(link: tuple[Any, ...], level_cols: list[str]) -> dict[str, Any]:
    """A link_weights_sql row as the answer shows it: weights rounded, one entry per
    comparison with its level and weight."""
    n = len(level_cols)
    return {
        "match_weight": round(link[0], 3),
        "decision": link[1],
        "found_by": link[2],
        "prior_weight": round(link[3], 3),
        "comparisons": [
            {
                "comparison": level_cols[i][len("level_") :],
                "level": link[4 + i],
                "weight": round(link[4 + n + i], 3),
            }
            for i in range(n)
        ],
    }


def _matches(key: str, people: list[tuple[Any, ...]], unmask: bool) -> dict[str, Any]:
    """A name several registrants share: who they are, for the user to pick a key."""
    answer = {
        "key": key,
        "matches": [
            {
                "person_key": k,
                "household": h,
                "name": n,
                "id_number": idn if unmask else mask_id(idn),
            }
            for k, h, n, idn in people
        ],
        "persons": [],
        "findings": [],
    }
    return answer if unmask else mask_value(answer)


def _people_where(
    ws: Workspace, bt: str, has_household: bool, where: str, params: list[Any]
) -> list[tuple[Any, ...]]:
    """Registrants matching `where`, with their whole households."""
    return ws.rows(
        people_with_households_sql(bt, has_household, where),
        params * 2 if has_household else params,
    )


def _rules(manifest: Manifest) -> dict[str, Rule]:
    from linkaudit.audit.run import load_manifest_rules

    try:
        return {r.id: r for r in load_manifest_rules(manifest)}
    except LinkauditError:
        return {}  # the rules changed since the run: findings are still shown, without values


def _row(ws: Workspace, table: str, key: str) -> dict[str, Any] | None:
    """A record's columns (ID columns and the file row left out) by its key."""
    cols = [c for c in ws.columns(table) if not c.startswith("id_") and c != "_row"]
    row = ws.row(record_sql(table, cols), [key])
    return None if row is None else dict(zip(cols, row, strict=True))


_PARAM_LOOKUP = re.compile(r"\$([A-Za-z_]\w*)\[([^\]]+)\]")
_PARAM = re.compile(r"\$([A-Za-z_]\w*)")
_IDENT = re.compile(r"(?<![\w.$])(person\.)?([A-Za-z_]\w*)(?![\w(])")
_AGG = re.compile(r"\b(sum|count|max|min|avg)\(\s*(\*|[A-Za-z_]\w*)\s*\)", re.I)


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return f"{value:f}".rstrip("0").rstrip(".") if isinstance(value, Decimal) else str(value)
    if isinstance(value, list | tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{...}"
    return "'" + str(value) + "'"


def _condition_values(
    rule: Rule, manifest: Manifest, record: dict[str, Any], person: dict[str, Any]
) -> dict[str, Any]:
    """The fields the condition reads, the parameters it looks up and the condition with
    those values in place (quoted text in the condition is left as written)."""
    params = {**rule.parameters, **manifest.parameters}
    as_of = manifest.as_of
    fields: dict[str, Any] = {}
    lookups: list[dict[str, Any]] = []

    def value_of(name: str, own: bool) -> Any:
        source = person if own else record
        if name == "as_of":
            return as_of
        return source.get(name)

    def key_value(expr: str) -> Any:
        expr = expr.strip()
        if re.fullmatch(r"year\(\s*as_of\s*\)", expr) and as_of is not None:
            return as_of.year
        own = expr.startswith("person.")
        value = value_of(expr.removeprefix("person."), own)
        fields[expr] = None if value is None else str(value)
        return value

    def lookup(m: re.Match[str]) -> str:
        table = params.get(m.group(1))
        key = key_value(m.group(2))
        found = None
        if isinstance(table, dict) and key is not None:
            found = table.get(key, table.get(str(key)))
            if found is None and str(key).isdigit():
                found = table.get(int(str(key)))
        lookups.append(
            {"parameter": m.group(1), "key": None if key is None else str(key), "value": found}
        )
        return _literal(found)

    def ident(m: re.Match[str]) -> str:
        own, name = bool(m.group(1)), m.group(2)
        source = person if own else record
        if name in source or name == "as_of":
            value = value_of(name, own)
            fields[("person." if own else "") + name] = None if value is None else str(value)
            return _literal(value)
        return m.group(0)

    parts = re.split(r"('(?:[^']|'')*')", " ".join(rule.condition.split()))
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # a quoted literal
            out.append(part)
            continue
        part = _PARAM_LOOKUP.sub(lookup, part)
        part = _PARAM.sub(lambda m: _literal(params.get(m.group(1))), part)
        out.append(_IDENT.sub(ident, part))
    return {
        "expression": " ".join(rule.condition.split()),
        "fields": fields,
        "lookups": lookups,
        "with_values": "".join(out),
    }


def _param_literal(params: dict[str, Any], m: re.Match[str]) -> str:
    return _literal(params.get(m.group(1)))


def _aggregates(findings: list[dict[str, Any]], rules: dict[str, Rule], manifest: Manifest) -> None:
    """For each aggregate rule: the records it summed and the total against the threshold."""
    for rule_id in {f["rule_id"] for f in findings}:
        rule = rules.get(rule_id)
        if rule is None or rule.aggregate is None:
            continue
        items = [f for f in findings if f["rule_id"] == rule_id and f.get("record")]
        params = {**rule.parameters, **manifest.parameters}
        having = " ".join(rule.aggregate.having.split())
        totals: dict[str, Any] = {}

        def agg(
            m: re.Match[str],
            items: list[dict[str, Any]] = items,
            totals: dict[str, Any] = totals,
        ) -> str:
            fn, field = m.group(1).lower(), m.group(2)
            if field == "*":
                value: Any = len(items)
            else:
                values = [
                    Decimal(str(f["record"][field]))
                    for f in items
                    if f["record"].get(field) not in (None, "")
                ]
                value = {
                    "sum": sum(values, Decimal(0)),
                    "count": len(values),
                    "max": max(values, default=None),
                    "min": min(values, default=None),
                    "avg": (sum(values, Decimal(0)) / len(values)) if values else None,
                }[fn]
            totals[m.group(0)] = None if value is None else _literal(value)
            return _literal(value)

        text = _AGG.sub(agg, having)
        text = _PARAM.sub(partial(_param_literal, params), text)
        summary = {
            "having": having,
            "records": [f["record_key"] for f in items],
            "totals": totals,
            "with_values": text,
        }
        for f in findings:
            if f["rule_id"] == rule_id:
                f["aggregate"] = summary


def _people(ws: Workspace, bt: str, has_household: bool, key: str) -> list[tuple[Any, ...]]:
    """The registrant with this key, or the members of the household with this key."""
    where = "_key = ?" + (" OR household = ?" if has_household else "")
    return ws.rows(people_sql(bt, has_household, where), [key, key] if has_household else [key])


def _case_unit(ws: Workspace, case_id: str) -> str | None:
    """The flagged unit (person or household key) of a case id, from the latest run having it."""
    if not (ws.has_table("run_cases") and ws.has_table("runs")):
        return None
    row = ws.row(case_unit_sql(), [case_id])
    return None if row is None else str(row[0])


def _people_by_masked_key(
    ws: Workspace, bt: str, has_household: bool, key: str, registry: str
) -> list[tuple[Any, ...]]:
    """The registrants whose key, or household, masks to `key` — if they are one unit."""
    rows = ws.rows(masked_key_sql(bt, has_household), [key, key] if has_household else [key])
    units = {k for k, h in rows if mask_value(k) == key} | {
        h for k, h in rows if h is not None and mask_value(h) == key
    }
    if len(units) > 1:
        raise LinkauditError(
            f"the masked key {key!r} fits {len(units)} registrants or households in registry "
            f"{registry!r}",
            hint="use the case id (疑点编号) from exceptions.csv, or the full key",
        )
    return _people(ws, bt, has_household, units.pop()) if units else []
