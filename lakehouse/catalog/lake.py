"""The snapshot catalog of the lakehouse (modelled on DuckLake): tables, data files, column stats.

Every change is a snapshot. A commit is a list of changes applied in order inside one transaction;
each change states its preconditions ("these files are still live", "the watermark is still N")
and a failed one raises `Conflict` and changes nothing, so writers retry instead of overwriting.
Nothing is ever updated in place: a file is live at snapshot N when it was added at or before N
and not removed at or before N, so a table's file list at any snapshot is a query.

Implementations: `lakehouse.catalog.lake_memory.MemoryCatalog` (tests, pure logic) and
`lakehouse.catalog.lake_sql.SqlCatalog` (SQLite or PostgreSQL). One contract suite,
tests/contract/test_lake_catalog.py, runs against all of them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lakehouse.errors import Conflict

StatValue = int | float | str | bool | None


@dataclass(frozen=True, slots=True)
class ColumnStats:
    column: str  # top-level column name
    min: StatValue  # None when every value is null or the type has no order here
    max: StatValue
    null_count: int
    distinct_estimate: int | None


@dataclass(frozen=True, slots=True)
class DataFile:
    # relative to the storage root, e.g. "acme/events/day=2026-11-26/00000001-00000900.parquet"
    path: str
    partition: str  # e.g. "day=2026-11-26" ("" when unpartitioned)
    row_count: int
    byte_size: int
    seq_min: int | None  # WAL sequence range of the rows it holds (None for bulk loads)
    seq_max: int | None
    stats: tuple[ColumnStats, ...] = ()
    file_id: int | None = None  # assigned by the catalog at commit
    snapshot_added: int | None = None
    snapshot_removed: int | None = None

    def __post_init__(self) -> None:
        # Programming errors, not conflicts: they must never reach the catalog.
        if self.row_count < 0 or self.byte_size < 0:
            raise ValueError(f"{self.path}: row_count and byte_size must be >= 0")
        if (self.seq_min is None) != (self.seq_max is None):
            raise ValueError(f"{self.path}: seq_min and seq_max are both set or both None")
        if self.seq_min is not None and self.seq_max is not None and self.seq_min > self.seq_max:
            raise ValueError(f"{self.path}: seq_min {self.seq_min} > seq_max {self.seq_max}")
        columns = [s.column for s in self.stats]
        if len(set(columns)) != len(columns):
            raise ValueError(f"{self.path}: one ColumnStats per column, got {columns}")


@dataclass(frozen=True, slots=True)
class TableInfo:
    table_id: int
    tenant: str
    name: str
    schema: Any  # JSON value (the caller stores FieldType.to_json() here)
    partition_by: str | None
    sort_key: tuple[str, ...]
    created_snapshot: int
    schema_snapshot: int  # snapshot that set the schema in force at the asked snapshot
    # Whether `data_id` holds keys the writers gave (records carry one; a loaded file may have
    # a data_id column), so queries show it like any column; False while every key was made
    # up by a load ("{file stem}:{row}"), which `SELECT *` then hides. Tables of catalogs older
    # than this field read True: their data_id was always shown.
    user_keys: bool = True


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    snapshot_id: int
    created_at: float  # epoch seconds
    kind: str  # "flush", "load", "compaction", "retention", ...
    data_change: bool  # False for compaction: same rows, other files
    summary: Mapping[str, Any]  # small JSON, e.g. {"rows": 900, "files": 2}


@dataclass(frozen=True, slots=True)
class CatalogStats:
    tenants: int  # tenants with at least one table at the current snapshot
    tables: int  # tables at the current snapshot
    snapshots: int
    live_files: int
    dead_files: int  # removed, but their rows not yet forgotten (objects maybe not deleted)
    live_bytes: int
    last_flush_at: float | None  # created_at of the newest "flush" snapshot


# Changes, applied in order inside one commit.


@dataclass(frozen=True, slots=True)
class EnsureTable:
    """Create the table if absent; a no-op (schema and layout untouched) if it exists."""

    tenant: str
    name: str
    schema: Any
    partition_by: str | None = None
    sort_key: tuple[str, ...] = ()
    user_keys: bool = True  # see TableInfo.user_keys


@dataclass(frozen=True, slots=True)
class SetUserKeys:
    """From this snapshot on the table holds keys its writers gave (TableInfo.user_keys); the
    table must exist. Once true it stays true: a key written is never unwritten."""

    tenant: str
    name: str


@dataclass(frozen=True, slots=True)
class SetSchema:
    """A new schema version from this snapshot on; the table must exist. With `expected`, the
    commit's precondition: the table's schema is still that one (Conflict otherwise), so a
    writer that read the schema, then decided, never undoes a change committed meanwhile."""

    tenant: str
    name: str
    schema: Any
    expected: Any = None  # None: no precondition


@dataclass(frozen=True, slots=True)
class AddFiles:
    """The table must exist (EnsureTable earlier in the same commit counts). A path the catalog
    still knows (live, or dead and not yet forgotten) is a Conflict: re-adding it would be a
    replayed flush, or would let cleanup delete the object of a live file."""

    tenant: str
    name: str
    files: tuple[DataFile, ...]


@dataclass(frozen=True, slots=True)
class RemoveFiles:
    """Precondition: every file is live now and belongs to this table, else Conflict."""

    tenant: str
    name: str
    file_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SetWatermark:
    """Precondition: the current watermark of `writer` == expected (0 if never set)."""

    writer: str
    seq: int
    expected: int

    def __post_init__(self) -> None:
        if self.seq < 0 or self.expected < 0:
            raise ValueError(f"watermarks are >= 0, got seq={self.seq} expected={self.expected}")


@dataclass(frozen=True, slots=True)
class DropTable:
    """The table must exist; its live files are removed in the same snapshot."""

    tenant: str
    name: str


Change = (EnsureTable | SetSchema | SetUserKeys | AddFiles | RemoveFiles | SetWatermark
          | DropTable)


@dataclass(frozen=True, slots=True)
class Commit:
    kind: str
    changes: tuple[Change, ...]
    summary: Mapping[str, Any] = field(default_factory=dict)
    data_change: bool = True


class Catalog(Protocol):
    def commit(self, commit: Commit) -> int:
        """Apply all changes in ONE transaction as a new snapshot and return its id (ids start
        at 1 and grow by 1, without gaps). If any precondition fails, raise Conflict (retryable)
        and change nothing. A path added twice among live files is a Conflict too (a replayed
        flush is a no-op error, never a duplicate)."""

    def current_snapshot(self) -> int:
        """0 before any commit."""

    def snapshot(self, snapshot_id: int) -> SnapshotInfo | None: ...

    def snapshots(self, limit: int = 100) -> list[SnapshotInfo]:
        """Newest first."""

    def table(self, tenant: str, name: str, snapshot: int | None = None) -> TableInfo | None:
        """As of that snapshot (None = current); None if absent or dropped then."""

    def tables(self, tenant: str | None, snapshot: int | None = None) -> list[TableInfo]:
        """None tenant = all; ordered by tenant, name."""

    def files(self, tenant: str, name: str, snapshot: int | None = None) -> list[DataFile]:
        """Live at that snapshot, with stats, ordered by seq_min (None first) then path."""

    def file_containing(self, tenant: str, name: str, seq: int) -> DataFile | None:
        """The live file whose [seq_min, seq_max] holds seq."""

    def dead_files(self, removed_before_snapshot: int) -> list[DataFile]:
        """Files removed at a snapshot < that one (for cleanup after a grace period), with
        stats, ordered by snapshot_removed then file_id."""

    def forget_files(self, file_ids: Sequence[int]) -> None:
        """Delete the rows of dead files whose objects were deleted. Unknown ids are ignored
        (a retried cleanup); a live id is a programming error (ValueError, nothing deleted)."""

    def watermark(self, writer: str) -> int:
        """0 if never set."""

    def pin_point(self, writer: str) -> tuple[int, int]:
        """The current snapshot and `writer`'s watermark, read at one moment: the watermark is
        the one the snapshot committed (a commit changes both at once)."""

    def stats(self) -> CatalogStats: ...


# Helpers shared by the implementations, so both answer the same for the same input.


def json_value(value: Any) -> Any:
    """`value` as it comes back from the database: JSON-encoded and decoded (tuples become
    lists). Refuses what JSON cannot hold, at commit and in every implementation alike."""
    return json.loads(json.dumps(value))


def conflict(reason: str, message: str, **details: Any) -> Conflict:
    return Conflict(message, details={"reason": reason, **details})


def check_limit(limit: int) -> None:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")


def file_order(file: DataFile) -> tuple[bool, int, str]:
    """Sort key of `Catalog.files`: bulk loads (no sequence range) first, then by seq_min."""
    return (file.seq_min is not None, file.seq_min or 0, file.path)
