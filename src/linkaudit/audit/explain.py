"""`explain`: why a registrant or household was flagged — every rule it trips, each evidence
record, and the link's per-field weights."""

from __future__ import annotations

from typing import Any

from linkaudit.config import Manifest
from linkaudit.errors import LinkauditError, WorkspaceError
from linkaudit.normalize import mask_id
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
    where = "_key = ?" + (" OR household = ?" if has_household else "")
    params = [key, key] if has_household else [key]
    people = ws.fetchall(
        f"SELECT _key, {'household' if has_household else 'NULL'}, name_raw, id_number "
        f"FROM {quote_ident(bt)} WHERE {where} ORDER BY _key",
        params,
    )
    if not people:
        raise LinkauditError(
            f"no registrant or household with key {key!r} in registry {ben.name!r}",
            hint="use a person key or household key as they appear in exceptions.csv",
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
    return {
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
