"""SQL of the run history: runs, their cases, field verifications. Pure builders returning
DuckDB-dialect text (`?` marks the parameters); `history`, `verify` and the HTML report run
them through the engine.

Tables:
- `runs`: one row per audit run (time, manifest, input checksums, rule-set hash, version, counts).
- `run_cases`: every case of every run, with its status against the baseline.
- `verifications`: field outcomes imported from cadres' spreadsheets (latest per case wins).
"""

from __future__ import annotations

from linkaudit.store import quote_ident

__all__ = [
    "HISTORY_TABLES",
    "baseline_case_ids_sql",
    "baseline_cases_sql",
    "history_schema_sql",
    "insert_rows_sql",
    "insert_run_sql",
    "latest_outcomes_sql",
    "other_runs_sql",
    "recent_runs_sql",
    "reported_cases_sql",
    "run_at_sql",
    "run_case_keys_sql",
    "run_ids_sql",
    "runs_with_prefix_sql",
    "verification_status_sql",
    "verifications_digest_sql",
]

#: Each history table and its columns, in order (an INSERT of a frame follows this order).
HISTORY_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "runs": (
        ("run_id", "VARCHAR PRIMARY KEY"),
        ("started_at", "TIMESTAMP"),
        ("manifest", "VARCHAR"),
        ("as_of", "DATE"),
        ("input_checksums", "VARCHAR"),
        ("ruleset_hash", "VARCHAR"),
        ("tool_version", "VARCHAR"),
        ("baseline_run", "VARCHAR"),
        ("counts", "VARCHAR"),
    ),
    "run_cases": (
        ("run_id", "VARCHAR"),
        ("case_id", "VARCHAR"),
        ("rule_id", "VARCHAR"),
        ("scope", "VARCHAR"),
        ("unit_key", "VARCHAR"),
        ("household_key", "VARCHAR"),
        ("person_key", "VARCHAR"),
        ("township", "VARCHAR"),
        ("evidence_hash", "VARCHAR"),
        ("status", "VARCHAR"),
        ("suppressed", "VARCHAR"),
    ),
    "verifications": (
        ("case_id", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("rule_id", "VARCHAR"),
        ("unit_key", "VARCHAR"),
        ("outcome", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("evidence_hash", "VARCHAR"),
        ("source", "VARCHAR"),
        ("imported_at", "TIMESTAMP"),
    ),
}

#: The latest outcome per case (a later import overrides an earlier one).
_LATEST_VERIFICATION = (
    "SELECT * FROM (SELECT *, row_number() OVER "
    "(PARTITION BY case_id ORDER BY imported_at DESC) AS rn FROM verifications) latest "
    "WHERE rn = 1"
)
_CASE_COLUMNS = "case_id, rule_id, unit_key, household_key, person_key, township"


def history_schema_sql() -> list[str]:
    """CREATE TABLE IF NOT EXISTS for each history table."""
    return [
        f"CREATE TABLE IF NOT EXISTS {name} ("
        + ", ".join(f"{col} {kind}" for col, kind in columns)
        + ")"
        for name, columns in HISTORY_TABLES.items()
    ]


def insert_run_sql() -> str:
    """One run's row, its values bound in the order of HISTORY_TABLES['runs']."""
    marks = ", ".join("?" for _ in HISTORY_TABLES["runs"])
    return f"INSERT INTO runs VALUES ({marks})"


def insert_rows_sql(table: str, source: str) -> str:
    """Every row of `source` (a registered frame with the table's columns in order) appended
    to the history table `table`."""
    if table not in HISTORY_TABLES:
        raise ValueError(f"{table!r} is not a history table")
    return f"INSERT INTO {table} SELECT * FROM {quote_ident(source)}"


def run_at_sql(offset: int, of_ruleset: bool) -> str:
    """The id of the run `offset` runs before the latest (0: the latest); `of_ruleset`: only
    runs of the rule-set hash bound as parameter 1."""
    where = "WHERE ruleset_hash = ? " if of_ruleset else ""
    return (
        f"SELECT run_id FROM runs {where}"
        f"ORDER BY started_at DESC, run_id DESC LIMIT 1 OFFSET {int(offset)}"
    )


def runs_with_prefix_sql() -> str:
    """Runs whose id starts with parameter 1."""
    return "SELECT run_id FROM runs WHERE starts_with(run_id, ?)"


def recent_runs_sql(limit: int = 5) -> str:
    """The ids of the latest `limit` runs, newest first."""
    return f"SELECT run_id FROM runs ORDER BY started_at DESC LIMIT {int(limit)}"


def run_ids_sql() -> str:
    return "SELECT run_id FROM runs"


def other_runs_sql() -> str:
    """Every run but the one bound as parameter 1, oldest first: id, start, counts (JSON)."""
    return "SELECT run_id, started_at, counts FROM runs WHERE run_id <> ? ORDER BY started_at"


def latest_outcomes_sql() -> str:
    """Each verified case's latest outcome and the evidence hash it was given for."""
    return (
        "SELECT case_id, rule_id, unit_key, outcome, reason, evidence_hash AS verified_hash "
        f"FROM ({_LATEST_VERIFICATION}) outcomes"
    )


def baseline_case_ids_sql() -> str:
    """The case ids a run (parameter 1) reported (not suppressed)."""
    return "SELECT DISTINCT case_id FROM run_cases WHERE run_id = ? AND suppressed = 'no'"


def baseline_cases_sql() -> str:
    """The cases a run (parameter 1) reported (not suppressed), with their units."""
    return f"SELECT {_CASE_COLUMNS} FROM run_cases WHERE run_id = ? AND suppressed = 'no'"


def reported_cases_sql() -> str:
    """The cases a run (parameter 1) reported, with their status, by rule and unit."""
    return (
        f"SELECT {_CASE_COLUMNS}, status FROM run_cases "
        "WHERE run_id = ? AND suppressed = 'no' ORDER BY rule_id, unit_key"
    )


def run_case_keys_sql() -> str:
    """Every case of every run: (run_id, case_id) and what an outcome is recorded with."""
    return "SELECT run_id, case_id, rule_id, unit_key, evidence_hash FROM run_cases"


def verification_status_sql() -> str:
    """Per rule and township, over the latest run's cases (suppressed ones included): cases
    flagged, verified, confirmed, cleared, pending, and the confirmed share of the verified."""
    verified = "o.outcome IN ('confirmed', 'cleared')"
    return f"""
        WITH latest AS (SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1),
        cases AS (SELECT c.* FROM run_cases c JOIN latest l ON l.run_id = c.run_id),
        outcome AS (SELECT case_id, outcome FROM ({_LATEST_VERIFICATION}) outcomes)
        SELECT c.rule_id, coalesce(c.township, '') AS township,
               count(*) AS flagged,
               count(*) FILTER (WHERE {verified}) AS verified,
               count(*) FILTER (WHERE o.outcome = 'confirmed') AS confirmed,
               count(*) FILTER (WHERE o.outcome = 'cleared') AS cleared,
               count(*) FILTER (WHERE o.outcome = 'pending') AS pending,
               CASE WHEN count(*) FILTER (WHERE {verified}) > 0
                    THEN CAST(count(*) FILTER (WHERE o.outcome = 'confirmed') AS DOUBLE)
                         / count(*) FILTER (WHERE {verified})
               END AS confirmation_rate
        FROM cases c LEFT JOIN outcome o ON o.case_id = c.case_id
        GROUP BY c.rule_id, coalesce(c.township, '')
        ORDER BY c.rule_id, township
        """


def verifications_digest_sql() -> str:
    """How many field outcomes were imported, and when the last one was (outcomes are only
    ever appended): any import changes the pair."""
    return "SELECT count(*), CAST(max(imported_at) AS VARCHAR) FROM verifications"
