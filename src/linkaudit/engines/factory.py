"""Which engine runs a manifest's heavy stages (its `engine:` section, or `--engine`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from linkaudit.config import Manifest

if TYPE_CHECKING:
    from linkaudit.engines.base import Engine
    from linkaudit.engines.duckdb import Workspace


def spark_store(manifest: Manifest) -> Path:
    """Where the Spark engine keeps its Parquet tables: `engine.store`, else beside the
    workspace database (`linkaudit.duckdb` → `linkaudit.spark/`)."""
    return manifest.engine.store or manifest.database.with_suffix(".spark")


def data_engine(manifest: Manifest, ws: Workspace) -> Engine:
    """The engine of the data tables (registries, links, findings): the workspace itself
    for DuckDB, else a Spark engine over its store. The caller closes a Spark engine."""
    if manifest.engine.name == "duckdb":
        return ws
    from linkaudit.engines.spark import SparkEngine

    return SparkEngine(
        spark_store(manifest), master=manifest.engine.master, conf=manifest.engine.conf
    )


def close_data_engine(data: Engine, ws: Workspace) -> None:
    if data is not ws:
        data.close()
