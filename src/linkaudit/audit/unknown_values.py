"""Values of the shipped rules' vocabulary fields that the vocabulary does not know.

A rule compares a field with fixed terms (`employment_status = '在职'`); a department that
writes `1` or `A` instead would make the rule silently flag no one. After loading, each mapped
vocabulary field of each registry is counted by value in one GROUP BY, and every value outside
the vocabulary (data/vocabulary.yaml) is reported, so the user adds a `values:` map.
"""

from __future__ import annotations

from linkaudit.config import Manifest
from linkaudit.engines.base import Engine
from linkaudit.privacy import mask_text
from linkaudit.store import quote_ident, table_name
from linkaudit.vocabulary import rule_vocabulary

__all__ = ["unknown_value_warnings", "unknown_values", "unknown_values_sql"]

#: Values listed per field at most (the most frequent first); the rest are counted in `…`.
MAX_LISTED = 20


def unknown_values_sql(table: str, column: str) -> str:
    """Counts per value of `column` in `table` that are not in the list bound as parameter 1."""
    col = quote_ident(column)
    return (
        f"SELECT {col} AS value, count(*) AS n FROM {quote_ident(table)} "
        f"WHERE {col} IS NOT NULL AND NOT list_contains(CAST(? AS VARCHAR[]), {col}) "
        f"GROUP BY {col} ORDER BY n DESC, value"
    )


def unknown_values(ws: Engine, manifest: Manifest) -> dict[str, dict[str, int]]:
    """{"registry.field": {value: rows}} for every mapped vocabulary field with values the
    shipped rules do not know (values shown masked, as in every output)."""
    vocabulary = rule_vocabulary()
    found: dict[str, dict[str, int]] = {}
    for reg in manifest.registries.values():
        table = table_name("reg", reg.name)
        fields = [f for f in reg.fields if f in vocabulary]
        if not fields or not ws.has_table(table):
            continue
        for field in fields:
            rows = ws.rows(unknown_values_sql(table, field), [sorted(vocabulary[field])])
            if not rows:
                continue
            listed = {mask_text(str(v)): int(n) for v, n in rows[:MAX_LISTED]}
            if len(rows) > MAX_LISTED:
                listed["…"] = sum(int(n) for _, n in rows[MAX_LISTED:])
            found[f"{reg.name}.{field}"] = listed
    return found


def unknown_value_warnings(unknown: dict[str, dict[str, int]]) -> list[str]:
    """One line per field, for the terminal."""
    lines = []
    for where, values in unknown.items():
        registry, field = where.split(".", 1)
        shown = ", ".join(f"{v!r} ({n:,} rows)" for v, n in list(values.items())[:8])
        more = f" and {len(values) - 8} more" if len(values) > 8 else ""
        known = "/".join(sorted(rule_vocabulary()[field]))
        lines.append(
            f"{where}: values the shipped rules do not know: {shown}{more} (they know {known}); "
            f"map them in registries.{registry}.values.{field}"
        )
    return lines
