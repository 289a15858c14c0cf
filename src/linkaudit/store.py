"""Names shared by SQL builders and engines: quoting, table names, the quarantine schema.

A leaf: it imports nothing of ours. Table layout of a workspace:
- `reg_<registry>`: canonical, normalised columns of the loaded rows (see `ingest.canonical`).
- `raw_<registry>`: the source columns as read, with `_row`, for tracing a value back to its file.
- `quarantine`: rows that could not be loaded: registry, file, row, column, reason.
- `load_log`: one row per registry: file, checksum, encoding, counts, when.
The engines that run SQL over them are in `linkaudit.engines`.
"""

from __future__ import annotations

import re

import polars as pl

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

QUARANTINE_SCHEMA = {
    "registry": pl.Utf8,
    "file": pl.Utf8,
    "row": pl.Int64,
    "column": pl.Utf8,
    "reason": pl.Utf8,
}


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
