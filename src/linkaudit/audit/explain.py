"""`explain`: why a registrant or household was flagged — every rule it trips, each evidence
record, and the link's per-field weights.

The answer is masked like every output (ID numbers, and keys that are ID numbers) unless
`unmask`; so that a key copied from the masked spreadsheet still works, the key may also be a
case id (疑点编号) or a masked key that names one registrant or household.
"""

from __future__ import annotations

from typing import Any

from linkaudit.config import Manifest
from linkaudit.errors import LinkauditError, WorkspaceError
from linkaudit.normalize import mask_id
from linkaudit.privacy import mask_sql, mask_value
from linkaudit.store import Workspace, quote_ident, table_name


def explain(ws: Workspace, manifest: Manifest, key: str, unmask: bool = False) -> dict[str, Any]:
    ben = manifest.beneficiaries
    bt = table_name("reg", ben.name)
    if not ws.has_table("findings"):
        raise WorkspaceError(
            f"{manifest.database}: no audit results yet",
            hint="run `linkaudit audit MANIFEST` first",
        )
    has_household = "household" in ws.columns(bt)
    people = _people(ws, bt, has_household, key)
    if not people:
        unit = _case_unit(ws, key)
        if unit is not None:
            people = _people(ws, bt, has_household, unit)
    if not people and "*" in key:
        people = _people_by_masked_key(ws, bt, has_household, key, ben.name)
    if not people:
        raise LinkauditError(
            f"no registrant or household with key {key!r} in registry {ben.name!r}",
            hint="use a person key, household key or case id (疑点编号) from exceptions.csv",
        )
    keys = [p[0] for p in people]
    marks = ", ".join("?" for _ in keys)
    findings = ws.fetchall(
        f"SELECT rule_id, person_key, evidence_registry, evidence_key, match_probability "
        f"FROM findings WHERE person_key IN ({marks}) ORDER BY rule_id, person_key, evidence_key",
        keys,
    )
    link_cols = [c for c in ws.columns("links")]
    level_cols = [c for c in link_cols if c.startswith("level_")]
    out_findings = []
    for rule_id, person_key, registry, record_key, p in findings:
        item: dict[str, Any] = {
            "rule_id": rule_id,
            "person_key": person_key,
            "registry": registry,
            "record_key": record_key,
            "match_probability": p,
        }
        if registry and registry != ben.name and record_key:
            reg = manifest.registries[registry]
            item["department"] = reg.department
            rt = table_name("reg", registry)
            cols = [c for c in ws.columns(rt) if not c.startswith("id_") and c not in ("_row",)]
            row = ws.fetchone(
                f"SELECT {', '.join(quote_ident(c) for c in cols)} FROM {quote_ident(rt)} "
                f"WHERE _key = ?",
                [record_key],
            )
            item["record"] = {
                c: (None if v is None else str(v)) for c, v in zip(cols, row or [], strict=False)
            }
            link = ws.fetchone(
                f"SELECT match_weight, decision, pass, weight_prior, "
                f"{', '.join(level_cols + [c.replace('level_', 'weight_', 1) for c in level_cols])} "
                f"FROM links WHERE registry = ? AND record_key = ?",
                [registry, record_key],
            )
            if link:
                n = len(level_cols)
                item["link"] = {
                    "match_weight": round(link[0], 3),
                    "decision": link[1],
                    "found_by": link[2],
                    "prior_weight": round(link[3], 3),
                    "comparisons": [
                        {
                            "comparison": level_cols[i][len("level_") :],
                            "level": link[4 + i],
                            "weight": round(link[4 + n + i], 3),
                        }
                        for i in range(n)
                    ],
                }
        out_findings.append(item)
    answer = {
        "key": key,
        "persons": [
            {
                "person_key": k,
                "household": h,
                "name": n,
                "id_number": idn if unmask else mask_id(idn),
            }
            for k, h, n, idn in people
        ],
        "findings": out_findings,
    }
    return answer if unmask else mask_value(answer)


def _people(ws: Workspace, bt: str, has_household: bool, key: str) -> list[tuple[Any, ...]]:
    where = "_key = ?" + (" OR household = ?" if has_household else "")
    return ws.fetchall(
        f"SELECT _key, {'household' if has_household else 'NULL'}, name_raw, id_number "
        f"FROM {quote_ident(bt)} WHERE {where} ORDER BY _key",
        [key, key] if has_household else [key],
    )


def _case_unit(ws: Workspace, case_id: str) -> str | None:
    """The flagged unit (person or household key) of a case id, from the latest run having it."""
    if not (ws.has_table("run_cases") and ws.has_table("runs")):
        return None
    row = ws.fetchone(
        "SELECT c.unit_key FROM run_cases c JOIN runs r USING (run_id) WHERE c.case_id = ? "
        "ORDER BY r.started_at DESC LIMIT 1",
        [case_id],
    )
    return None if row is None else str(row[0])


def _people_by_masked_key(
    ws: Workspace, bt: str, has_household: bool, key: str, registry: str
) -> list[tuple[Any, ...]]:
    """The registrants whose key, or household, masks to `key` — if they are one unit."""
    where = f"{mask_sql('_key')} = ?"
    params = [key]
    if has_household:
        where += f" OR {mask_sql('household')} = ?"
        params.append(key)
    rows = ws.fetchall(
        f"SELECT _key, {'household' if has_household else 'NULL'} FROM {quote_ident(bt)} "
        f"WHERE {where}",
        params,
    )
    units = {k for k, h in rows if mask_value(k) == key} | {
        h for k, h in rows if h is not None and mask_value(h) == key
    }
    if len(units) > 1:
        raise LinkauditError(
            f"the masked key {key!r} fits {len(units)} registrants or households in registry "
            f"{registry!r}",
            hint="use the case id (疑点编号) from exceptions.csv, or the full key",
        )
    return _people(ws, bt, has_household, units.pop()) if units else []
