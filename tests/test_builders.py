"""SQL builders checked as text: each parses as DuckDB SQL, names the tables and columns it
should, quotes hostile names; small ones to the exact text. A few run on a tiny workspace where
the text alone cannot show the point (a hostile column name, EXPLAIN running nothing)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from linkaudit.audit import explain_sql, rule_sql
from linkaudit.audit.compile import Lookup, missing_lookup_sql
from linkaudit.audit.unknown_values import unknown_values_sql
from linkaudit.config import RegistryConfig
from linkaudit.engines.dialect import render
from linkaudit.engines.duckdb import Workspace
from linkaudit.evaluate import (
    eval_pairs_sql,
    flag_scores_sql,
    registry_scores_sql,
    worst_errors_sql,
)
from linkaudit.history_sql import (
    HISTORY_TABLES,
    baseline_case_ids_sql,
    baseline_cases_sql,
    history_schema_sql,
    insert_rows_sql,
    insert_run_sql,
    latest_outcomes_sql,
    other_runs_sql,
    recent_runs_sql,
    reported_cases_sql,
    run_at_sql,
    run_case_keys_sql,
    run_ids_sql,
    runs_with_prefix_sql,
    verification_status_sql,
)
from linkaudit.privacy import id_counts_sql
from linkaudit.report.exceptions_sql import (
    EMPTY_EVIDENCE_SQL,
    evidence_part_sql,
    evidence_text_sql,
    evidence_zh_sql,
    exception_rows_sql,
)

#: A table name that would end the statement if it were pasted in unquoted.
HOSTILE = 'reg_x"; DROP TABLE links; --'

VEHICLES = RegistryConfig(
    name="vehicles",
    department="公安交警",
    path=Path("vehicles.csv"),
    fields={"name": "所有人", "plate": "号牌", "area": "面积"},
    types={"area": "amount"},
)
BASE = rule_sql.linked_base_sql("reg_poverty", "reg_vehicles", "vehicles", True, "r.plate = 'x'")

#: One of every builder's output (the parameters matter little: the text must parse).
BUILT = {
    "window": rule_sql.window_sql("registered_on", "r", dt.date(2015, 12, 31), 12, None),
    "window_days": rule_sql.window_sql("registered_on", "r", None, None, 30),
    "register_rule": rule_sql.register_rule_sql("false_exit", "reg_poverty", True, "b.x < 1"),
    "duplicate_rule": rule_sql.duplicate_rule_sql(
        "twice", "poverty", "reg_poverty", False, ["id_number"], "TRUE", "TRUE"
    ),
    "linked_base": BASE,
    "linked_rule": rule_sql.linked_rule_sql("car", BASE, "vehicles"),
    "aggregate_rule": rule_sql.aggregate_rule_sql(
        "cars", BASE, "vehicles", "__household", "count(*) >= 2"
    ),
    "findings_table": rule_sql.findings_table_sql(),
    "insert_findings": rule_sql.insert_findings_sql("SELECT * FROM findings"),
    "rule_counts": rule_sql.rule_counts_sql(),
    "household_persons": rule_sql.household_persons_sql("reg_poverty"),
    "distinct_persons": rule_sql.distinct_persons_sql(3),
    "missing_lookup": missing_lookup_sql(
        Lookup("line", "exit_year", "b.exit_year", "CASE b.exit_year WHEN 1 THEN 2 END", ("1",)),
        '"reg_poverty" b',
    ),
    "people": explain_sql.people_sql("reg_poverty", True, "_key = ? OR household = ?"),
    "people_households": explain_sql.people_with_households_sql(
        "reg_poverty", True, "id_number = ?"
    ),
    "masked_key": explain_sql.masked_key_sql("reg_poverty", True),
    "case_unit": explain_sql.case_unit_sql(),
    "findings_of": explain_sql.findings_of_sql(2),
    "record": explain_sql.record_sql("reg_vehicles", ["_key", "plate"]),
    "link_weights": explain_sql.link_weights_sql(["level_name", "level_id_number"]),
    "link_weights_none": explain_sql.link_weights_sql([]),
    "insert_run": insert_run_sql(),
    "insert_rows": insert_rows_sql("run_cases", "_run_cases"),
    "run_at": run_at_sql(1, True),
    "runs_with_prefix": runs_with_prefix_sql(),
    "recent_runs": recent_runs_sql(5),
    "run_ids": run_ids_sql(),
    "other_runs": other_runs_sql(),
    "latest_outcomes": latest_outcomes_sql(),
    "baseline_case_ids": baseline_case_ids_sql(),
    "baseline_cases": baseline_cases_sql(),
    "reported_cases": reported_cases_sql(),
    "run_case_keys": run_case_keys_sql(),
    "verification_status": verification_status_sql(),
    "evidence_part": evidence_part_sql(
        "car", VEHICLES, "reg_vehicles", {"_key", "name_raw", "plate"}, ["plate", "colour"], False
    ),
    "evidence_empty": evidence_text_sql([]),
    "exception_rows": exception_rows_sql(EMPTY_EVIDENCE_SQL, "reg_poverty", "_meta", True, False),
    "eval_pairs": eval_pairs_sql("_truth"),
    "registry_scores": registry_scores_sql("_eval"),
    "worst_errors": worst_errors_sql("_eval", 20),
    "flag_scores": flag_scores_sql("_truth_flags", "_scopes"),
    "id_counts": id_counts_sql("reg_poverty", [("_key", True), ("phone", False)]),
    "unknown_values": unknown_values_sql("reg_vehicles", "vehicle_status"),
    **{f"schema_{i}": sql for i, sql in enumerate(history_schema_sql())},
}


def _parse(sql: str) -> exp.Expression:
    trees = sqlglot.parse(sql, read="duckdb")
    assert len(trees) == 1 and trees[0] is not None, sql
    return trees[0]


def _tables(sql: str) -> set[str]:
    return {t.name for t in _parse(sql).find_all(exp.Table)}


def _columns(sql: str) -> set[str]:
    return {c.name for c in _parse(sql).find_all(exp.Column)}


@pytest.mark.parametrize("name", sorted(BUILT))
def test_every_builder_parses_as_one_duckdb_statement(name: str) -> None:
    tree = _parse(BUILT[name])
    assert not isinstance(tree, exp.Command), f"{name}: sqlglot could not read it: {BUILT[name]}"


def test_window_exact_text() -> None:
    assert BUILT["window"] == (
        "(r.\"registered_on\" > DATE '2015-12-31' - INTERVAL 12 MONTH "
        "AND r.\"registered_on\" <= DATE '2015-12-31')"
    )
    # No date yet (rules check without as_of): a typed NULL, a year when no span is given.
    assert rule_sql.window_sql("d", "b", None, None, None) == (
        '(b."d" > CAST(NULL AS DATE) - INTERVAL 365 DAY AND b."d" <= CAST(NULL AS DATE))'
    )


def test_small_builders_exact_text() -> None:
    assert rule_sql.distinct_persons_sql(2) == (
        "SELECT count(DISTINCT person_key) FROM findings WHERE rule_id IN (?, ?)"
    )
    assert rule_sql.insert_findings_sql("SELECT 1") == (
        "INSERT INTO findings SELECT DISTINCT * FROM (SELECT 1)"
    )
    assert rule_sql.findings_table_sql() == (
        "CREATE OR REPLACE TABLE findings (rule_id VARCHAR, person_key VARCHAR, "
        "household_key VARCHAR, evidence_registry VARCHAR, evidence_key VARCHAR, "
        "match_probability DOUBLE)"
    )
    assert run_at_sql(1, True) == (
        "SELECT run_id FROM runs WHERE ruleset_hash = ? "
        "ORDER BY started_at DESC, run_id DESC LIMIT 1 OFFSET 1"
    )
    assert run_at_sql(0, False) == (
        "SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1 OFFSET 0"
    )
    assert insert_rows_sql("verifications", "_v") == 'INSERT INTO verifications SELECT * FROM "_v"'
    assert insert_run_sql() == "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    assert explain_sql.record_sql("reg_x", ["_key", "车牌"]) == (
        'SELECT "_key", "车牌" FROM "reg_x" WHERE _key = ?'
    )


def test_rule_builders_name_their_tables_and_columns() -> None:
    assert _tables(BUILT["linked_rule"]) == {"links", "reg_vehicles", "reg_poverty"}
    assert _tables(BUILT["register_rule"]) == {"reg_poverty"}
    aggregate = _parse(BUILT["aggregate_rule"])
    assert {c.alias_or_name for c in aggregate.find_all(exp.CTE)} == {"base", "flagged"}
    assert "__household" in _columns(BUILT["aggregate_rule"])
    # The rule id and registry are literals, not identifiers.
    literals = {lit.this for lit in _parse(BUILT["linked_rule"]).find_all(exp.Literal)}
    assert {"car", "vehicles", "match"} <= literals
    duplicate = _parse(BUILT["duplicate_rule"])
    assert {"id_number", "_key"} <= {c.name for c in duplicate.find_all(exp.Column)}
    # Without households the household key is a typed NULL, not a missing column.
    assert "CAST(NULL AS VARCHAR) AS household_key" in BUILT["duplicate_rule"]


def test_rule_ids_and_names_are_quoted() -> None:
    sql = rule_sql.register_rule_sql("o'brien", HOSTILE, False, "TRUE")
    tree = _parse(sql)  # one statement: the name did not end it
    assert {t.name for t in tree.find_all(exp.Table)} == {HOSTILE}
    assert tree.selects[0].this.this == "o'brien"
    on_same = rule_sql.duplicate_rule_sql(
        "r", "poverty", "reg_poverty", True, ['a"b'], "TRUE", "TRUE"
    )
    assert {c.name for c in _parse(on_same).find_all(exp.Column)} >= {'a"b'}
    assert _tables(explain_sql.people_sql(HOSTILE, True, "TRUE")) == {HOSTILE}
    assert _tables(insert_rows_sql("run_cases", HOSTILE)) == {"run_cases", HOSTILE}
    assert _tables(unknown_values_sql(HOSTILE, "status")) == {HOSTILE}
    assert _tables(id_counts_sql(HOSTILE, [("_key", True)])) == {HOSTILE}
    assert _tables(eval_pairs_sql(HOSTILE)) >= {HOSTILE, "entities", "links"}


def test_builders_refuse_what_they_cannot_build() -> None:
    with pytest.raises(ValueError, match="not a history table"):
        insert_rows_sql("links", "_frame")
    with pytest.raises(ValueError, match="aggregate unit"):
        rule_sql.aggregate_rule_sql("r", BASE, "vehicles", "r.*; DROP TABLE x", "TRUE")
    with pytest.raises(ValueError, match="at least one"):
        rule_sql.distinct_persons_sql(0)
    with pytest.raises(ValueError, match="at least one"):
        explain_sql.findings_of_sql(0)


def test_history_schema_follows_the_table_list() -> None:
    schema = [_parse(sql) for sql in history_schema_sql()]
    assert [t.find(exp.Table).name for t in schema] == list(HISTORY_TABLES)  # type: ignore[union-attr]
    runs = schema[0].find(exp.Schema)
    assert runs is not None
    assert [c.name for c in runs.expressions] == [c for c, _ in HISTORY_TABLES["runs"]]


def test_evidence_builders_show_only_the_fields_the_table_has() -> None:
    sql = BUILT["evidence_part"]
    assert "plate" in _columns(sql)
    assert "colour" not in _columns(sql)  # the rule asks for it; the table lacks it
    assert _tables(sql) == {"findings", "reg_vehicles"}
    # The cadre's line: Chinese labels, an amount with two decimals, '（空）' for no value.
    zh = evidence_zh_sql(VEHICLES, ["plate", "area"], "公安交警", own=False, has_name=True)
    assert "'号牌：' || coalesce(CAST(e.\"plate\" AS VARCHAR), '（空）')" in zh
    assert 'CAST(CAST(e."area" AS DECIMAL(20, 2)) AS VARCHAR)' in zh
    assert zh.startswith("'公安交警 ' || e._key || coalesce('（' || e.name_raw || '）', '')")
    own = evidence_zh_sql(VEHICLES, ["plate"], "公安交警", own=True, has_name=True)
    assert own == "'号牌：' || coalesce(CAST(e.\"plate\" AS VARCHAR), '（空）')"
    assert evidence_text_sql(["SELECT 1", "SELECT 2"]) == "SELECT 1 UNION ALL SELECT 2"


def test_exception_rows_take_township_only_when_the_register_has_it() -> None:
    with_town = exception_rows_sql(EMPTY_EVIDENCE_SQL, "reg_p", "_meta", True, False)
    assert "b.township AS township" in with_town
    assert "CAST(NULL AS VARCHAR) AS village" in with_town
    assert {"findings", "_meta", "reg_p"} <= _tables(with_town)


def test_render_is_the_engine_dialect() -> None:
    tree = sqlglot.parse_one("SELECT CAST(x AS VARCHAR) AS y", read="duckdb")
    assert render(tree) == "SELECT CAST(x AS TEXT) AS y"
    assert render(tree, "spark") == "SELECT CAST(x AS STRING) AS y"


# -- builders run where the text alone cannot show the point --------------------------------


@pytest.fixture
def ws(tmp_path: Path):
    with Workspace(tmp_path / "w.duckdb") as workspace:
        yield workspace


def test_unknown_values_with_a_hostile_column_name_runs(ws: Workspace) -> None:
    column = 'status"; --'
    ws.run(f'CREATE TABLE "reg_v" ("{column.replace(chr(34), chr(34) * 2)}" VARCHAR)')
    ws.run("INSERT INTO reg_v VALUES ('正常'), ('A'), ('A'), (NULL)")
    assert ws.rows(unknown_values_sql("reg_v", column), [["正常", "注销"]]) == [("A", 2)]


def test_check_binds_without_running(ws: Workspace) -> None:
    ws.run("CREATE TABLE t (x INTEGER)")
    ws.check("INSERT INTO t VALUES (1)")
    assert ws.value("SELECT count(*) FROM t") == 0
    with pytest.raises(duckdb.Error):
        ws.check("SELECT x + 'not a number' FROM t")
    with pytest.raises(duckdb.Error):
        ws.check("SELECT missing FROM t")


def test_history_builders_run_on_an_empty_workspace(ws: Workspace) -> None:
    for sql in history_schema_sql():
        ws.run(sql)
    ws.run(
        insert_run_sql(),
        [
            "r1",
            dt.datetime(2016, 1, 1),
            "m.yaml",
            dt.date(2015, 12, 31),
            "{}",
            "h",
            "0",
            None,
            "{}",
        ],
    )
    assert ws.value(run_at_sql(0, True), ["h"]) == "r1"
    assert ws.value(run_at_sql(0, True), ["other"]) is None
    assert ws.rows(verification_status_sql()) == []
    assert ws.rows(latest_outcomes_sql()) == []
