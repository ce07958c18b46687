"""Reading a table as of one snapshot: the files live at that snapshot, nothing else.

A query pinned to snapshot N reads exactly N's files, so flushes, compactions and retention
committing meanwhile never change its answer; cleanup keeps removed files for the grace period,
longer than a query runs. Rows past the table's retention period are hidden here at once, before
retention drops their files. Visible rows are the newest version of each data_id.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.catalog.lake import Catalog
from lakehouse.compaction.options import NO_OPTIONS, TableOptions
from lakehouse.compaction.retention import TIME_COLUMN
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.parquet_files import read_file
from lakehouse.storage.rewrite import newest_versions


@dataclass(frozen=True)
class Scan:
    rows: pa.Table
    snapshot: int
    files: int
    bytes: int


def scan_table(catalog: Catalog, storage: StorageRoot, tenant: str, table: str, *,
               snapshot: int | None = None, columns: Sequence[str] | None = None,
               options: TableOptions = NO_OPTIONS, now: float | None = None) -> Scan:
    pinned = catalog.current_snapshot() if snapshot is None else snapshot
    files = catalog.files(tenant, table, pinned)
    wanted = None if columns is None else list(dict.fromkeys(
        [*columns, "data_id", "_seq", "_upsert", TIME_COLUMN]))
    parts = [read_file(storage, f.path, columns=wanted) for f in files]
    rows = pa.concat_tables(parts, promote_options="permissive") if parts else pa.table({})
    if rows.num_rows:
        rows = newest_versions(rows)
        cutoff = options.retention_cutoff_us(time.time() if now is None else now)
        if cutoff is not None and TIME_COLUMN in rows.column_names:
            since = pa.scalar(cutoff, pa.timestamp("us", tz="UTC"))
            rows = rows.filter(pc.greater_equal(rows.column(TIME_COLUMN), since))
    if columns is not None and rows.num_rows:
        rows = rows.select([c for c in columns if c in rows.column_names])
    return Scan(rows, pinned, len(files), sum(f.byte_size for f in files))
