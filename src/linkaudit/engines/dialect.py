"""SQL ASTs rendered into one engine's text.

Builders write DuckDB-dialect SQL; a sqlglot expression becomes text here, in the engine
layer, so that another engine (Spark) can render the same tree in its own dialect.
"""

from __future__ import annotations

from sqlglot import exp

__all__ = ["render"]


def render(expression: exp.Expr, dialect: str = "duckdb") -> str:
    """The expression (any sqlglot node) as SQL text of `dialect` (DuckDB by default)."""
    return str(expression.sql(dialect=dialect))
