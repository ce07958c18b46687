"""Keeping a table's ClickHouse mirror in step with its snapshots, exactly once.

The mirror's watermark is the newest snapshot whose files it holds, kept in the catalog as the
watermark of the writer `mirror:{tenant}/{table}` (a compare-and-set, like the flush's). A
catch-up copies the live files added after it, each insert carrying the file's id as its
deduplication token, then moves the watermark to the newest of them (a catch-up with nothing
to copy commits nothing, so it makes no snapshot of its own). A crash between the inserts and
the watermark repeats the copies at the next catch-up, each replacing its earlier attempt (a
file is a partition of the mirror, dropped before it is copied). Files a compaction wrote hold
rows the mirror has: a query reads only the rows of the files live at its snapshot
(`view_of`), and the keeper drops the replaced files once no query can read them
(lakehouse/serving/prune.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.catalog.lake import Catalog, Commit, DataFile, SetWatermark
from lakehouse.errors import Conflict
from lakehouse.faults import crash_point
from lakehouse.optimizer.pruning import has_upserts
from lakehouse.serving.columns import MIRROR_FILE, NotServable, changed_columns, outdated
from lakehouse.serving.dialect import MirrorView
from lakehouse.serving.store import ServingStore
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.parquet_files import read_file

MIRROR_KIND = "mirror"
ADVANCE_ATTEMPTS = 5


def writer_of(tenant: str, table: str) -> str:
    return f"mirror:{tenant}/{table}"


@dataclass(frozen=True, slots=True)
class CaughtUp:
    snapshot: int  # the snapshot the mirror has reached
    files: int  # files copied now
    rows: int  # rows copied now
    live: frozenset[int] = frozenset()  # the ids of the table's live files


def catch_up(catalog: Catalog, storage: StorageRoot, store: ServingStore, tenant: str,
             table: str) -> CaughtUp:
    """Copy what the mirror lacks of the table's current snapshot."""
    live = catalog.files(tenant, table)
    files = _lacking(catalog, tenant, table, live)
    ids = frozenset(f.file_id for f in live if f.file_id is not None)
    if not files:
        return CaughtUp(catalog.watermark(writer_of(tenant, table)), 0, 0, ids)
    rows = sum(copy_file(catalog, storage, store, tenant, table, data_file=f) for f in files)
    return CaughtUp(advance(catalog, tenant, table, files), len(files), rows, ids)


def renew_outdated(catalog: Catalog, store: ServingStore, tenant: str, table: str) -> bool:
    """Drop a mirror of an older layout (see lakehouse/serving/columns.py `outdated`), so the
    next catch-up copies the table afresh; whether it did. The watermark goes first: from
    then on no query goes there until the copy is whole again."""
    if not outdated(store.columns(tenant, table)):
        return False
    forget(catalog, store, tenant, table, watermark_first=True)
    return True


def lacking(catalog: Catalog, tenant: str, table: str) -> list[DataFile]:
    """The table's live files the mirror does not hold yet (none: it is current)."""
    return _lacking(catalog, tenant, table, catalog.files(tenant, table))


def _lacking(catalog: Catalog, tenant: str, table: str,
             live: Sequence[DataFile]) -> list[DataFile]:
    reached = catalog.watermark(writer_of(tenant, table))
    return [f for f in live if (f.snapshot_added or 0) > reached]


def view_of(files: Sequence[DataFile], cutoff: int | None = None) -> MirrorView:
    """What a query sees of a mirror at the snapshot whose live files are `files`."""
    return MirrorView(tuple(sorted(f.file_id for f in files if f.file_id is not None)),
                      any(has_upserts(f) for f in files), cutoff)


def copy_file(catalog: Catalog, storage: StorageRoot, store: ServingStore, tenant: str,
              table: str, *, data_file: DataFile) -> int:
    """One data file's rows into the mirror, exactly once; the rows copied (0: the mirror's
    watermark holds it already, and queries may be reading it).

    Called under the table's lock (lakehouse/serving/keeper.py `table_lock`). A file not yet
    under the watermark is read by no query, so its partition is dropped first: a copy
    repeated after a crash replaces its earlier attempt (the deduplication token alone
    remembers only the last DEDUP_WINDOW inserts)."""
    if data_file.file_id is None:  # pragma: no cover - the catalog's files have ids
        raise ValueError(f"{data_file.path} has no file id")
    if (data_file.snapshot_added or 0) <= catalog.watermark(writer_of(tenant, table)):
        return 0
    found = mirrored(read_file(storage, data_file.path), data_file.file_id)
    store.ensure_table(tenant, table, found.schema)
    missing, changed = changed_columns(store.columns(tenant, table), found.schema)
    if changed:
        raise NotServable(
            f"the mirror of {table!r} cannot take {data_file.path}: columns changed type "
            f"({'; '.join(changed)}); mark the table again (\"serving\": null, then "
            "\"clickhouse\") to copy it afresh", code="not_servable",
            details={"table": table, "changed": changed})
    for field in missing:  # a column added to the table since
        store.add_column(tenant, table, field)
    store.delete_files(tenant, table, [data_file.file_id])
    store.insert(tenant, table, found, token=f"file-{data_file.file_id}")
    crash_point("mirror:after_insert")  # copied, the watermark not moved: the crash tests
    rows: int = found.num_rows
    return rows


