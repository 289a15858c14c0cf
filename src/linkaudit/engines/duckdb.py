"""The DuckDB engine: the workspace database, one connection, the place that executes SQL.

Every stage's SQL is built by pure functions elsewhere (DuckDB dialect text) and handed to an
engine's methods: `run` a statement, `rows`/`row`/`value`/`frame` for results, `create` a table
from a SELECT, `put` a polars frame as a table, `registered` for a frame visible to a query.
The workspace also keeps what must be transactional on every engine: run history, cases,
load log, quarantine (see `linkaudit.store` for the table layout).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from linkaudit.engines.base import FrameRegistry
from linkaudit.errors import (
    LinkauditError,
    WorkspaceError,
    environment_error,
    environment_fault,
)
from linkaudit.store import quote_ident

if TYPE_CHECKING:  # imported where frames are made: an unchanged rerun loads no polars
    import polars as pl


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


class Workspace(FrameRegistry):
    """An open DuckDB workspace database (the DuckDB engine)."""

    name = "duckdb"

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

    def run(self, sql: str, params: list[Any] | None = None) -> None:
        """Run a statement to completion (DuckDB wants each result finished before the next)."""
        self.con.execute(sql, params or []).fetchall()

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()

    def row(self, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def frame(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        import polars as pl

        table = self.con.sql(sql, params=params or None).to_arrow_table()
        return pl.from_arrow(table)  # type: ignore[return-value]

    def value(self, sql: str, params: list[Any] | None = None) -> Any:
        found = self.row(sql, params)
        return None if found is None else found[0]

    def check(self, sql: str) -> None:
        """Bind a query without running it (EXPLAIN): a wrong type or name raises duckdb.Error."""
        self.run(f"EXPLAIN {sql}")

    def create(self, name: str, select_sql: str, temp: bool = False) -> None:
        """Table `name` replaced by the rows of a SELECT (a temp table lives for the session)."""
        kind = "TEMP TABLE" if temp else "TABLE"
        self.run(f"CREATE OR REPLACE {kind} {quote_ident(name)} AS {select_sql}")

    def drop(self, name: str) -> None:
        self.run(f"DROP TABLE IF EXISTS {quote_ident(name)}")

    def has_table(self, name: str) -> bool:
        return bool(
            self.value(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
            )
        )

    def columns(self, name: str) -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position",
                [name],
            )
        ]

    def register(self, name: str, frame: pl.DataFrame) -> None:
        """The frame visible to queries as `name` until unregistered (an Arrow hand-over)."""
        self.con.register(name, frame.to_arrow())

    def unregister(self, name: str) -> None:
        self.con.unregister(name)

    def column_types(self, name: str) -> dict[str, str]:
        """Column -> DuckDB type name."""
        return dict(
            self.rows(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? ORDER BY ordinal_position",
                [name],
            )
        )

    def put(self, name: str, frame: pl.DataFrame) -> None:
        """Replace table `name` with the frame's contents (Arrow hand-over, no row loop)."""
        with self.registered("_linkaudit_incoming", frame):
            self.create(name, "SELECT * FROM _linkaudit_incoming")

    def replace_quarantine(self, registry: str, frame: pl.DataFrame) -> None:
        self.run("DELETE FROM quarantine WHERE registry = ?", [registry])
        if frame.height:
            from linkaudit.store import QUARANTINE_SCHEMA

            with self.registered("_linkaudit_q", frame.select(list(QUARANTINE_SCHEMA))):
                self.run(
                    'INSERT INTO quarantine SELECT * FROM _linkaudit_q ORDER BY "row", "column"'
                )

    def forbid_file_access(self) -> None:
        """DuckDB's file access off (no read_csv, read_text, COPY, ATTACH, extensions) and the
        setting locked: DuckDB cannot turn it back on for this connection; nothing after the
        rules needs it (outputs are written by polars and xlsxwriter, not by DuckDB)."""
        state = self.row(
            "SELECT current_setting('enable_external_access'), "
            "current_setting('lock_configuration')"
        )
        if state == (False, True):  # already locked down (a second run on this connection)
            return
        self.run("SET enable_external_access = false")
        self.run("SET lock_configuration = true")

    def secret(self) -> str:
        """This workspace's own random secret (hex), made on first use and kept in the
        database: it keys the surrogate person keys, so they cannot be reversed into ID
        numbers by hashing every possible ID."""
        self.run(
            "CREATE TABLE IF NOT EXISTS workspace_meta (name VARCHAR PRIMARY KEY, value VARCHAR)"
        )
        value = self.value("SELECT value FROM workspace_meta WHERE name = 'key_secret'")
        if value is None:
            value = secrets.token_hex(32)
            self.run("INSERT INTO workspace_meta VALUES ('key_secret', ?)", [value])
        return str(value)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
