"""DuckDB-dialect SQL as Spark SQL, and the DuckDB string functions Spark lacks.

linkaudit's builders write DuckDB SQL. `to_spark` turns a statement into Spark SQL that gives
the same answer: sqlglot's transpiler plus the rewrites in REWRITES, each for a place where
sqlglot's translation parses but means something else in Spark (or does not parse). A
construct with no faithful Spark form raises SparkDialectError naming it, never a look-alike.

`register_functions(spark)` registers DuckDB's jaro_winkler_similarity, damerau_levenshtein,
hamming and log2 (as duckdb_<name>, which to_spark's output calls) as Arrow-vectorised pandas UDFs over rapidfuzz's element-wise batch scorer;
the plain Python functions they wrap (`jaro_winkler_similarity_batch` ...) are what the tests
compare with DuckDB's built-ins. levenshtein stays Spark's built-in: DuckDB 2.0's counts code
points (not UTF-8 bytes), and so does Spark's.

The engine runs the statements; this module only rewrites text (pyspark is imported only by
`register_functions`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import sqlglot
from sqlglot import exp

from linkaudit.errors import LinkauditError

__all__ = [
    "REWRITES",
    "SparkDialectError",
    "damerau_levenshtein_batch",
    "hamming_batch",
    "jaro_winkler_similarity_batch",
    "log2_batch",
    "pow_batch",
    "round_batch",
    "register_functions",
    "sample_key_sql",
    "split_create",
    "split_insert",
    "to_spark",
]

#: Every rewrite to_spark makes on top of sqlglot, with why (the report's list).
REWRITES: dict[str, str] = {
    "range(a, b) t(c)": "kept as Spark's range TVF: sqlglot makes EXPLODE(SEQUENCE(..), _u(t)) "
    "and loses the column name c",
    "?::T[] / ?::T": "written CAST(? AS T) before parsing: sqlglot's DuckDB parser rejects a "
    "cast placeholder inside a call (list_contains(?::VARCHAR[], x))",
    "a / b": "CASE WHEN b = 0 THEN a * inf ELSE double(a) / double(b) END: DuckDB divides in "
    "DOUBLE (decimals too) and gives inf/-inf/NaN for x/0; Spark ANSI raises, decimals stay decimal",
    "a // b": "a DIV b when both are integers (both truncate, both raise on 0); DuckDB's // on "
    "non-integers is plain division, written as a / b",
    "CAST(x AS <integer>)": "x rounded first (round for DECIMAL, bround for DOUBLE/FLOAT): "
    "DuckDB rounds to nearest, Spark truncates; applied when x's type is known",
    "round(x, n) on DOUBLE": "duckdb_round(x, n), a UDF rounding the exact binary value half "
    "away from zero, as DuckDB: Spark's round(double) rounds the shortest decimal text "
    "(round(2.675, 2): Spark 2.68, DuckDB 2.67)",
    "floor(x) / ceil(x) on DOUBLE": "CAST(.. AS DOUBLE): DuckDB keeps DOUBLE, Spark returns "
    "BIGINT (a histogram bucket -5.0 would come back as -5)",
    "date_diff('year'|'month'|'quarter'|'day'|'week', a, b)": "boundary counts (year(b) - year(a) "
    "...): DuckDB counts crossed boundaries, Spark's datediff(unit, ..) counts whole units",
    "regexp_replace(s, p, r, 'g')": "Spark's regexp_replace (always global); RE2's ASCII \\b made "
    "explicit and \\1 written $1 (Java's \\b is Unicode-aware, Java's group syntax is $1); "
    "without 'g' (first match only) there is no Spark form: error",
    "LIKE / ILIKE literal pattern": "backslashes doubled: DuckDB's LIKE has no escape character, "
    "Spark's default escape is backslash",
    "concat(a, b, ...)": "concat(coalesce(a, ''), ...): DuckDB's concat skips NULLs, Spark's "
    "returns NULL",
    "chr(n)": "kept only for 0 <= n < 128: Spark's chr is n mod 256 as Latin-1, DuckDB's is the "
    "code point n",
    "jaro_winkler_similarity, damerau_levenshtein, hamming": "duckdb_<name>, the UDFs of "
    "register_functions: Spark 4's own jaro_winkler_similarity (which wins over a temporary "
    "function of the same name) says 1.0 for two empty strings, DuckDB 0.0",
    "suffix / prefix": "endswith / startswith (Spark has no suffix/prefix)",
    "CREATE [OR REPLACE] TEMP TABLE t AS q": "CREATE OR REPLACE TEMPORARY VIEW t AS q (sqlglot "
    "drops OR REPLACE); an engine materialises with split_create instead",
    "EXPLAIN q": "q transpiled, EXPLAIN kept (sqlglot's DuckDB parser reads EXPLAIN as an opaque "
    "command and would pass DuckDB text through)",
    "log2(x)": "duckdb_log2(x), a UDF over math.log2 (libm's log2, as DuckDB): Spark's log2 and "
    "log(2, x) are ln(x)/ln(2), which differ in the last bit for 24% of inputs, and numpy's "
    "SIMD log2 differs from libm for 623 of 900,000",
    "pow(a, b) / power": "duckdb_pow, a UDF over math.pow (libm's pow, as DuckDB: equal on "
    "100,000 random inputs, numpy's differs on 5%): Spark's StrictMath pow differs in the last bit",
    "hash(x), log/ln/exp, age(), regexp_replace without 'g', engine statements "
    "(SET, BEGIN, COMMIT, ROLLBACK, information_schema, current_setting, DELETE)": "no faithful "
    "Spark form: SparkDialectError (hash: DuckDB's 64-bit hash is its own; log2/pow: Spark's "
    "StrictMath results differ in the last bit from DuckDB's libm; "
    "age: an INTERVAL Spark cannot compare)",
}


class SparkDialectError(LinkauditError):
    """A DuckDB construct with no Spark SQL of the same meaning (or an engine statement)."""

    def __init__(self, what: str, sql: str) -> None:
        snippet = " ".join(sql.split())[:160]
        super().__init__(
            f"cannot run on Spark: {what} (in: {snippet})",
            hint="run with --engine duckdb, or rewrite that expression in portable SQL",
        )
        self.what = what


_INTEGER_TYPES = {
    exp.DataType.Type.TINYINT,
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.INT128,
    exp.DataType.Type.UTINYINT,
    exp.DataType.Type.USMALLINT,
    exp.DataType.Type.UINT,
    exp.DataType.Type.UBIGINT,
}
_FLOAT_TYPES = {exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT}
_DECIMAL_TYPES = {exp.DataType.Type.DECIMAL}
_ENGINE_WORDS = ("SET ", "RESET ", "BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "CHECKPOINT")
_CAST_PLACEHOLDER = re.compile(
    r"\?::([A-Za-z_][A-Za-z0-9_]*(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\[\])*)"
)
#: RE2's \b (ASCII word characters) in Java's regex syntax.
_ASCII_WORD_BOUNDARY = r"(?:(?<=[0-9A-Za-z_])(?![0-9A-Za-z_])|(?<![0-9A-Za-z_])(?=[0-9A-Za-z_]))"
_INF = "CAST('Infinity' AS DOUBLE)"
#: DuckDB functions called by another name on Spark: the UDFs register_functions makes get a
#: duckdb_ prefix, because a Spark built-in of the same name wins over a temporary function
#: (Spark 4 has its own jaro_winkler_similarity, 1.0 for two empty strings, DuckDB 0.0).
_RENAMED = {
    "damerau_levenshtein": "duckdb_damerau_levenshtein",
    "hamming": "duckdb_hamming",
    "suffix": "endswith",
    "prefix": "startswith",
}


def _kind(node: exp.Expression, column_types: Mapping[str, str]) -> str | None:
    """'int', 'float', 'decimal', 'bool', 'text' or None (unknown) for an expression's type."""
    if isinstance(node, exp.Paren):
        return _kind(node.this, column_types)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return "text"
        return "int" if re.fullmatch(r"\d+", str(node.this)) else "decimal"
    if isinstance(node, exp.Boolean | exp.Predicate | exp.Not | exp.Connector):
        return "bool"
    if isinstance(node, exp.Cast):
        return _type_kind(node.to)
    if isinstance(node, exp.Column) and node.name in column_types:
        return _type_kind(exp.DataType.build(column_types[node.name], dialect="duckdb"))
    if isinstance(node, exp.Div):
        return "float"
    if isinstance(node, exp.Case):  # e.g. our own rewrite of a division
        branches = [i.args.get("true") for i in node.args.get("ifs") or []]
        branches.append(node.args.get("default"))
        kinds = {_kind(b, column_types) if b is not None else None for b in branches}
        return kinds.pop() if len(kinds) == 1 else None
    if isinstance(node, exp.Anonymous) and str(node.name).lower() in (
        "duckdb_round",
        "duckdb_pow",
        "duckdb_log2",
    ):
        return "float"
    if isinstance(node, exp.Count):
        return "int"
    if isinstance(node, exp.Add | exp.Sub | exp.Mul | exp.Mod):
        kinds = {_kind(node.this, column_types), _kind(node.expression, column_types)}
        for k in ("float", "decimal", "int"):
            if k in kinds and None not in kinds:
                return k
        return None
    if isinstance(node, exp.Neg | exp.Abs | exp.Round | exp.Floor | exp.Ceil):
        return _kind(node.this, column_types)
    return None


