"""Rule conditions → DuckDB SQL, parsed with sqlglot and restricted to plain expressions.

Only an allow-list of expression kinds passes: comparisons, boolean logic, arithmetic, CASE,
casts, string and date functions. Statements, subqueries, table functions (read_csv, ...),
and anything else are rejected with the offending part named. Column names are checked
against the registry's canonical fields; `$name` parameters are replaced by literals.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from linkaudit.config import Manifest, registry_columns
from linkaudit.engines.dialect import render

#: sqlglot expression classes a condition may contain. sqlglot's releases move functions
#: between classes (strftime became TimeToStr, ends_with EndsWith, date_trunc TimestampTrunc),
#: so tests/test_rules.py parses, compiles and runs an example of every name here with the
#: installed sqlglot and DuckDB, and an unknown name fails at import.
_ALLOWED_NAMES = (
    "Column Identifier Literal Boolean Null Paren And Or Not EQ NEQ GT GTE LT LTE Is In "
    "Between Like ILike Add Sub Mul Div IntDiv Mod Neg Case If Coalesce Cast TryCast DataType "
    "DataTypeParam Lower Upper Trim Substring Length Concat DPipe StrPosition Year Month Day "
    "Extract Var Abs Round Floor Ceil DateDiff DateAdd Interval CurrentDate Tuple Array "
    "Bracket Placeholder RegexpLike StartsWith EndsWith Contains Least Greatest Nullif Left "
    "Right TimeToStr TsOrDsToDate StrToDate Date TimestampTrunc Filter Where Distinct"
)
_AGGREGATE_NAMES = "Sum Count Max Min Avg Star"
#: Functions sqlglot reads as exp.Anonymous (no class of their own) that a condition may call;
#: a function with a class passes by its class in _ALLOWED_NAMES.
_ALLOWED_FUNCTIONS = frozenset(
    {
        "contains",
        "starts_with",
        "ends_with",
        "suffix",
        "prefix",
        "regexp_matches",
        "strftime",
        "date_diff",
        "datediff",
        "year",
        "month",
        "day",
        "length",
        "left",
        "right",
        "age",
    }
)


def _classes(names: str) -> tuple[type[exp.Expression], ...]:
    """The sqlglot classes named; a name the installed sqlglot lacks is an error, not a gap."""
    classes = {n: getattr(exp, n, None) for n in names.split()}
    unknown = [
        n for n, c in classes.items() if not (isinstance(c, type) and issubclass(c, exp.Expression))
    ]
    if unknown:
        raise ImportError(
            f"sqlglot {sqlglot.__version__} has no expression class {', '.join(unknown)}: "
            "update the rule allow-list in linkaudit.audit.compile"
        )
    return tuple(c for c in classes.values() if c is not None)


ALLOWED = _classes(_ALLOWED_NAMES)
AGGREGATES = _classes(_AGGREGATE_NAMES)


class ConditionError(ValueError):
    """A condition that is not a plain, allowed expression; the message names the part."""


@dataclass(frozen=True)
class Scope:
    """What a condition may refer to: the record's columns (unqualified) and `person.` ones."""

    record_columns: frozenset[str]
    person_columns: frozenset[str]
    record_alias: str  # SQL alias of the record table
    person_alias: str  # SQL alias of the beneficiary table
    record_registry: str
    person_registry: str


def literal(value: Any) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, list | tuple):
        return exp.Tuple(expressions=[literal(v) for v in value])
    return exp.Literal.string(str(value))


@dataclass(frozen=True)
class Lookup:
    """One `$table[key]` in a condition: the key as SQL and the compiled CASE that looks it up.

    A key that is in the data but not in the table makes the CASE NULL, which a comparison
    silently reads as false: the engine counts such rows before running the rule
    (`missing_lookup_sql`) so that a table that ends too early stops the audit instead of
    flagging nobody."""

    parameter: str
    key_text: str  # the key as the rule writes it, for messages
    key_sql: str
    case_sql: str
    keys: tuple[str, ...]


def _lookup_case(name: str, table: dict[Any, Any], key: exp.Expression) -> exp.Expression:
    case = exp.Case(this=key.copy())
    for k, v in sorted(table.items(), key=lambda kv: str(kv[0])):
        if v is None or k is None:
            raise ConditionError(
                f"parameter ${name} has an empty entry ({k!r}: {v!r}); give every key a value"
            )
        case = case.when(literal(k), literal(v))
    return case


def missing_lookup_sql(lookup: Lookup, from_sql: str, where_sql: str = "TRUE") -> str:
    """Rows of `FROM from_sql WHERE where_sql` whose key is set but has no entry in the
    parameter table: (key as text, row count), most frequent first."""
    return (
        f"SELECT CAST({lookup.key_sql} AS VARCHAR) AS k, count(*) AS n FROM {from_sql} "
        f"WHERE ({where_sql}) AND ({lookup.key_sql}) IS NOT NULL AND ({lookup.case_sql}) IS NULL "
        "GROUP BY 1 ORDER BY n DESC, k"
    )


