"""`load`: read every registry of a manifest into the workspace, normalised and checked."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from linkaudit.config import Manifest, RegistryConfig
from linkaudit.ingest.canonical import ID_STATUSES, canonicalize
from linkaudit.ingest.readers import ROW, read_registry
from linkaudit.store import Workspace, table_name

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
        }


@dataclass
class LoadReport:
    database: str
    registries: list[RegistryLoad] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"database": self.database, "registries": [r.as_dict() for r in self.registries]}


def fields_hash(reg: RegistryConfig) -> str:
    """Hash of everything in a registry's config that changes what gets loaded."""
    spec = reg.model_dump(mode="json", exclude={"department"})
    return hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def load_registry(ws: Workspace, reg: RegistryConfig) -> RegistryLoad:
    """Read, normalise and store one registry, replacing what was there before."""
    started = time.perf_counter()
    result = read_registry(reg)
    raw = result.frame.select([ROW, *(c for c in result.frame.columns if c != ROW)]).with_columns(
        pl.col(ROW).cast(pl.Int64)
    )
    # Storing the raw columns and normalising are independent: overlap them (DuckDB and
    # polars both release the GIL). The raw table goes to a staging name and is swapped in
    # with the canonical one, so a failed load leaves the previous tables in place.
    staging = table_name("raw", reg.name) + "__staging"
    with ThreadPoolExecutor(max_workers=1) as pool:
        raw_written = pool.submit(ws.write_table_on_cursor, staging, raw)
        try:
            canonical = canonicalize(result.frame, reg)
        finally:
            raw_written.result()
    frame = canonical.frame
    ws.execute("BEGIN TRANSACTION")
    try:
        ws.execute(f"DROP TABLE IF EXISTS {table_name('raw', reg.name)}")
        ws.execute(f"ALTER TABLE {staging} RENAME TO {table_name('raw', reg.name)}")
        ws.write_table(table_name("reg", reg.name), frame)
        ws.replace_quarantine(reg.name, canonical.quarantine)
        counts = frame.get_column("id_status").value_counts()
        id_status = {s: 0 for s in ID_STATUSES}
        for status, n in counts.iter_rows():
            id_status[str(status)] = int(n)
        quarantined = canonical.quarantine.get_column("row").n_unique()
        ws.execute("DELETE FROM load_log WHERE registry = ?", [reg.name])
        ws.execute(
            "INSERT INTO load_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                reg.name,
                str(reg.path),
                reg.resolved_format,
                result.encoding,
                result.checksum,
                fields_hash(reg),
                result.frame.height,
                frame.height,
                quarantined,
                dt.datetime.now(dt.UTC).replace(tzinfo=None),
            ],
        )
        ws.execute("COMMIT")
    except BaseException:
        ws.execute("ROLLBACK")
        raise
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
    )


def load_workspace(
    manifest: Manifest, progress: Progress | None = None, ws: Workspace | None = None
) -> LoadReport:
    """Load every registry of the manifest into its workspace database."""
    report = LoadReport(database=str(manifest.database))
    own = ws is None
    ws = ws or Workspace(manifest.database)
    try:
        regs = list(manifest.registries.values())
        for i, reg in enumerate(regs):
            if progress:
                progress(reg.name, "loading", i, len(regs))
            report.registries.append(load_registry(ws, reg))
        if progress:
            progress("", "done", len(regs), len(regs))
    finally:
        if own:
            ws.close()
    return report