def _type_kind(dtype: exp.DataType) -> str | None:
    if dtype.this in _INTEGER_TYPES:
        return "int"
    if dtype.this in _FLOAT_TYPES:
        return "float"
    if dtype.this in _DECIMAL_TYPES:
        return "decimal"
    if dtype.this == exp.DataType.Type.BOOLEAN:
        return "bool"
    if dtype.is_type(*exp.DataType.TEXT_TYPES):
        return "text"
    return None


def _double(node: exp.Expression) -> exp.Expression:
    return exp.cast(node.copy(), "DOUBLE")


def _distinct_sorted_agg(node: exp.GroupConcat, sql: str) -> exp.Expression | None:
    """string_agg(DISTINCT x, sep ORDER BY x) as array_join(array_sort(collect_set(x)), sep),
    NULL when no value: Spark 4.x's LISTAGG(DISTINCT ...) WITHIN GROUP fails at run time
    (ClassCastException AttributeReference -> SortOrder) once several sit in one query. The
    same values, sorted by UTF-8 bytes (as DuckDB), joined by the same separator."""
    order = node.this
    if not isinstance(order, exp.Order) or not isinstance(order.this, exp.Distinct):
        return None
    values = order.this.expressions
    keys = order.expressions
    if len(values) != 1 or len(keys) != 1 or keys[0].args.get("desc"):
        return None
    value = values[0]
    if keys[0].this != value:
        raise SparkDialectError("string_agg(DISTINCT x ORDER BY another expression)", sql)
    separator = node.args.get("separator") or exp.Literal.string(",")
    joined = exp.Anonymous(
        this="array_join",
        expressions=[
            exp.Anonymous(
                this="array_sort",
                expressions=[exp.Anonymous(this="collect_set", expressions=[value.copy()])],
            ),
            separator.copy(),
        ],
    )
    none = exp.EQ(this=exp.Count(this=value.copy()), expression=exp.Literal.number(0))
    return exp.Case(ifs=[exp.If(this=none, true=exp.Null())], default=joined)


