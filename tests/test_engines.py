"""The same audit on DuckDB and on Spark: same links, same model, same cases.

Spark runs local[2] (Java 17 is on the machines; pyspark comes with the test extra). One
Spark audit of the committed sample takes a minute or two on 2 cores: the module shares it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("pyspark")

from linkaudit.audit.run import run_audit  # noqa: E402
from linkaudit.config import load_manifest  # noqa: E402
from linkaudit.engines.duckdb import Workspace  # noqa: E402

pytestmark = pytest.mark.spark

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "mashan"


def _audit(root: Path, engine: str) -> dict[str, pl.DataFrame]:
    shutil.copytree(SAMPLE, root)
    manifest = load_manifest(root / "linkaudit.yaml")
    manifest.engine.name = engine  # type: ignore[assignment]
    result = run_audit(manifest, baseline=None)
    tables = {}
    if engine == "duckdb":
        with Workspace(manifest.database, read_only=True) as ws:
            for name in ("links", "link_model", "link_lambda", "entities", "findings"):
                tables[name] = ws.frame(f"SELECT * FROM {name}")
    else:
        store = manifest.database.with_suffix(".spark") / "tables"
        for name in ("links", "link_model", "link_lambda", "entities", "findings"):
            tables[name] = pl.read_parquet(store / name / "*.parquet")
    tables["cases"] = pl.read_csv(root / "out" / "exceptions.csv", infer_schema=False)
    tables["summary_rules"] = pl.DataFrame(
        [
            {"rule": k, "persons": v["persons"], "households": v["households"]}
            for k, v in result.summary["rules"].items()
        ]
    )
    return tables


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    base = tmp_path_factory.mktemp("engines")
    return _audit(base / "duckdb", "duckdb"), _audit(base / "spark", "spark")


def _sorted(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.sort(keys, nulls_last=True)


def test_spark_makes_the_same_links(both: tuple[dict, dict]) -> None:
    duck, spark = both
    keys = ["registry", "record_key"]
    a, b = _sorted(duck["links"], keys), _sorted(spark["links"], keys)
    assert a.height > 1000  # the sample links thousands of records
    exact = ["registry", "record_key", "person_key", "decision", "pass", "candidates"]
    exact += [c for c in a.columns if c.startswith("level_")]
    assert_frame_equal(a.select(exact), b.select(exact), check_dtypes=False)
    weights = ["match_weight", "match_probability"]
    weights += [c for c in a.columns if c.startswith("weight_")]
    assert_frame_equal(
        a.select(weights), b.select(weights), check_dtypes=False, abs_tol=1e-9, rel_tol=0
    )


def test_spark_estimates_the_same_model(both: tuple[dict, dict]) -> None:
    duck, spark = both
    keys = ["comparison", "level"]
    a, b = _sorted(duck["link_model"], keys), _sorted(spark["link_model"], keys)
    assert_frame_equal(a.select(keys + ["label"]), b.select(keys + ["label"]), check_dtypes=False)
    assert_frame_equal(
        a.select("m", "u", "weight"), b.select("m", "u", "weight"), abs_tol=1e-9, rel_tol=0
    )
    assert_frame_equal(
        _sorted(duck["link_lambda"], ["registry"]),
        _sorted(spark["link_lambda"], ["registry"]),
        abs_tol=1e-12,
        rel_tol=1e-9,
    )


def test_spark_finds_the_same_persons_and_cases(both: tuple[dict, dict]) -> None:
    duck, spark = both
    assert_frame_equal(
        _sorted(duck["entities"], ["registry", "record_key"]),
        _sorted(spark["entities"], ["registry", "record_key"]),
        check_dtypes=False,
    )
    keys = ["rule_id", "person_key", "evidence_registry", "evidence_key"]
    findings_a = _sorted(duck["findings"], keys).drop("match_probability")
    findings_b = _sorted(spark["findings"], keys).drop("match_probability")
    assert findings_a.height > 100
    assert_frame_equal(findings_a, findings_b, check_dtypes=False)
    cases_a = duck["cases"].drop("run_id").sort("case_id")
    cases_b = spark["cases"].drop("run_id").sort("case_id")
    assert cases_a.height > 100
    assert_frame_equal(cases_a.drop("match_probability"), cases_b.drop("match_probability"))
    assert_frame_equal(
        cases_a.select(pl.col("match_probability").cast(pl.Float64)),
        cases_b.select(pl.col("match_probability").cast(pl.Float64)),
        abs_tol=1e-6,
    )
    assert_frame_equal(duck["summary_rules"], spark["summary_rules"])
