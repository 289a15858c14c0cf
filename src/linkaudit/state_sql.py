"""SQL of the workspace's own state: the load log and the link and findings caches.

Pure builders (DuckDB text, `?` parameters), run by the workspace engine.
"""

from __future__ import annotations

from linkaudit.store import quote_ident


def load_log_delete_sql() -> str:
    return "DELETE FROM load_log WHERE registry = ?"


def load_log_insert_sql() -> str:
    return "INSERT INTO load_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def load_log_entry_sql() -> str:
    """The previous load of one registry (parameter: its name)."""
    return (
        "SELECT file, format, encoding, checksum, fields_hash, rows_read, rows_loaded, "
        "rows_quarantined FROM load_log WHERE registry = ?"
    )


def load_checksums_sql() -> str:
    return "SELECT registry, checksum, fields_hash FROM load_log ORDER BY registry"


def state_table_sql(table: str, key: str) -> str:
    """A one-row cache state: the hash of what it was computed from, and a JSON report."""
    return (
        f"CREATE OR REPLACE TABLE {quote_ident(table)} ({quote_ident(key)} VARCHAR, report VARCHAR)"
    )


def state_insert_sql(table: str) -> str:
    return f"INSERT INTO {quote_ident(table)} VALUES (?, ?)"


def state_read_sql(table: str, key: str) -> str:
    return f"SELECT {quote_ident(key)}, report FROM {quote_ident(table)}"


def all_rows_sql(table: str, order_by: tuple[str, ...] = ()) -> str:
    order = f" ORDER BY {', '.join(quote_ident(c) for c in order_by)}" if order_by else ""
    return f"SELECT * FROM {quote_ident(table)}{order}"


def count_rows_sql(select_sql: str) -> str:
    return f"SELECT count(*) FROM ({select_sql})"


def published_links_sql() -> str:
    """links.csv: every kept link, its probability to six places."""
    return (
        "SELECT registry, record_key, person_key, round(match_probability, 6) AS "
        "match_probability, decision FROM links ORDER BY registry, record_key"
    )


def quarantine_rows_sql() -> str:
    return (
        'SELECT registry, file, "row", "column", reason FROM quarantine '
        'ORDER BY registry, "row", "column"'
    )


#: A recorded run's fingerprint (see `audit.rerun`): what its results were computed from and
#: the checksums of the outputs it published. One row: the latest recorded run's.
RERUN_STATE = "rerun_state"


def rerun_state_table_sql() -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {RERUN_STATE} (run_id VARCHAR, started_at VARCHAR, "
        "settings VARCHAR, inputs VARCHAR, workspace VARCHAR, day DATE, expiries VARCHAR, "
        "outputs VARCHAR)"
    )


def rerun_state_clear_sql() -> str:
    return f"DELETE FROM {RERUN_STATE}"


def rerun_state_insert_sql() -> str:
    return f"INSERT INTO {RERUN_STATE} VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def rerun_state_read_sql() -> str:
    """The fingerprint of one run (parameter: its id)."""
    return (
        "SELECT run_id, started_at, settings, inputs, workspace, day, expiries, outputs "
        f"FROM {RERUN_STATE} WHERE run_id = ?"
    )


def table_names_sql() -> str:
    """Every table of the workspace, by name (one query instead of one per table)."""
    return "SELECT DISTINCT table_name FROM information_schema.tables"