def _rewrite(node: exp.Expression, sql: str, column_types: Mapping[str, str]) -> exp.Expression:
    """One node's rewrite (called bottom-up by transform); see REWRITES for the why of each."""
    if isinstance(node, exp.Table) and isinstance(node.this, exp.GenerateSeries):
        series = node.this
        if series.args.get("step") is not None or not series.args.get("is_end_exclusive"):
            raise SparkDialectError("generate_series / range with a step in FROM", sql)
        call = exp.Anonymous(this="range", expressions=[series.args["start"], series.args["end"]])
        return exp.Table(this=call, alias=node.args.get("alias"))
    if isinstance(node, exp.GroupConcat):
        distinct_sorted = _distinct_sorted_agg(node, sql)
        if distinct_sorted is not None:
            return distinct_sorted
    if isinstance(node, exp.Div):
        left, right = node.this, node.expression
        zero = exp.EQ(this=_double(right), expression=exp.Literal.number(0))
        inf = exp.Mul(this=_double(left), expression=sqlglot.parse_one(_INF, read="spark"))
        quotient = exp.Div(this=_double(left), expression=_double(right))
        return exp.Case(ifs=[exp.If(this=zero, true=inf)], default=quotient)
    if isinstance(node, exp.IntDiv):
        kinds = {_kind(node.this, column_types), _kind(node.expression, column_types)}
        if kinds <= {"float", "decimal", "int"} and kinds != {"int"}:
            return _rewrite(exp.Div(this=node.this, expression=node.expression), sql, column_types)
        return node
    if isinstance(node, exp.Cast | exp.TryCast) and node.to.this in _INTEGER_TYPES:
        kind = _kind(node.this, column_types)
        if kind == "decimal":
            node.set("this", exp.Round(this=node.this.copy()))
        elif kind == "float":
            node.set("this", exp.Anonymous(this="bround", expressions=[node.this.copy()]))
        return node
    if isinstance(node, exp.Round) and node.args.get("decimals") is not None:
        if _kind(node.this, column_types) == "float":
            return _round_double(node.this, node.args["decimals"])
        return node
    if isinstance(node, exp.Floor | exp.Ceil) and node.args.get("decimals") is None:
        if _kind(node.this, column_types) == "float":
            return exp.cast(node.copy(), "DOUBLE")
        return node
    if isinstance(node, exp.DateDiff):
        return _date_diff(node, sql)
    if isinstance(node, exp.RegexpReplace):
        return _regexp_replace(node, sql)
    if isinstance(node, exp.Like | exp.ILike) and not isinstance(node.parent, exp.Escape):
        pattern = node.expression
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            node.set("expression", exp.Literal.string(pattern.this.replace("\\", "\\\\")))
        elif "\\" not in sql:
            pass  # a computed pattern with no backslash anywhere in the statement
        else:
            raise SparkDialectError("LIKE with a computed pattern that may hold a backslash", sql)
        return node
    if isinstance(node, exp.Concat) and not isinstance(node, exp.ConcatWs):
        parts = [exp.func("coalesce", p.copy(), exp.Literal.string("")) for p in node.expressions]
        return exp.Concat(expressions=parts, safe=True, coalesce=True)
    if isinstance(node, exp.Chr):
        args = node.expressions
        if len(args) == 1 and isinstance(args[0], exp.Literal) and not args[0].is_string:
            if 0 <= int(args[0].this) < 128:
                return node
        raise SparkDialectError("chr() of a non-ASCII or computed code point", sql)
    if isinstance(node, exp.JarowinklerSimilarity):
        return exp.Anonymous(
            this="duckdb_jaro_winkler_similarity", expressions=[node.this, node.expression]
        )
    if isinstance(node, exp.Anonymous) and str(node.name).lower() in _RENAMED:
        return exp.Anonymous(this=_RENAMED[str(node.name).lower()], expressions=node.expressions)
    if (
        isinstance(node, exp.Log)
        and isinstance(node.this, exp.Literal)
        and node.this.this == "2"
        and node.expression is not None
    ):
        return exp.Anonymous(this="duckdb_log2", expressions=[node.expression])
    if isinstance(node, exp.Log | exp.Ln | exp.Exp):
        # DuckDB's log(x) is log10 (Spark's is ln), and Spark's StrictMath differs from
        # DuckDB's libm in the last bit (log2: for 24% of random inputs).
        raise SparkDialectError(
            f"{node.sql_name().lower()}(): Spark's differs in the last bit", sql
        )
    if isinstance(node, exp.Pow):
        return exp.Anonymous(this="duckdb_pow", expressions=[node.this, node.expression])
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        if name in ("hash", "age", "current_setting"):
            raise SparkDialectError(f"{name}()", sql)
    if (
        isinstance(node, exp.Table)
        and str(node.args.get("db") or "").lower() == "information_schema"
    ):
        raise SparkDialectError("information_schema (an engine statement)", sql)
    return node


