"""SQL of `explain`: who a key names, their findings, the evidence records and the link's
per-field weights. Pure builders returning DuckDB-dialect text (`?` marks the parameters);
`audit.explain` runs them through the engine.
"""

from __future__ import annotations

from linkaudit.privacy import mask_sql
from linkaudit.store import quote_ident

__all__ = [
    "case_unit_sql",
    "findings_of_sql",
    "link_weights_sql",
    "masked_key_sql",
    "people_sql",
    "people_with_households_sql",
    "record_sql",
]


def _household(has_household: bool) -> str:
    return "household" if has_household else "NULL"


def people_sql(beneficiaries: str, has_household: bool, where: str) -> str:
    """(key, household, name, ID number) of the registrants meeting `where`, by key."""
    return (
        f"SELECT _key, {_household(has_household)}, name_raw, id_number "
        f"FROM {quote_ident(beneficiaries)} WHERE {where} ORDER BY _key"
    )


def people_with_households_sql(beneficiaries: str, has_household: bool, where: str) -> str:
    """people_sql of the registrants meeting `where` and everyone in their households (bind
    the parameters of `where` twice when there are households)."""
    if not has_household:
        return people_sql(beneficiaries, False, where)
    bt = quote_ident(beneficiaries)
    return people_sql(
        beneficiaries,
        True,
        f"household IN (SELECT household FROM {bt} WHERE {where}) "
        f"OR _key IN (SELECT _key FROM {bt} WHERE {where})",
    )


def masked_key_sql(beneficiaries: str, has_household: bool) -> str:
    """(key, household) of the registrants whose key, or household key, masks to parameter 1
    (and 2, with households)."""
    where = f"{mask_sql('_key')} = ?"
    if has_household:
        where += f" OR {mask_sql('household')} = ?"
    return (
        f"SELECT _key, {_household(has_household)} FROM {quote_ident(beneficiaries)} WHERE {where}"
    )


def case_unit_sql() -> str:
    """The flagged unit of the case id bound as parameter 1, from the latest run having it."""
    return (
        "SELECT c.unit_key FROM run_cases c JOIN runs r ON r.run_id = c.run_id "
        "WHERE c.case_id = ? ORDER BY r.started_at DESC LIMIT 1"
    )


def findings_of_sql(persons: int) -> str:
    """The findings of `persons` registrants (their keys bound as parameters)."""
    if persons < 1:
        raise ValueError("findings_of_sql needs at least one person")
    marks = ", ".join("?" for _ in range(persons))
    return (
        "SELECT rule_id, person_key, evidence_registry, evidence_key, match_probability "
        f"FROM findings WHERE person_key IN ({marks}) ORDER BY rule_id, person_key, evidence_key"
    )


def record_sql(table: str, columns: list[str]) -> str:
    """The `columns` of the record of `table` whose key is parameter 1."""
    cols = ", ".join(quote_ident(c) for c in columns)
    return f"SELECT {cols} FROM {quote_ident(table)} WHERE _key = ?"


def link_weights_sql(level_columns: list[str]) -> str:
    """The link of a record (registry, record key as parameters 1, 2): weight, decision,
    blocking pass, prior weight, then each comparison's level and, after all levels, each
    comparison's weight (in the order of `level_columns`)."""
    weights = [c.replace("level_", "weight_", 1) for c in level_columns]
    cols = ", ".join(quote_ident(c) for c in level_columns + weights)
    return (
        f"SELECT match_weight, decision, pass, weight_prior{', ' + cols if cols else ''} "
        "FROM links WHERE registry = ? AND record_key = ?"
    )
