"""Test helper: reading a whole table as of one snapshot, the files live at that snapshot only.

A reader pinned to snapshot N reads exactly N's files, so flushes, compactions and retention
committing meanwhile never change its answer; cleanup keeps removed files for the grace period,
longer than a read takes. It is the query engine's scan without a query: visible rows (the
newest version of each data_id), rows past the table's retention period hidden.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pyarrow as pa

from lakehouse.catalog.lake import Catalog
from lakehouse.catalog.options import NO_OPTIONS, TableOptions
from lakehouse.executor.scan import ScanJob, relation_schema, scan_fragment, upsert_rows
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.versions import replaced_versions


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
    paths = tuple(f.path for f in files)
    size = sum(f.byte_size for f in files)
    schema = relation_schema(storage, paths)
    if schema is None:
        return Scan(pa.table({}), pinned, 0, 0)
    job = ScanJob(storage.uri, paths, schema, tuple(columns) if columns is not None else None,
                  None, retention_cutoff_us=options.retention_cutoff_us(
                      time.time() if now is None else now))
    upserts = upsert_rows(job)
    if upserts.num_rows:
        job = replace(job, replaced=replaced_versions([upserts]))
    return Scan(scan_fragment(job), pinned, len(files), size)