def _round_double(value: exp.Expression, decimals: exp.Expression) -> exp.Expression:
    """DuckDB's round(double, n) is the double's exact binary value rounded half away from
    zero (round(2.675, 2) = 2.67, since 2.675 is 2.67499999...); Spark's rounds its shortest
    decimal text (2.68), and std::round(x * 100) / 100 also says 2.68 (2.675 * 100 = 267.5):
    duckdb_round, a UDF over Python's Decimal, is the exact one."""
    return exp.Anonymous(this="duckdb_round", expressions=[value, decimals])


def _post_order(tree: exp.Expression, fun: Any) -> exp.Expression:
    """fun on every node, children before parents, each parent seeing its rewritten
    children (sqlglot's transform is pre-order and skips the children of a new node)."""
    root = tree.copy()
    for node in reversed(list(root.dfs())):
        new = fun(node)
        if new is not node:
            if node is root:
                root = new
            else:
                node.replace(new)
    return root


def _date_diff(node: exp.DateDiff, sql: str) -> exp.Expression:
    unit = str(node.args.get("unit") or "day").strip("'\"").lower()
    start, end = node.expression, node.this

    def part(name: str, value: exp.Expression) -> exp.Expression:
        return exp.Anonymous(this=name, expressions=[value.copy()])

    def years() -> exp.Expression:
        return exp.Sub(this=part("year", end), expression=part("year", start))

    if unit in ("year", "years", "yr", "y"):
        return exp.paren(years())
    if unit in ("month", "months", "mon"):
        months = exp.Sub(this=part("month", end), expression=part("month", start))
        return exp.paren(
            exp.Add(
                this=exp.Mul(this=exp.paren(years()), expression=exp.Literal.number(12)),
                expression=months,
            )
        )
    if unit in ("quarter", "quarters"):
        quarters = exp.Sub(this=part("quarter", end), expression=part("quarter", start))
        return exp.paren(
            exp.Add(
                this=exp.Mul(this=exp.paren(years()), expression=exp.Literal.number(4)),
                expression=quarters,
            )
        )
    if unit in ("day", "days", "d"):
        return exp.Anonymous(
            this="datediff", expressions=[part("to_date", end), part("to_date", start)]
        )
    if unit in ("week", "weeks", "w"):
        # DuckDB counts ISO-week (Monday) boundaries: days between the Mondays, over 7.
        def monday(v: exp.Expression) -> exp.Expression:
            return exp.Anonymous(
                this="date_trunc", expressions=[exp.Literal.string("week"), v.copy()]
            )

        days = exp.Anonymous(
            this="datediff",
            expressions=[part("to_date", monday(end)), part("to_date", monday(start))],
        )
        return exp.Anonymous(this="div", expressions=[days, exp.Literal.number(7)])
    raise SparkDialectError(f"date_diff('{unit}', ...)", sql)


