"""The DuckDB workspace: one connection, one place that executes SQL and writes tables.

Table layout:
- `reg_<registry>`: canonical, normalised columns of the loaded rows (see `ingest.canonical`).
- `raw_<registry>`: the source columns as read, with `_row`, for tracing a value back to its file.
- `quarantine`: rows that could not be loaded: registry, file, row, column, reason.
- `load_log`: one row per registry: file, checksum, encoding, counts, when.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from linkaudit.errors import (
    LinkauditError,
    WorkspaceError,
    environment_error,
    environment_fault,
)

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


def _open_error(path: Path, exc: duckdb.Error) -> LinkauditError:
    """Why the workspace would not open, with the fix for that cause (a lock is not the
    only one)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lower = first.lower()
    if "could not set lock" in lower or "conflicting lock" in lower:
        return WorkspaceError(
            f"{path}: the workspace database is in use ({first})",
            hint="another linkaudit run (or a DuckDB session) has it open: wait for it to "
            "finish, or set `database:` to another file",
        )
    fault = environment_fault(exc, str(path))
    if fault is not None:
        return fault
    return WorkspaceError(
        f"{path}: cannot open the workspace database ({first})",
        hint="check that the file is a linkaudit workspace (a DuckDB database)",
    )


def table_name(prefix: str, registry: str) -> str:
    if not _IDENT.match(registry):
        raise ValueError(f"registry name {registry!r} is not an identifier")
    return f"{prefix}_{registry}"


class Workspace:
    """An open DuckDB workspace database."""

    def __init__(self, path: Path | str, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise WorkspaceError(
                f"{self.path}: workspace database not found",
                hint="run `linkaudit load MANIFEST` (or `audit`) first",
            )
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except OSError as exc:
            raise environment_error(exc, f"{self.path}: cannot create the workspace") from None
        except duckdb.Error as exc:
            raise _open_error(self.path, exc) from None
        # Progress is ours to show; DuckDB's own bar would garble logs.
        self.con.execute("SET enable_progress_bar = false").fetchall()
        self._ensure_meta()

    def _ensure_meta(self) -> None:
        if self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'quarantine'"
        ).fetchall() == [(0,)]:
            try:
                self.con.execute(
                    "CREATE TABLE IF NOT EXISTS quarantine (registry VARCHAR, file VARCHAR, "
                    '"row" BIGINT, "column" VARCHAR, reason VARCHAR)'
                )
                self.con.execute(
                    "CREATE TABLE IF NOT EXISTS load_log (registry VARCHAR PRIMARY KEY, "
                    "file VARCHAR, format VARCHAR, encoding VARCHAR, checksum VARCHAR, "
                    "fields_hash VARCHAR, rows_read BIGINT, rows_loaded BIGINT, "
                    "rows_quarantined BIGINT, loaded_at TIMESTAMP)"
                )
            except duckdb.Error:  # read-only connection to an older database
                pass

    # -- execution -------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All statements inside commit together or not at all (a kill leaves the before)."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.con.execute("COMMIT")

    def rollback(self) -> None:
        """Roll back the open transaction; DuckDB may have ended it already (a failed write on
        a full disk aborts it), and that must not hide the error that caused it."""
        with contextlib.suppress(duckdb.Error):
            self.con.execute("ROLLBACK")

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        """Run a statement to completion (DuckDB wants each result finished before the next)."""
        self.con.execute(sql, params or []).fetchall()

    def fetchall(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()

    def fetchone(self, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def query_pl(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        table = self.con.sql(sql, params=params or None).to_arrow_table()
        return pl.from_arrow(table)  # type: ignore[return-value]

    def scalar(self, sql: str, params: list[Any] | None = None) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    def has_table(self, name: str) -> bool:
        return bool(
            self.scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
            )
        )

    def columns(self, name: str) -> list[str]:
        return [
            r[0]
            for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position",
                [name],
            ).fetchall()
        ]

    def write_table(self, name: str, frame: pl.DataFrame) -> None:
        """Replace table `name` with the frame's contents (Arrow hand-over, no row loop)."""
        arrow = frame.to_arrow()
        self.con.register("_linkaudit_incoming", arrow)
        try:
            self.con.execute(
                f"CREATE OR REPLACE TABLE {quote_ident(name)} AS SELECT * FROM _linkaudit_incoming"
            )
        finally:
            self.con.unregister("_linkaudit_incoming")

    def write_table_on_cursor(self, name: str, frame: pl.DataFrame) -> None:
        """write_table on a separate cursor, so another thread can use the connection."""
        cursor = self.con.cursor()
        try:
            cursor.register("_linkaudit_incoming_c", frame.to_arrow())
            cursor.execute(
                f"CREATE OR REPLACE TABLE {quote_ident(name)} AS SELECT * FROM _linkaudit_incoming_c"
            ).fetchall()
        finally:
            cursor.close()

    def replace_quarantine(self, registry: str, frame: pl.DataFrame) -> None:
        self.con.execute("DELETE FROM quarantine WHERE registry = ?", [registry])
        if frame.height:
            arrow = frame.select(list(QUARANTINE_SCHEMA)).to_arrow()
            self.con.register("_linkaudit_q", arrow)
            try:
                self.con.execute(
                    'INSERT INTO quarantine SELECT * FROM _linkaudit_q ORDER BY "row", "column"'
                )
            finally:
                self.con.unregister("_linkaudit_q")

    def secret(self) -> str:
        """This workspace's own random secret (hex), made on first use and kept in the
        database: it keys the surrogate person keys, so they cannot be reversed into ID
        numbers by hashing every possible ID."""
        self.execute(
            "CREATE TABLE IF NOT EXISTS workspace_meta (name VARCHAR PRIMARY KEY, value VARCHAR)"
        )
        value = self.scalar("SELECT value FROM workspace_meta WHERE name = 'key_secret'")
        if value is None:
            value = secrets.token_hex(32)
            self.execute("INSERT INTO workspace_meta VALUES ('key_secret', ?)", [value])
        return str(value)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