def advance(catalog: Catalog, tenant: str, table: str, copied: Sequence[DataFile]) -> int:
    """Move the watermark to the newest file copied, unless another catch-up moved it there
    first; the snapshot the mirror has reached.

    Every live file added at or before the newest copied one was live when they were listed
    (files never come back), so it was copied too: the watermark may move there."""
    newest = max(f.snapshot_added or 0 for f in copied)
    for _ in range(ADVANCE_ATTEMPTS):
        reached = catalog.watermark(writer_of(tenant, table))
        if reached >= newest:
            return reached
        try:
            catalog.commit(Commit(MIRROR_KIND, (SetWatermark(writer_of(tenant, table), newest,
                                                             reached),),
                                  {"tenant": tenant, "table": table, "files": len(copied)},
                                  data_change=False))
            return newest
        except Conflict:  # another catch-up or a drop moved it meanwhile: look again
            continue
    raise Conflict(f"the mirror watermark of {tenant}/{table} keeps moving",
                   details={"tenant": tenant, "table": table})


def forget(catalog: Catalog, store: ServingStore, tenant: str, table: str, *,
           watermark_first: bool = False) -> None:
    """Drop the mirror and its watermark: marked again, the table is copied from the start."""
    if not watermark_first:
        store.drop_table(tenant, table)
    reached = catalog.watermark(writer_of(tenant, table))
    if reached:
        catalog.commit(Commit(MIRROR_KIND, (SetWatermark(writer_of(tenant, table), 0,
                                                         reached),),
                              {"tenant": tenant, "table": table, "dropped": True},
                              data_change=False))
    if watermark_first:
        store.drop_table(tenant, table)


@dataclass(frozen=True, slots=True)
class MirrorState:
    """What GET /metadata/tables shows of a served table's mirror."""

    rows: int  # what a query there sees (replaced versions and files left out)
    snapshot: int  # the newest snapshot whose files it holds (0: none yet)
    lagging_files: int  # live files it does not hold yet
    lag_s: float  # how long the oldest of them has waited (0: current)

    @property
    def current(self) -> bool:
        return self.lagging_files == 0

    def to_json(self) -> dict[str, Any]:
        return {"store": "clickhouse", "rows": self.rows, "snapshot": self.snapshot,
                "lagging_files": self.lagging_files, "lag_s": round(self.lag_s, 3),
                "current": self.current}


def state_of(catalog: Catalog, store: ServingStore, tenant: str, table: str,
             now: float) -> MirrorState:
    reached = catalog.watermark(writer_of(tenant, table))
    live = catalog.files(tenant, table)
    behind = [f for f in live if (f.snapshot_added or 0) > reached]
    lag = 0.0
    if behind:
        oldest = catalog.snapshot(min(f.snapshot_added or 0 for f in behind))
        lag = max(0.0, now - oldest.created_at) if oldest is not None else 0.0
    held = [f for f in live if (f.snapshot_added or 0) <= reached]
    return MirrorState(store.count(tenant, table, view_of(held)) if reached else 0, reached,
                       len(behind), lag)


def mirrored(rows: pa.Table, file_id: int) -> pa.Table:
    """A data file's rows as the mirror holds them: with their file's id; a loaded file's rows
    have no log sequence (`_seq` null): they are version 0, older than any write."""
    if "_seq" in rows.column_names:
        index = rows.column_names.index("_seq")
        seq = pc.fill_null(rows.column("_seq").cast(pa.uint64()), 0)
        rows = rows.set_column(index, pa.field("_seq", pa.uint64(), nullable=False), seq)
    return rows.append_column(pa.field(MIRROR_FILE, pa.uint64(), nullable=False),
                              pa.array(np.full(rows.num_rows, file_id, dtype=np.uint64)))