def _regexp_replace(node: exp.RegexpReplace, sql: str) -> exp.Expression:
    modifiers = node.args.get("modifiers")
    flags = modifiers.this if isinstance(modifiers, exp.Literal) else None
    if flags != "g":
        raise SparkDialectError("regexp_replace without 'g' (first match only) or with flags", sql)
    pattern, replacement = node.expression, node.args.get("replacement")
    if not (isinstance(pattern, exp.Literal) and isinstance(replacement, exp.Literal)):
        raise SparkDialectError("regexp_replace with a computed pattern or replacement", sql)
    text = _re2_to_java(pattern.this, sql)
    rewrite = re.sub(r"\\(\d)", r"$\1", replacement.this.replace("$", "\\$"))
    return exp.RegexpReplace(
        this=node.this, expression=exp.Literal.string(text), replacement=exp.Literal.string(rewrite)
    )


def _re2_to_java(pattern: str, sql: str) -> str:
    if "[[:" in pattern or "(?P<" in pattern:
        raise SparkDialectError(f"regular expression {pattern!r} (RE2-only syntax)", sql)
    return re.sub(r"(?<!\\)((?:\\\\)*)\\b", lambda m: m.group(1) + _ASCII_WORD_BOUNDARY, pattern)


def _parse(sql: str) -> exp.Expression:
    text = _CAST_PLACEHOLDER.sub(lambda m: f"CAST(? AS {m.group(1)})", sql)
    try:
        trees = [t for t in sqlglot.parse(text, read="duckdb") if t is not None]
    except sqlglot.errors.ParseError as exc:
        raise SparkDialectError(
            f"SQL that sqlglot cannot read ({str(exc).splitlines()[0]})", sql
        ) from None
    if len(trees) != 1:
        raise SparkDialectError(f"{len(trees)} statements (one at a time)", sql)
    tree = trees[0]
    assert isinstance(tree, exp.Expression)
    return tree