def parse_checked(text: str, allow_aggregates: bool = False) -> exp.Expression:
    """Parse a condition and check every node against the allow-list. Raises ConditionError."""
    try:
        trees = sqlglot.parse(text, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0]["description"] if exc.errors else str(exc)
        raise ConditionError(f"cannot parse condition: {first}") from None
    except sqlglot.errors.SqlglotError as exc:  # e.g. an unterminated string (found by hypothesis)
        raise ConditionError(f"cannot parse condition: {str(exc).splitlines()[0]}") from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise ConditionError("a condition must be one expression, not several statements (';')")
    tree = trees[0]
    assert tree is not None
    allowed = ALLOWED + (AGGREGATES if allow_aggregates else ())
    for node in tree.walk():
        if isinstance(node, exp.Anonymous):
            if str(node.name).lower() not in _ALLOWED_FUNCTIONS:
                raise ConditionError(f"function {node.name}() is not allowed")
            continue
        if not isinstance(node, allowed):
            what = render(node)[:60] or type(node).__name__
            kind = type(node).__name__
            if isinstance(node, exp.Query | exp.Subquery):
                reason = "subqueries are not allowed"
            elif isinstance(node, AGGREGATES):
                reason = "aggregates are only allowed in aggregate.having"
            elif isinstance(node, exp.Func):
                reason = "this function is not allowed"
            else:
                reason = "not an allowed expression"
            raise ConditionError(f"{reason}: `{what}` ({kind})")
    return tree  # type: ignore[return-value]


def compile_condition(
    text: str,
    scope: Scope,
    params: dict[str, Any],
    as_of: dt.date | None,
    allow_aggregates: bool = False,
    lookups: list[Lookup] | None = None,
) -> str:
    """Parse, check and rewrite a condition; return DuckDB SQL. Raises ConditionError.

    Every `$table[key]` met is appended to `lookups` (when given), for the missing-key check."""
    tree = parse_checked(text, allow_aggregates)

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.In) and isinstance(node.args.get("field"), exp.Placeholder):
            name = node.args["field"].name
            value = _param(name, params)
            if not isinstance(value, list | tuple):
                raise ConditionError(f"parameter ${name} used with IN must be a list")
            node.set("field", None)
            node.set("expressions", [literal(v) for v in value])
            return node
        if isinstance(node, exp.Bracket) and isinstance(node.this, exp.Placeholder):
            name = node.this.name
            value = _param(name, params)
            if not isinstance(value, dict) or len(node.expressions) != 1:
                raise ConditionError(f"${name}[...] needs a table parameter (a mapping)")
            written = _undo_index_offset(node.expressions[0])
            key_text = render(written).lower()
            key = written.transform(rewrite)
            case = _lookup_case(name, value, key)
            if lookups is not None:
                lookups.append(
                    Lookup(
                        name,
                        key_text,
                        render(key),
                        render(case),
                        tuple(str(k) for k in value),
                    )
                )
            return case
        if isinstance(node, exp.Placeholder):
            return literal(_param(node.name, params))
        if isinstance(node, exp.Column):
            table = node.table
            name = node.name
            if not table and name.lower() == "as_of":
                # No date yet (`rules check` of a manifest without as_of): a typed NULL binds
                # like the date would; an audit never runs without one (require_as_of).
                return literal(as_of) if as_of else exp.cast(exp.Null(), "DATE")
            if table in ("", None):
                if name not in scope.record_columns:
                    raise ConditionError(
                        f"unknown field `{name}` in registry {scope.record_registry!r} "
                        f"(fields: {', '.join(sorted(c for c in scope.record_columns if not c.startswith('_')))})"
                    )
                return exp.column(name, table=scope.record_alias, quoted=True)
            if table == "person":
                if name not in scope.person_columns:
                    raise ConditionError(
                        f"unknown field `person.{name}` in registry {scope.person_registry!r}"
                    )
                return exp.column(name, table=scope.person_alias, quoted=True)
            raise ConditionError(
                f"unknown qualifier `{table}.` (use a field name, or person.field)"
            )
        return node

    rewritten = tree.transform(rewrite)
    return render(rewritten)


def _undo_index_offset(index: exp.Expression) -> exp.Expression:
    """sqlglot reads DuckDB's 1-based `x[i]` as a 0-based index (i - 1) when it knows i is a
    number; a parameter table is looked up by its key, so take the key back as written."""
    if isinstance(index, exp.Literal) and not index.is_string:
        return exp.Literal.number(int(index.this) + 1)
    if (
        isinstance(index, exp.Add)
        and isinstance(index.expression, exp.Neg)
        and isinstance(index.expression.this, exp.Literal)
        and index.expression.this.this == "1"
    ):
        return index.this
    return index


def _param(name: str, params: dict[str, Any]) -> Any:
    if name not in params:
        raise ConditionError(
            f"parameter ${name} is not defined (add it to the rule's or the manifest's parameters)"
        )
    return params[name]


def rule_scope(manifest: Manifest, registry: str) -> Scope:
    ben = manifest.beneficiaries
    reg = manifest.registries[registry]
    return Scope(
        record_columns=registry_columns(reg),
        person_columns=registry_columns(ben),
        record_alias="b" if registry == ben.name else "r",
        person_alias="b",
        record_registry=registry,
        person_registry=ben.name,
    )
