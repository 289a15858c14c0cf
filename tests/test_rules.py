"""Rule conditions: table tests of what compiles to what, and a property test of the parser."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linkaudit.audit.compile import ConditionError, Scope, compile_condition, parse_checked

SCOPE = Scope(
    record_columns=frozenset({"vehicle_type", "vehicle_status", "registered_on", "self_paid"}),
    person_columns=frozenset({"poverty_status", "birth_date"}),
    record_alias="r",
    person_alias="b",
    record_registry="vehicles",
    person_registry="poverty",
)
AS_OF = dt.date(2015, 12, 31)
PARAMS = {
    "bad": ["注销", "报废"],
    "line": {2014: 2736, 2015: 2855},
    "seat": "白山镇",
    "limit": 5000,
}

CASES = [
    ("vehicle_status NOT IN $bad", """NOT "r"."vehicle_status" IN ('注销', '报废')"""),
    (
        "self_paid < $line[year(as_of)]",
        """"r"."self_paid" < CASE YEAR(CAST('2015-12-31' AS DATE)) WHEN 2014 THEN 2736 WHEN 2015 THEN 2855 END""",
    ),
    ("person.poverty_status = '已脱贫'", """"b"."poverty_status" = '已脱贫\'"""),
    ("contains(vehicle_type, $seat)", """CONTAINS("r"."vehicle_type", '白山镇')"""),
    ("registered_on <= as_of", """"r"."registered_on" <= CAST('2015-12-31' AS DATE)"""),
]


@pytest.mark.parametrize(("text", "sql"), CASES)
def test_compiles(text: str, sql: str) -> None:
    assert compile_condition(text, SCOPE, PARAMS, AS_OF) == sql


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("salary > 1", "unknown field `salary`"),
        ("person.salary > 1", "unknown field `person.salary`"),
        ("other.x = 1", "unknown qualifier `other.`"),
        ("self_paid > $nope", "parameter $nope is not defined"),
        ("vehicle_type IN $seat", "must be a list"),
        ("sum(self_paid) > 1", "aggregates are only allowed in aggregate.having"),
        ("(SELECT 1) = 1", "subqueries are not allowed"),
        ("read_parquet('x') IS NULL", "not allowed"),
        ("1 = 1; DROP TABLE links", "not several statements"),
        ("glob('*') IS NULL", "not allowed"),
        ("vehicle_type =", "cannot parse condition"),
    ],
)
def test_rejected_with_the_offending_part(text: str, message: str) -> None:
    with pytest.raises(ConditionError, match=message.replace("$", r"\$").replace("(", r"\(")):
        compile_condition(text, SCOPE, PARAMS, AS_OF)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parser_never_fails_with_anything_but_a_condition_error(text: str) -> None:
    try:
        parse_checked(text)
    except ConditionError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "vehicle_type",
                "self_paid",
                "1",
                "'x'",
                "=",
                "<",
                "AND",
                "OR",
                "NOT",
                "(",
                ")",
                "$limit",
                "IN",
                "$bad",
                "person.poverty_status",
                "as_of",
                "+",
                "SELECT",
                ";",
                "read_csv('f')",
            ]
        ),
        max_size=12,
    ).map(" ".join)
)
def test_compile_never_fails_with_anything_but_a_condition_error(text: str) -> None:
    try:
        sql = compile_condition(text, SCOPE, PARAMS, AS_OF)
    except ConditionError:
        return
    assert "read_csv" not in sql.lower() and "select" not in sql.lower()
