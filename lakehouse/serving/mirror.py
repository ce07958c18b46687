"""Keeping a table's ClickHouse mirror in step with its snapshots, exactly once.

The mirror's watermark is the newest snapshot whose files it holds, kept in the catalog as the
watermark of the writer `mirror:{tenant}/{table}` (a compare-and-set, like the flush's). A
catch-up copies the live files added after it, each insert carrying the file's id as its
deduplication token, then moves the watermark to the newest of them (a catch-up with nothing
to copy commits nothing, so it makes no snapshot of its own). A crash
between the inserts and the watermark repeats the inserts at the next catch-up, and ClickHouse
drops them (same tokens). Files a compaction wrote hold rows the mirror has (same `data_id`,
same `_seq`): the ReplacingMergeTree folds them, so what a query sees does not change.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.catalog.lake import Catalog, Commit, DataFile, SetWatermark
from lakehouse.serving.store import ServingStore
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.parquet_files import read_file

MIRROR_KIND = "mirror"


def writer_of(tenant: str, table: str) -> str:
    return f"mirror:{tenant}/{table}"


@dataclass(frozen=True, slots=True)
class CaughtUp:
    snapshot: int  # the snapshot the mirror has reached
    files: int  # files copied now
    rows: int  # rows copied now (before ClickHouse folds repeats)


def catch_up(catalog: Catalog, storage: StorageRoot, store: ServingStore, tenant: str,
             table: str) -> CaughtUp:
    """Copy what the mirror lacks of the table's current snapshot."""
    files = lacking(catalog, tenant, table)
    reached = catalog.watermark(writer_of(tenant, table))
    if not files:
        return CaughtUp(reached, 0, 0)
    rows = 0
    for data_file in files:
        found = mirrored(read_file(storage, data_file.path))
        store.ensure_table(tenant, table, found.schema)
        store.insert(tenant, table, found, token=f"file-{data_file.file_id}")
        rows += found.num_rows
    newest = max(f.snapshot_added or 0 for f in files)
    catalog.commit(Commit(MIRROR_KIND, (SetWatermark(writer_of(tenant, table), newest,
                                                     reached),),
                          {"tenant": tenant, "table": table, "files": len(files)},
                          data_change=False))
    return CaughtUp(newest, len(files), rows)


def lacking(catalog: Catalog, tenant: str, table: str) -> list[DataFile]:
    """The table's live files the mirror does not hold yet (none: it is current)."""
    reached = catalog.watermark(writer_of(tenant, table))
    return [f for f in catalog.files(tenant, table) if (f.snapshot_added or 0) > reached]


def mirrored(rows: pa.Table) -> pa.Table:
    """A data file's rows as the mirror holds them: a loaded file's rows have no log sequence
    (`_seq` null): they are version 0, older than any write."""
    if "_seq" in rows.column_names:
        index = rows.column_names.index("_seq")
        seq = pc.fill_null(rows.column("_seq").cast(pa.uint64()), 0)
        rows = rows.set_column(index, pa.field("_seq", pa.uint64(), nullable=False), seq)
    return rows
