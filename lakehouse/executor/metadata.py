"""What planning reads from the catalog for one tenant at one snapshot, read once and kept.

A snapshot never changes once committed: its tables, their schemas and their live files are
queries over rows that later commits only add to (a file removed later is still live at the
older snapshot). So the answer for (tenant, snapshot) can be kept and reused by every query
pinned to it, which is every query until the next commit. Without it, planning a TPC-H query
read each of the tenant's tables' file lists and statistics again (tens of milliseconds on
SQLite). Rows still in the write buffer are not part of a snapshot; the engine adds them per
query.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from lakehouse.catalog.lake import Catalog, DataFile, TableInfo
from lakehouse.executor.scan import file_schemas
from lakehouse.storage.location import StorageRoot

SNAPSHOTS_KEPT = 16  # (tenant, snapshot) entries: the current snapshot of the busiest tenants


@dataclass(frozen=True)
class SnapshotMetadata:
    tenant: str
    snapshot: int
    tables: dict[str, TableInfo]
    files: dict[str, tuple[DataFile, ...]]
    file_schemas: dict[str, pa.Schema]  # table → its newest data file's schema
    derived: dict[str, Any]  # what callers build from the rest once (the schema view)


class MetadataCache:
    def __init__(self, catalog: Catalog, storage: StorageRoot) -> None:
        self.catalog = catalog
        self.storage = storage
        self._lock = threading.Lock()
        self._snapshots: OrderedDict[tuple[str, int], SnapshotMetadata] = OrderedDict()

    def get(self, tenant: str, snapshot: int) -> SnapshotMetadata:
        key = (tenant, snapshot)
        with self._lock:
            found = self._snapshots.get(key)
            if found is not None:
                self._snapshots.move_to_end(key)
                return found
        # Read outside the lock: two planners missing at once both read, which is harmless.
        tables = {info.name: info for info in self.catalog.tables(tenant, snapshot)}
        files = {name: tuple(self.catalog.files(tenant, name, snapshot)) for name in tables}
        schemas = {}
        for name, found_files in files.items():
            schema = self.file_schema(found_files)
            if schema is not None:
                schemas[name] = schema
        made = SnapshotMetadata(tenant, snapshot, tables, files, schemas, {})
        with self._lock:
            self._snapshots[key] = made
            while len(self._snapshots) > SNAPSHOTS_KEPT:
                self._snapshots.popitem(last=False)
        return made

    def file_schema(self, files: tuple[DataFile, ...]) -> pa.Schema | None:
        """The schema of the newest of `files` (the table's schema only grows)."""
        if not files:
            return None
        newest = max(files, key=lambda f: (f.snapshot_added or 0, f.path))
        return file_schemas(self.storage, [newest.path])[0]

    def derive(self, metadata: SnapshotMetadata, name: str, make: Callable[[], Any]) -> Any:
        """`make()` once per snapshot entry, kept beside it."""
        with self._lock:
            if name in metadata.derived:
                return metadata.derived[name]
        value = make()
        with self._lock:
            return metadata.derived.setdefault(name, value)
