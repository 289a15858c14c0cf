"""The Spark engine: the same SQL as DuckDB's, transpiled, run by Spark SQL over Parquet.

For a province or the nation. Tables live as Parquet folders under the engine's store
(`<database>.spark/` by default, or a POSIX path every executor sees), one folder per table, registered as temporary views of the session. A table is written to a new
folder and then swapped in, so a kill leaves the previous table or the new one, never half.
What must be transactional (load log, quarantine, run history, cases) stays in the DuckDB
workspace: it is small, and Spark has no transactions.

DuckDB-only functions are registered as Arrow (pandas) UDFs over rapidfuzz under DuckDB's
names (see `engines.spark_sql`), so both engines compute the same levels.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from linkaudit.engines.base import FrameRegistry
from linkaudit.errors import LinkauditError

if TYPE_CHECKING:  # pyspark is an optional dependency
    from pyspark.sql import DataFrame, SparkSession

#: Settings that make Spark compute what DuckDB computes (and run quietly on one machine).
BASE_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    # ANSI mode (Spark 4's default) raises on overflow as DuckDB does; spark_sql rewrites
    # division so that x/0 gives DuckDB's inf/NaN instead of Spark's error.
    "spark.sql.ansi.enabled": "true",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.extraJavaOptions": "-Dlog4j.configurationFile="
    + str(Path(__file__).with_name("log4j2.properties")),
}


class SparkUnavailable(LinkauditError):
    """pyspark or Java is missing."""


class SparkQueryError(RuntimeError):
    """Spark refused SQL that DuckDB ran: a bug of ours (exit 3)."""


def _session(master: str, conf: dict[str, str]) -> SparkSession:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailable(
            "the Spark engine needs pyspark",
            hint="pip install 'linkaudit[spark]' (Java 17 or 21 must be installed)",
        ) from None
    builder = SparkSession.builder.master(master).appName("linkaudit")
    for key, value in {**BASE_CONF, **conf}.items():
        builder = builder.config(key, value)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # Java missing or a bad setting: py4j's errors vary
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparkUnavailable(
            f"Spark did not start ({first})",
            hint="check JAVA_HOME (Java 17 or 21) and the manifest's engine.master/conf",
        ) from None
    spark.sparkContext.setLogLevel("ERROR")
    from linkaudit.engines.spark_sql import register_functions

    register_functions(spark)
    return spark


class SparkEngine(FrameRegistry):
    """A Spark session and its table store (see the module docstring)."""

    name = "spark"

    def __init__(
        self, store: Path, master: str = "local[2]", conf: dict[str, str] | None = None
    ) -> None:
        self.store = Path(store)
        self.tables = self.store / "tables"
        self.temp = self.store / "temp" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tables.mkdir(parents=True, exist_ok=True)
        self.spark = _session(master, conf or {})
        self._temp_names: set[str] = set()
        self._types: dict[str, str] | None = None
        self._table_types: dict[str, dict[str, str]] = {}
        self._clear_stale_temp()
        # The session outlives an engine (a JVM takes seconds to start): another store's
        # views must not answer for this one's tables.
        for table in self.spark.catalog.listTables():
            if table.isTemporary:
                self.spark.catalog.dropTempView(table.name)
        for folder in sorted(self.tables.iterdir()):
            if folder.name.startswith("."):
                # Half a swap of a run that was killed: a table written but not swapped in,
                # or the old one set aside. The table itself is rebuilt by the next run (its
                # state in the workspace no longer vouches for it).
                shutil.rmtree(folder, ignore_errors=True)
            elif folder.is_dir():
                self._view(folder.name, folder)

    # -- SQL -------------------------------------------------------------------------------
    def _df(self, sql: str, params: list[Any] | None = None) -> DataFrame:
        from pyspark.errors import PySparkException

        from linkaudit.engines.spark_sql import to_spark

        text = to_spark(sql, self._known_types())
        try:
            return self.spark.sql(text, args=list(params)) if params else self.spark.sql(text)
        except PySparkException as exc:
            # Spark quotes the whole statement (and its values) in its message: keep the
            # error's first line; the statement is ours to debug (--debug shows it).
            first = str(exc).strip().splitlines()[0][:300]
            raise SparkQueryError(f"Spark refused a statement: {first}") from exc

    def run(self, sql: str, params: list[Any] | None = None) -> None:
        from linkaudit.engines.spark_sql import split_create

        created = split_create(sql)
        if created is not None:
            name, select_sql, temp = created
            self.create(name, select_sql, temp=temp)
            return
        self._df(sql, params).collect()

    def check(self, sql: str) -> None:
        """Spark analyses a statement when it is parsed into a DataFrame: names and types are
        bound, nothing runs."""
        self._df(sql)

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._df(sql, params).collect()]

    def row(self, sql: str, params: list[Any] | None = None) -> tuple[Any, ...] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def value(self, sql: str, params: list[Any] | None = None) -> Any:
        found = self.row(sql, params)
        return None if found is None else found[0]

    def frame(self, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
        return pl.from_arrow(self._df(sql, params).toArrow())  # type: ignore[return-value]

    # -- tables ----------------------------------------------------------------------------
    def column_types(self, name: str) -> dict[str, str]:
        """Column -> type, in DuckDB's names (BIGINT, VARCHAR, DECIMAL(18,2), ...)."""
        return {
            f.name: _duckdb_type(f.dataType.simpleString())
            for f in self.spark.table(name).schema.fields
        }

    def _known_types(self) -> dict[str, str]:
        """Column types over every table, for the type-dependent rewrites of `to_spark`
        (integer casts and round() of doubles): a name with two types is left out. Each
        table's types are read once, when it is made (a catalog walk per statement cost
        a second each)."""
        if self._types is None:
            seen: dict[str, set[str]] = {}
            for types in self._table_types.values():
                for column, kind in types.items():
                    seen.setdefault(column, set()).add(kind)
            self._types = {c: next(iter(k)) for c, k in seen.items() if len(k) == 1}
        return self._types

    def _typed(self, name: str, frame: DataFrame) -> None:
        self._table_types[name] = {
            f.name: _duckdb_type(f.dataType.simpleString()) for f in frame.schema.fields
        }
        self._types = None

    def _view(self, name: str, folder: Path) -> None:
        frame = self.spark.read.parquet(str(folder))
        frame.createOrReplaceTempView(name)
        self._typed(name, frame)

    def _publish(self, name: str, written: Path, temp: bool) -> None:
        """Swap a fully written folder in as table `name` (rename is atomic on one disk)."""
        base = self.temp if temp else self.tables
        target = base / name
        old = base / f".{name}.old-{uuid.uuid4().hex[:8]}"
        if target.exists():
            target.rename(old)
        written.rename(target)
        self._view(name, target)
        if temp:
            self._temp_names.add(name)
        shutil.rmtree(old, ignore_errors=True)

    def _new_folder(self, name: str, temp: bool) -> Path:
        base = self.temp if temp else self.tables
        base.mkdir(parents=True, exist_ok=True)
        return base / f".{name}.new-{uuid.uuid4().hex[:8]}"

    def create(self, name: str, select_sql: str, temp: bool = False) -> None:
        """Table `name` replaced by the rows of a SELECT, written as Parquet and swapped in."""
        folder = self._new_folder(name, temp)
        self._df(select_sql).write.parquet(str(folder))
        self._publish(name, folder, temp)

    def put(self, name: str, frame: pl.DataFrame) -> None:
        """Table `name` replaced by a polars frame (written by polars on the driver)."""
        folder = self._new_folder(name, temp=False)
        folder.mkdir()
        frame.write_parquet(folder / "part-00000.parquet")
        self._publish(name, folder, temp=False)

    def drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        self._table_types.pop(name, None)
        self._types = None
        for base in (self.tables, self.temp):
            shutil.rmtree(base / name, ignore_errors=True)
        self._temp_names.discard(name)

    def has_table(self, name: str) -> bool:
        return bool(self.spark.catalog.tableExists(name))

    def columns(self, name: str) -> list[str]:
        return list(self.spark.table(name).columns)

    def register(self, name: str, frame: pl.DataFrame) -> None:
        spark_frame = self.spark.createDataFrame(frame.to_arrow())
        spark_frame.createOrReplaceTempView(name)
        self._typed(name, spark_frame)

    def unregister(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        self._table_types.pop(name, None)
        self._types = None

    def forbid_file_access(self) -> None:
        """Spark SQL reads files only through `format.`path`` table names (runSQLOnFiles):
        off for the session. Our own tables are read by the DataFrame reader, unaffected."""
        self.spark.conf.set("spark.sql.runSQLOnFiles", "false")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Each table is swapped in whole; the run's commit point is the DuckDB workspace."""
        yield

    # -- life ------------------------------------------------------------------------------
    def _clear_stale_temp(self) -> None:
        """Temp folders of runs that died (their pid is gone)."""
        root = self.store / "temp"
        if not root.is_dir():
            return
        for folder in root.iterdir():
            pid = folder.name.split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(folder, ignore_errors=True)

    def close(self) -> None:
        """Drop this engine's temp tables and their folders (the session stays for reuse:
        a JVM takes seconds to start)."""
        for name in list(self._temp_names):
            with contextlib.suppress(Exception):
                self.spark.catalog.dropTempView(name)
        shutil.rmtree(self.temp, ignore_errors=True)
        self._temp_names.clear()

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SPARK_TO_DUCKDB = {
    "string": "VARCHAR",
    "bigint": "BIGINT",
    "int": "INTEGER",
    "smallint": "SMALLINT",
    "tinyint": "TINYINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "timestamp_ntz": "TIMESTAMP",
    "binary": "BLOB",
}


def _duckdb_type(spark_type: str) -> str:
    if spark_type.startswith("decimal"):
        return spark_type.upper().replace(" ", "")
    return _SPARK_TO_DUCKDB.get(spark_type, spark_type.upper())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
