"""The snapshot catalog in memory: the reference the SQL catalog is tested against.

A commit applies its changes to a copy of the state (`new = apply(base, changes)`) and swaps it in
only when every change succeeded, so a failed precondition leaves nothing half-done. Values are
passed through JSON on the way in, so this answers exactly what the database would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lakehouse.catalog.lake import (
    AddFiles,
    CatalogStats,
    ColumnStats,
    Commit,
    DataFile,
    DropTable,
    EnsureTable,
    RemoveFiles,
    SetSchema,
    SetUserKeys,
    SetWatermark,
    SnapshotInfo,
    TableInfo,
    check_limit,
    conflict,
    file_order,
    json_value,
)


@dataclass(frozen=True, slots=True)
class _Table:
    table_id: int
    tenant: str
    name: str
    partition_by: str | None
    sort_key: tuple[str, ...]
    created: int
    dropped: int | None = None

    def live_at(self, snapshot: int) -> bool:
        return self.created <= snapshot and (self.dropped is None or self.dropped > snapshot)


@dataclass(slots=True)
class _State:
    snapshots: list[SnapshotInfo] = field(default_factory=list)
    tables: dict[int, _Table] = field(default_factory=dict)
    live_tables: dict[tuple[str, str], int] = field(default_factory=dict)
    schemas: dict[int, dict[int, Any]] = field(default_factory=dict)  # table -> begin -> schema
    user_keys: dict[int, dict[int, bool]] = field(default_factory=dict)  # table -> begin -> flag
    files: dict[int, DataFile] = field(default_factory=dict)
    file_table: dict[int, int] = field(default_factory=dict)
    paths: dict[str, int] = field(default_factory=dict)  # live and dead, until forgotten
    watermarks: dict[str, int] = field(default_factory=dict)
    next_table_id: int = 1
    next_file_id: int = 1

    def copy(self) -> _State:
        # Values are frozen; only the containers need copying (schemas is one level deeper).
        return _State(list(self.snapshots), dict(self.tables), dict(self.live_tables),
                      {k: dict(v) for k, v in self.schemas.items()},
                      {k: dict(v) for k, v in self.user_keys.items()}, dict(self.files),
                      dict(self.file_table), dict(self.paths), dict(self.watermarks),
                      self.next_table_id, self.next_file_id)


class MemoryCatalog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = _State()

    def commit(self, commit: Commit) -> int:
        summary = json_value(dict(commit.summary))
        with self._lock:
            snapshot = len(self._state.snapshots) + 1
            new = self._state.copy()
            for change in commit.changes:
                _apply(new, change, snapshot)
            new.snapshots.append(SnapshotInfo(snapshot, time.time(), commit.kind,
                                              commit.data_change, summary))
            self._state = new
        return snapshot

    def current_snapshot(self) -> int:
        with self._lock:
            return len(self._state.snapshots)

    def snapshot(self, snapshot_id: int) -> SnapshotInfo | None:
        with self._lock:
            snapshots = self._state.snapshots
            return snapshots[snapshot_id - 1] if 1 <= snapshot_id <= len(snapshots) else None

    def snapshots(self, limit: int = 100) -> list[SnapshotInfo]:
        check_limit(limit)
        with self._lock:
            return list(reversed(self._state.snapshots))[:limit]

    def table(self, tenant: str, name: str, snapshot: int | None = None) -> TableInfo | None:
        with self._lock:
            state = self._state
            at = _resolve(state, snapshot)
            found = _table_at(state, tenant, name, at)
            return _info(state, found, at) if found else None

    def tables(self, tenant: str | None, snapshot: int | None = None) -> list[TableInfo]:
        with self._lock:
            state = self._state
            at = _resolve(state, snapshot)
            found = [t for t in state.tables.values() if t.live_at(at)
                     and (tenant is None or t.tenant == tenant)]
            return [_info(state, t, at) for t in sorted(found, key=lambda t: (t.tenant, t.name))]

    def files(self, tenant: str, name: str, snapshot: int | None = None) -> list[DataFile]:
        with self._lock:
            state = self._state
            at = _resolve(state, snapshot)
            found = _table_at(state, tenant, name, at)
            if found is None:
                return []
            return sorted((f for i, f in state.files.items()
                           if state.file_table[i] == found.table_id and _live_at(f, at)),
                          key=file_order)

    def file_containing(self, tenant: str, name: str, seq: int) -> DataFile | None:
        for file in self.files(tenant, name):
            if file.seq_min is not None and file.seq_max is not None and (
                    file.seq_min <= seq <= file.seq_max):
                return file
        return None

    def dead_files(self, removed_before_snapshot: int) -> list[DataFile]:
        with self._lock:
            dead = [f for f in self._state.files.values() if f.snapshot_removed is not None
                    and f.snapshot_removed < removed_before_snapshot]
        return sorted(dead, key=lambda f: (f.snapshot_removed, f.file_id))

    def forget_files(self, file_ids: Sequence[int]) -> None:
        with self._lock:
            state = self._state
            known = [state.files[i] for i in set(file_ids) if i in state.files]
            live = sorted(f.file_id for f in known if f.snapshot_removed is None
                          and f.file_id is not None)
            if live:
                raise ValueError(f"files {live} are live; only dead files can be forgotten")
            new = state.copy()
            for file in known:
                assert file.file_id is not None  # noqa: S101 - stored files always have one
                del new.files[file.file_id], new.file_table[file.file_id], new.paths[file.path]
            self._state = new

    def watermark(self, writer: str) -> int:
        with self._lock:
            return self._state.watermarks.get(writer, 0)

    def pin_point(self, writer: str) -> tuple[int, int]:
        with self._lock:
            return len(self._state.snapshots), self._state.watermarks.get(writer, 0)

    def stats(self) -> CatalogStats:
        with self._lock:
            state = self._state
            live = [f for f in state.files.values() if f.snapshot_removed is None]
            flushes = [s.created_at for s in state.snapshots if s.kind == "flush"]
            return CatalogStats(
                tenants=len({tenant for tenant, _ in state.live_tables}),
                tables=len(state.live_tables),
                snapshots=len(state.snapshots),
                live_files=len(live),
                dead_files=len(state.files) - len(live),
                live_bytes=sum(f.byte_size for f in live),
                last_flush_at=flushes[-1] if flushes else None,
            )


def _set_schema(state: _State, change: SetSchema, snapshot: int) -> None:
    table = _require(state, change.tenant, change.name)
    versions = state.schemas[table.table_id]
    if change.expected is not None and versions[max(versions)] != json_value(change.expected):
        raise conflict("schema_changed", "the table's schema changed meanwhile",
                       tenant=change.tenant, table=change.name)
    versions[snapshot] = json_value(change.schema)


def _apply(state: _State, change: object, snapshot: int) -> None:
    if isinstance(change, EnsureTable):
        if (change.tenant, change.name) not in state.live_tables:
            table_id = state.next_table_id
            state.next_table_id += 1
            state.tables[table_id] = _Table(table_id, change.tenant, change.name,
                                            change.partition_by, tuple(change.sort_key),
                                            snapshot)
            state.live_tables[(change.tenant, change.name)] = table_id
            state.schemas[table_id] = {snapshot: json_value(change.schema)}
            state.user_keys[table_id] = {snapshot: change.user_keys}
    elif isinstance(change, SetUserKeys):
        keys = state.user_keys[_require(state, change.tenant, change.name).table_id]
        keys[snapshot] = True
    elif isinstance(change, SetSchema):
        _set_schema(state, change, snapshot)
    elif isinstance(change, AddFiles):
        _add_files(state, _require(state, change.tenant, change.name), change.files, snapshot)
    elif isinstance(change, RemoveFiles):
        _remove_files(state, change, snapshot)
    elif isinstance(change, SetWatermark):
        current = state.watermarks.get(change.writer, 0)
        if current != change.expected:
            raise conflict("watermark_moved", f"watermark of {change.writer!r} is {current}, "
                           f"expected {change.expected}", writer=change.writer,
                           current=current, expected=change.expected)
        state.watermarks[change.writer] = change.seq
    elif isinstance(change, DropTable):
        table = _require(state, change.tenant, change.name)
        state.tables[table.table_id] = replace(table, dropped=snapshot)
        del state.live_tables[(change.tenant, change.name)]
        for file_id, file in list(state.files.items()):
            if state.file_table[file_id] == table.table_id and file.snapshot_removed is None:
                state.files[file_id] = replace(file, snapshot_removed=snapshot)
    else:
        raise TypeError(f"not a catalog change: {change!r}")


def _add_files(state: _State, table: _Table, files: Sequence[DataFile], snapshot: int) -> None:
    for file in files:
        if file.path in state.paths:
            raise conflict("path_exists", f"file {file.path!r} is in the catalog already",
                           path=file.path)
        file_id = state.next_file_id
        state.next_file_id += 1
        state.files[file_id] = _stored(file, file_id, snapshot)
        state.file_table[file_id] = table.table_id
        state.paths[file.path] = file_id


def _remove_files(state: _State, change: RemoveFiles, snapshot: int) -> None:
    table = _require(state, change.tenant, change.name)
    for file_id in change.file_ids:
        found = state.files.get(file_id)
        if (found is None or found.snapshot_removed is not None
                or state.file_table[file_id] != table.table_id):
            raise conflict("file_not_live", f"file {file_id} is not a live file of "
                           f"{change.tenant}/{change.name}", file_id=file_id)
        state.files[file_id] = replace(found, snapshot_removed=snapshot)


def _require(state: _State, tenant: str, name: str) -> _Table:
    table_id = state.live_tables.get((tenant, name))
    if table_id is None:
        raise conflict("table_missing", f"table {tenant}/{name} does not exist",
                       tenant=tenant, table=name)
    return state.tables[table_id]


def _stored(file: DataFile, file_id: int, snapshot: int) -> DataFile:
    stats = tuple(ColumnStats(s.column, json_value(s.min), json_value(s.max), s.null_count,
                              s.distinct_estimate) for s in file.stats)
    return replace(file, stats=stats, file_id=file_id, snapshot_added=snapshot,
                   snapshot_removed=None)


def _resolve(state: _State, snapshot: int | None) -> int:
    return len(state.snapshots) if snapshot is None else snapshot


def _table_at(state: _State, tenant: str, name: str, snapshot: int) -> _Table | None:
    for table in state.tables.values():
        if table.tenant == tenant and table.name == name and table.live_at(snapshot):
            return table
    return None


def _live_at(file: DataFile, snapshot: int) -> bool:
    assert file.snapshot_added is not None  # noqa: S101 - stored files always have one
    return file.snapshot_added <= snapshot and (
        file.snapshot_removed is None or file.snapshot_removed > snapshot)


def _info(state: _State, table: _Table, snapshot: int) -> TableInfo:
    versions = state.schemas[table.table_id]
    begin = max(b for b in versions if b <= snapshot)
    # A copy: the caller may change what it gets, as it may with what the database returns.
    keys = state.user_keys[table.table_id]
    return TableInfo(table.table_id, table.tenant, table.name, json_value(versions[begin]),
                     table.partition_by, table.sort_key, table.created, begin,
                     keys[max(b for b in keys if b <= snapshot)])
