"""`load`: read every registry of a manifest into the workspace, normalised and checked."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from linkaudit import state_sql
from linkaudit.config import Manifest, RegistryConfig
from linkaudit.engines.duckdb import Workspace
from linkaudit.engines.factory import close_data_engine, data_engine
from linkaudit.faults import fault_point
from linkaudit.ingest.canonical import KEY, Canonical, canonicalize
from linkaudit.ingest.readers import ROW, ReadResult, file_checksum, read_registry
from linkaudit.store import quote_ident, table_name

if TYPE_CHECKING:
    from linkaudit.engines.base import Engine
from linkaudit.vocabulary import ID_STATUSES

#: Called as progress(registry_name, step, done_steps, total_steps).
Progress = Callable[[str, str, int, int], None]


@dataclass
class RegistryLoad:
    registry: str
    department: str
    file: str
    format: str
    encoding: str | None
    checksum: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    id_status: dict[str, int]
    seconds: float
    skipped: bool = False
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "registry": self.registry,
            "department": self.department,
            "file": self.file,
            "format": self.format,
            "encoding": self.encoding,
            "checksum": self.checksum,
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "id_status": self.id_status,
            "seconds": round(self.seconds, 3),
            "skipped": self.skipped,
            "notes": self.notes,
        }


@dataclass
class LoadReport:
    database: str
    registries: list[RegistryLoad] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"database": self.database, "registries": [r.as_dict() for r in self.registries]}


def id_status_counts_sql(table: str) -> str:
    return f"SELECT id_status, count(*) FROM {quote_ident(table)} GROUP BY id_status"


def fields_hash(reg: RegistryConfig, as_of: dt.date | None = None) -> str:
    """Hash of everything in a registry's config that changes what gets loaded (the audit
    date too: it decides which ID birth dates are in the future)."""
    spec = reg.model_dump(mode="json", exclude={"department"})
    if as_of is not None:
        spec["as_of"] = as_of.isoformat()
    return hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class Prepared:
    """A registry read and normalised, not yet stored (see `prepare_registry`)."""

    reg: RegistryConfig
    result: ReadResult
    raw: pl.DataFrame
    canonical: Canonical
    started: float


def prepare_registry(reg: RegistryConfig, as_of: dt.date | None = None) -> Prepared:
    """Read and normalise one registry; touches no database, so it can run beside the
    writes of the registry before it (polars and DuckDB both release the GIL)."""
    started = time.perf_counter()
    result = read_registry(reg)
    raw = result.frame.select([ROW, *(c for c in result.frame.columns if c != ROW)]).with_columns(
        pl.col(ROW).cast(pl.Int64)
    )
    canonical = canonicalize(result.frame, reg, as_of=as_of, numeric_cells=result.numeric_cells)
    return Prepared(reg, result, raw, canonical, started)


def store_registry(ws: Workspace, prepared: Prepared, as_of: dt.date | None = None) -> RegistryLoad:
    """Replace a registry's raw and canonical tables, quarantine and load log in one
    transaction: a failed or killed load leaves the previous tables in place."""
    reg, result, canonical = prepared.reg, prepared.result, prepared.canonical
    frame = canonical.frame
    if reg.role == "beneficiaries" and not reg.key:
        frame = surrogate_keys(ws, frame)
    with ws.transaction():
        ws.put(table_name("raw", reg.name), prepared.raw)
        ws.put(table_name("reg", reg.name), frame)
        quarantined, id_status = _record_load(ws, reg, as_of, result, canonical, frame)
    return _loaded(reg, result, frame, quarantined, id_status, prepared.started)


def load_registry(
    ws: Workspace,
    reg: RegistryConfig,
    as_of: dt.date | None = None,
    data: Engine | None = None,
) -> RegistryLoad:
    """Read, normalise and store one registry, replacing what was there before.

    ``as_of``: the audit's reference date (the manifest's `as_of`); ID numbers whose birth date
    is after it are `future_birth`. Today when not given. ``data``: the engine that keeps the
    registry tables when it is not the workspace (Spark: staged as Parquet)."""
    if data is not None and data is not ws:
        return _load_elsewhere(ws, data, reg, as_of)
    return store_registry(ws, prepare_registry(reg, as_of), as_of)


def _loaded(
    reg: RegistryConfig,
    result: ReadResult,
    frame: pl.DataFrame,
    quarantined: int,
    id_status: dict[str, int],
    started: float,
) -> RegistryLoad:
    """The report of a registry just loaded."""
    return RegistryLoad(
        registry=reg.name,
        department=reg.department,
        file=str(reg.path),
        format=reg.resolved_format,
        encoding=result.encoding,
        checksum=result.checksum,
        rows_read=result.frame.height,
        rows_loaded=frame.height,
        rows_quarantined=quarantined,
        id_status=id_status,
        seconds=time.perf_counter() - started,
        notes=load_notes(reg),
    )


def _record_load(
    ws: Workspace,
    reg: RegistryConfig,
    as_of: dt.date | None,
    result: ReadResult,
    canonical: Canonical,
    frame: pl.DataFrame,
) -> tuple[int, dict[str, int]]:
    """The quarantine and load-log rows of a load (inside the caller's transaction)."""
    ws.replace_quarantine(reg.name, canonical.quarantine)
    counts = frame.get_column("id_status").value_counts()
    id_status = {s: 0 for s in ID_STATUSES}
    for status, n in counts.iter_rows():
        id_status[str(status)] = int(n)
    quarantined = canonical.quarantine.get_column("row").n_unique()
    ws.run(state_sql.load_log_delete_sql(), [reg.name])
    ws.run(
        state_sql.load_log_insert_sql(),
        [
            reg.name,
            str(reg.path),
            reg.resolved_format,
            result.encoding,
            result.checksum,
            fields_hash(reg, as_of),
            result.frame.height,
            frame.height,
            quarantined,
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
        ],
    )
    return quarantined, id_status


def _load_elsewhere(
    ws: Workspace, data: Engine, reg: RegistryConfig, as_of: dt.date | None
) -> RegistryLoad:
    """load_registry for an engine other than the workspace: the tables are staged to that
    engine (each swapped in whole), then the load log and quarantine are recorded in the
    workspace in one transaction; a kill in between leaves a log that no longer vouches for
    the tables, so the next run reloads."""
    prepared = prepare_registry(reg, as_of)
    result, canonical = prepared.result, prepared.canonical
    frame = canonical.frame
    if reg.role == "beneficiaries" and not reg.key:
        frame = surrogate_keys(ws, frame)
    with ws.transaction():
        ws.run(state_sql.load_log_delete_sql(), [reg.name])
    data.put(table_name("raw", reg.name), prepared.raw)
    data.put(table_name("reg", reg.name), frame)
    with ws.transaction():
        quarantined, id_status = _record_load(ws, reg, as_of, result, canonical, frame)
    return _loaded(reg, result, frame, quarantined, id_status, prepared.started)


def load_notes(reg: RegistryConfig) -> list[str]:
    """What a user should know about how a registry was read."""
    if reg.role == "beneficiaries" and not reg.key:
        return [
            f"registries.{reg.name} has no key column: each person is keyed by a keyed hash of "
            "the ID number (without a usable one: household, name and birth date), the same "
            f"in every run of this workspace; set registries.{reg.name}.key to use the "
            "register's own key"
        ]
    return []


def surrogate_keys_sql(household: str) -> str:
    """Keyed hashes of each row's identity (parameter: the workspace secret), numbered
    within an identity in file order (see `surrogate_keys`)."""
    return f"""
            WITH ident AS (
                SELECT "{ROW}" AS r, CASE WHEN id_status IN ('valid', 'upgraded_15')
                    THEN 'id|' || id_number
                    ELSE 'nh|' || coalesce({household}, '') || '|' || coalesce(name, '') || '|'
                         || coalesce(CAST(birth_date AS VARCHAR), '') END AS ident
                FROM _linkaudit_keys),
            hashed AS (
                SELECT r, 'P' || upper(substr(sha256(? || '|' || ident), 1, 16)) AS k,
                       row_number() OVER (PARTITION BY ident ORDER BY r) AS n
                FROM ident)
            SELECT r, CASE WHEN n = 1 THEN k ELSE k || '-' || n END AS k FROM hashed
            """


def surrogate_keys(ws: Workspace, frame: pl.DataFrame) -> pl.DataFrame:
    """Stable person keys for a register without a key column: `P` + 16 hex characters of a
    SHA-256 keyed with the workspace's secret, over the ID number when it is usable, else over
    household, name and birth date; a second row with the same identity gets `-2`, and so on,
    in file order. Not reversible into the ID without the secret."""
    ws.register(
        "_linkaudit_keys",
        frame.select(
            ROW,
            "id_number",
            "id_status",
            *(c for c in ("household", "name", "birth_date") if c in frame.columns),
        ),
    )
    household = "household" if "household" in frame.columns else "NULL"
    try:
        keys = ws.frame(
            surrogate_keys_sql(household),
            [ws.secret()],
        )
    finally:
        ws.unregister("_linkaudit_keys")
    joined = frame.join(keys, left_on=ROW, right_on="r", how="left")
    return joined.with_columns(pl.col("k").alias(KEY)).drop("k").select(frame.columns)


def unchanged_load(
    ws: Workspace,
    reg: RegistryConfig,
    as_of: dt.date | None = None,
    data: Engine | None = None,
) -> RegistryLoad | None:
    """The previous load of this registry, if its file and settings are unchanged."""
    data = data or ws
    if not reg.path.is_file() or not data.has_table(table_name("reg", reg.name)):
        return None
    row = ws.row(state_sql.load_log_entry_sql(), [reg.name])
    if row is None or row[4] != fields_hash(reg, as_of):
        return None
    started = time.perf_counter()
    if file_checksum(reg.path) != row[3]:
        return None
    counts = data.rows(id_status_counts_sql(table_name("reg", reg.name)))
    id_status = {s: 0 for s in ID_STATUSES} | {str(k): int(n) for k, n in counts}
    return RegistryLoad(
        registry=reg.name,
        department=reg.department,
        file=str(reg.path),
        format=str(row[1]),
        encoding=row[2],
        checksum=str(row[3]),
        rows_read=int(row[5]),
        rows_loaded=int(row[6]),
        rows_quarantined=int(row[7]),
        id_status=id_status,
        seconds=time.perf_counter() - started,
        skipped=True,
        notes=load_notes(reg),
    )


def load_workspace(
    manifest: Manifest,
    progress: Progress | None = None,
    ws: Workspace | None = None,
    force: bool = True,
    data: Engine | None = None,
) -> LoadReport:
    """Load every registry of the manifest into its workspace database.

    With force=False a registry whose file (by checksum) and settings are unchanged since its
    last load is not read again.
    """
    report = LoadReport(database=str(manifest.database))
    own = ws is None
    ws = ws or Workspace(manifest.database)
    if own and data is None:
        data = data_engine(manifest, ws)
    try:
        regs = list(manifest.registries.values())
        if data is None or data is ws:
            _load_pipelined(ws, regs, manifest.as_of, force, report, progress)
        else:
            for i, reg in enumerate(regs):
                if progress:
                    progress(reg.name, "loading", i, len(regs))
                previous = None if force else unchanged_load(ws, reg, manifest.as_of, data)
                report.registries.append(previous or load_registry(ws, reg, manifest.as_of, data))
                fault_point("load_half")
        if progress:
            progress("", "done", len(regs), len(regs))
    finally:
        if own:
            if data is not None:
                close_data_engine(data, ws)
            ws.close()
    return report


def _load_pipelined(
    ws: Workspace,
    regs: list[RegistryConfig],
    as_of: dt.date | None,
    force: bool,
    report: LoadReport,
    progress: Progress | None,
) -> None:
    """Load the registries in order, reading and normalising the next one (a worker
    thread) while the workspace stores this one. Each registry is still stored in its own
    transaction, in manifest order; an error in reading one surfaces after the registries
    before it are stored, as it would one at a time."""
    todo = [None if force else unchanged_load(ws, reg, as_of) for reg in regs]
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = [i for i, previous in enumerate(todo) if previous is None]
        futures = {}
        for i, reg in enumerate(regs):
            if progress:
                progress(reg.name, "loading", i, len(regs))
            previous = todo[i]
            if previous is None:
                if i not in futures:
                    futures[i] = pool.submit(prepare_registry, reg, as_of)
                prepared = futures.pop(i).result()
                later = [j for j in pending if j > i]
                if later and _overlap(reg, regs[later[0]]):
                    futures[later[0]] = pool.submit(prepare_registry, regs[later[0]], as_of)
                try:
                    previous = store_registry(ws, prepared, as_of)
                except BaseException:
                    for future in futures.values():
                        future.cancel()
                    raise
                del prepared
            report.registries.append(previous)
            fault_point("load_half")


#: Two registries are read side by side only while their files together stay below this: a
#: registry in memory takes several times its file's size (raw, canonical and the copy being
#: stored), and at scale 50 overlapping a 557 MB register with the next file peaked at 6.8 GB.
PIPELINE_BYTES = 256 * 2**20


def _overlap(current: RegistryConfig, following: RegistryConfig) -> bool:
    try:
        size = current.path.stat().st_size + following.path.stat().st_size
    except OSError:
        return False  # the reader will say what is wrong with the file, in its turn
    return size <= PIPELINE_BYTES