def to_spark(sql: str, column_types: Mapping[str, str] | None = None) -> str:
    """One DuckDB statement as Spark SQL with the same meaning.

    `column_types` (column name -> DuckDB type, e.g. {"income_per_capita": "DECIMAL(20,4)"})
    tells the rewrites that depend on a column's type (CAST to an integer, round(x, n), //);
    without it, those keep sqlglot's translation for columns, which differs from DuckDB for
    DOUBLE/DECIMAL operands. Raises SparkDialectError for what Spark cannot do the same way.
    """
    stripped = sql.strip().rstrip(";").strip()
    upper = stripped.upper()
    if upper.startswith(_ENGINE_WORDS) or upper == "BEGIN TRANSACTION":
        raise SparkDialectError("an engine statement (settings, transactions)", sql)
    if upper.startswith("EXPLAIN "):
        return "EXPLAIN " + to_spark(stripped[len("EXPLAIN ") :], column_types)
    tree = _parse(stripped)
    if isinstance(tree, exp.Delete | exp.Command):
        raise SparkDialectError(
            f"a {type(tree).__name__.upper()} statement (an engine statement)", sql
        )
    types = dict(column_types or {})
    tree = _post_order(tree, lambda n: _rewrite(n, sql, types))
    if isinstance(tree, exp.Create) and isinstance(tree.expression, exp.Query):
        temporary = any(isinstance(p, exp.TemporaryProperty) for p in _properties(tree))
        if temporary:
            name = tree.this.sql(dialect="spark")
            return (
                f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {tree.expression.sql(dialect='spark')}"
            )
    return str(tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE))


def _properties(tree: exp.Create) -> list[exp.Expression]:
    props = tree.args.get("properties")
    return list(props.expressions) if props is not None else []


def _create_or_insert(sql: str) -> exp.Expression | None:
    """The parsed statement when it is a CREATE or an INSERT, else None (without parsing
    others: sqlglot warns on EXPLAIN, SET ...)."""
    text = sql.strip().rstrip(";")
    if not text[:7].upper().startswith(("CREATE", "INSERT")):
        return None
    try:
        return _parse(text)
    except SparkDialectError:
        return None


def split_create(sql: str) -> tuple[str, str, bool] | None:
    """(table name, its SELECT in DuckDB SQL, temporary?) of CREATE [OR REPLACE] [TEMP]
    TABLE name AS SELECT ...; None for any other statement. The engine materialises the
    SELECT (to_spark of it) itself, since Spark's session catalog has no CREATE OR REPLACE
    TABLE AS for plain tables and a temporary view would be recomputed on every read."""
    tree = _create_or_insert(sql)
    if not (isinstance(tree, exp.Create) and tree.kind == "TABLE"):
        return None
    if not isinstance(tree.expression, exp.Query):
        return None
    table = tree.this if isinstance(tree.this, exp.Table) else tree.this.find(exp.Table)
    if table is None:
        return None
    temporary = any(isinstance(p, exp.TemporaryProperty) for p in _properties(tree))
    return table.name, str(tree.expression.sql(dialect="duckdb")), temporary


def split_insert(sql: str) -> tuple[str, list[str] | None, str] | None:
    """(table, listed columns or None, its SELECT in DuckDB SQL) of INSERT INTO t [(cols)]
    SELECT/WITH ...; None for any other statement (INSERT ... VALUES included)."""
    tree = _create_or_insert(sql)
    if not isinstance(tree, exp.Insert) or not isinstance(tree.expression, exp.Query):
        return None
    target = tree.this
    columns: list[str] | None = None
    if isinstance(target, exp.Schema):
        columns = [c.name for c in target.expressions]
        target = target.this
    query = tree.expression.copy()
    with_ = tree.args.get("with_") or tree.args.get("with")
    if with_ is not None:
        query.set("with_" if "with_" in query.arg_types else "with", with_.copy())
    return target.name, columns, str(query.sql(dialect="duckdb"))


