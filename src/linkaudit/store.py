"""Names shared by SQL builders and engines: quoting, table names, the quarantine schema.

A leaf: it imports nothing of ours. Table layout of a workspace:
- `reg_<registry>`: canonical, normalised columns of the loaded rows (see `ingest.canonical`).
- `raw_<registry>`: the source columns as read, with `_row`, for tracing a value back to its file.
- `quarantine`: rows that could not be loaded: registry, file, row, column, reason.
- `load_log`: one row per registry: file, checksum, encoding, counts, when.
The engines that run SQL over them are in `linkaudit.engines`.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    QUARANTINE_SCHEMA: dict[str, type[pl.DataType]]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@functools.cache
def _quarantine_schema() -> dict[str, Any]:
    import polars as pl

    return {
        "registry": pl.Utf8,
        "file": pl.Utf8,
        "row": pl.Int64,
        "column": pl.Utf8,
        "reason": pl.Utf8,
    }


def __getattr__(name: str) -> Any:
    # QUARANTINE_SCHEMA (polars types) made on first use: the SQL builders that import this
    # leaf (quote_ident, table names) must not load polars (an unchanged rerun never does).
    if name == "QUARANTINE_SCHEMA":
        return _quarantine_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def quote_ident(name: str) -> str:
    """Quote any column or table name for DuckDB (names may be Chinese or contain spaces)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """A SQL string literal (free text from a manifest, e.g. a department name)."""
    return "'" + str(value).replace("'", "''") + "'"


def table_name(prefix: str, registry: str) -> str:
    if not _IDENT.match(registry):
        raise ValueError(f"registry name {registry!r} is not an identifier")
    return f"{prefix}_{registry}"