def sample_key_sql(key_expr: str, seed: int) -> str:
    """A seeded sort key in DuckDB SQL whose ORDER BY gives the same order on Spark: the
    lower-case hex md5 of `key || '|' || seed` (md5 is the same function in both, and both
    compare strings by their UTF-8 bytes). Order by it, then by the key, for ties."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, not {seed!r}")
    return f"md5(CAST({key_expr} AS VARCHAR) || '|{seed}')"


# -- the string functions Spark lacks ------------------------------------------------------


def _objects(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=object)


def _pairwise(scorer: Any, left: Any, right: Any, dtype: Any, empty_value: Any = None) -> Any:
    """scorer(left[i], right[i]) for every i in one rapidfuzz batch call; None where either
    side is None; `empty_value` where either side is '' (when set)."""
    import pandas as pd
    from rapidfuzz import process

    a, b = _objects(left), _objects(right)
    known = np.array(
        [x is not None and y is not None for x, y in zip(a, b, strict=True)], dtype=bool
    )
    if a.dtype == object:
        known &= ~pd.isna(a) & ~pd.isna(b)
    out = pd.array([None] * len(a), dtype=dtype)
    if known.any():
        xs, ys = a[known].tolist(), b[known].tolist()
        # float64, not rapidfuzz's default float32: levels compare with thresholds like 0.9.
        kind = np.float64 if dtype == pd.Float64Dtype() else np.int64
        scores = process.cpdist(xs, ys, scorer=scorer, workers=1, dtype=kind)
        values = pd.array(scores, dtype=dtype)
        if empty_value is not None:
            empties = np.array(
                [x == "" or y == "" for x, y in zip(xs, ys, strict=True)], dtype=bool
            )
            values[empties] = empty_value
        out[np.flatnonzero(known)] = values
    return out


def jaro_winkler_similarity_batch(left: Any, right: Any) -> Any:
    """DuckDB's jaro_winkler_similarity element-wise (rapidfuzz's JaroWinkler, prefix weight
    0.1): 0.0 when either side is empty (rapidfuzz says 1.0 for two empty strings)."""
    import pandas as pd
    from rapidfuzz.distance import JaroWinkler

    out = _pairwise(JaroWinkler.normalized_similarity, left, right, pd.Float64Dtype(), 0.0)
    return out


def damerau_levenshtein_batch(left: Any, right: Any) -> Any:
    """DuckDB's damerau_levenshtein element-wise: the unrestricted Damerau-Levenshtein
    distance ('ca' -> 'abc' is 2, as in DuckDB; the restricted OSA distance would be 3)."""
    import pandas as pd
    from rapidfuzz.distance import DamerauLevenshtein

    return _pairwise(DamerauLevenshtein.distance, left, right, pd.Int64Dtype())


def hamming_batch(left: Any, right: Any) -> Any:
    """DuckDB's hamming element-wise. DuckDB raises for strings of unequal length or of
    length 0, and so does this (ValueError with DuckDB's words), instead of rapidfuzz's
    padding of the shorter string."""
    import pandas as pd
    from rapidfuzz.distance import Hamming

    a, b = _objects(left), _objects(right)
    for x, y in zip(a, b, strict=True):
        if x is None or y is None or pd.isna(x) or pd.isna(y):
            continue
        if len(x) != len(y):
            raise ValueError("Mismatch Function: Strings must be of equal length!")
        if len(x) == 0:
            raise ValueError("Mismatch Function: Strings must be of length > 0!")
    return _pairwise(Hamming.distance, a, b, pd.Int64Dtype())


def log2_batch(values: Any) -> Any:
    """DuckDB's log2 element-wise: libm's log2 through math.log2 (numpy's vectorised log2
    differs in the last bit for about 0.07% of inputs, so this loops in Python, at about
    10 million values a second); NULL for NULL, -inf for 0 and NaN below 0, as DuckDB."""
    import pandas as pd

    def one(x: Any) -> float:
        if x is None or x is pd.NA:
            return math.nan
        if x > 0:
            return math.log2(x)
        return -math.inf if x == 0 else math.nan

    items = _objects(values)
    missing = np.array([x is None or x is pd.NA for x in items], dtype=bool)
    # A masked array keeps NaN (log2 of a negative) apart from NULL, as DuckDB does.
    return pd.arrays.FloatingArray(np.array([one(x) for x in items], dtype=np.float64), missing)


def round_batch(values: Any, decimals: Any) -> Any:
    """DuckDB's round(DOUBLE, n) element-wise: the exact binary value rounded half away from
    zero to n places (negative n: tens, hundreds), NaN and infinities as they are."""
    import decimal

    import pandas as pd

    context = decimal.Context(prec=1200, rounding=decimal.ROUND_HALF_UP)

    def one(x: Any, n: Any) -> float:
        if x is None or x is pd.NA or n is None or n is pd.NA:
            return math.nan
        x = float(x)
        if math.isnan(x) or math.isinf(x):
            return x
        step = decimal.Decimal(1).scaleb(-int(n))
        return float(decimal.Decimal(x).quantize(step, context=context))

    xs, ns = _objects(values), _objects(decimals)
    missing = np.array(
        [_missing(x) or _missing(n) for x, n in zip(xs, ns, strict=True)], dtype=bool
    )
    out = np.array([one(x, n) for x, n in zip(xs, ns, strict=True)], dtype=np.float64)
    return pd.arrays.FloatingArray(out, missing)


def pow_batch(bases: Any, exponents: Any) -> Any:
    """DuckDB's pow element-wise: libm's pow through math.pow (numpy's differs in the last
    bit for 5% of inputs); where math.pow raises (0 ** -1, (-8) ** (1/3), overflow), numpy's
    inf/NaN, which is what DuckDB returns there."""
    import pandas as pd

    def one(a: Any, b: Any) -> float:
        if _missing(a) or _missing(b):
            return math.nan
        try:
            return math.pow(float(a), float(b))
        except (ValueError, OverflowError):
            with np.errstate(all="ignore"):
                return float(np.power(np.float64(a), np.float64(b)))

    xs, ys = _objects(bases), _objects(exponents)
    missing = np.array(
        [_missing(a) or _missing(b) for a, b in zip(xs, ys, strict=True)], dtype=bool
    )
    out = np.array([one(a, b) for a, b in zip(xs, ys, strict=True)], dtype=np.float64)
    return pd.arrays.FloatingArray(out, missing)


def _missing(value: Any) -> bool:
    import pandas as pd

    return value is None or value is pd.NA


def register_functions(spark: Any) -> None:
    """Register DuckDB's jaro_winkler_similarity, damerau_levenshtein, hamming and log2 in a
    SparkSession as duckdb_<name>, the names to_spark's output calls."""
    import pandas as pd
    from pyspark.sql.functions import pandas_udf

    def pair_udf(batch: Any, return_type: str) -> Any:
        def run(a: Any, b: Any) -> Any:
            return pd.Series(batch(a.to_numpy(object), b.to_numpy(object)))

        # Real classes, not this module's postponed (string) annotations: pyspark reads the
        # hints to tell a Series-to-Series UDF.
        run.__annotations__ = {"a": pd.Series, "b": pd.Series, "return": pd.Series}
        return pandas_udf(run, returnType=return_type)  # type: ignore[call-overload]

    def log2(x: Any) -> Any:  # one argument, so not pair_udf
        return pd.Series(log2_batch(x.to_numpy(object)))

    log2.__annotations__ = {"x": pd.Series, "return": pd.Series}
    spark.udf.register("duckdb_log2", pandas_udf(log2, returnType="double"))  # type: ignore[call-overload]
    spark.udf.register("duckdb_round", pair_udf(round_batch, "double"))
    spark.udf.register("duckdb_pow", pair_udf(pow_batch, "double"))
    spark.udf.register(
        "duckdb_jaro_winkler_similarity", pair_udf(jaro_winkler_similarity_batch, "double")
    )
    spark.udf.register("duckdb_damerau_levenshtein", pair_udf(damerau_levenshtein_batch, "bigint"))
    spark.udf.register("duckdb_hamming", pair_udf(hamming_batch, "bigint"))
