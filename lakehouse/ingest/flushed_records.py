"""Reading flushed records back from their Parquet files, for read-your-writes after a flush."""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc

from lakehouse.catalog.lake import Catalog, DataFile
from lakehouse.ingest.batch import StoredRecord, strip_nulls
from lakehouse.ingest.keys import TableRef
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.parquet_files import read_file

SYSTEM = ("data_id", "_seq", "_timestamp", "_upsert")


class ParquetRecords:
    def __init__(self, catalog: Catalog, storage: StorageRoot) -> None:
        self._catalog = catalog
        self._storage = storage

    def get(self, ref: TableRef, data_id: str, seq: int) -> StoredRecord | None:
        for file in self._catalog.files(ref.tenant, ref.table):
            if file.seq_min is not None and file.seq_max is not None and (
                    file.seq_min <= seq <= file.seq_max):
                rows = read_file(self._storage, file.path, filters=[("_seq", "=", seq)])
                if rows.num_rows:
                    return _record(rows.to_pylist()[0])
        return None

    def newest(self, ref: TableRef, before_seq: int | None, limit: int) -> list[StoredRecord]:
        """Up to `limit` records below `before_seq`, newest first (replaced versions included;
        the reader drops those with the record index)."""
        files = [f for f in self._catalog.files(ref.tenant, ref.table) if f.seq_min is not None
                 and (before_seq is None or f.seq_min < before_seq)]
        files.sort(key=_seq_max, reverse=True)
        found: list[dict[str, Any]] = []
        for file in files:
            if len(found) >= limit and _seq_max(file) < found[limit - 1]["_seq"]:
                break  # no later file can hold anything newer than what we have
            rows = read_file(self._storage, file.path)
            if before_seq is not None:
                rows = rows.filter(pc.less(rows.column("_seq"), before_seq))
            found.extend(rows.to_pylist())
            found.sort(key=lambda r: r["_seq"], reverse=True)
        return [_record(r) for r in found[:limit]]


def _seq_max(file: DataFile) -> int:
    return file.seq_max or 0


def _record(row: dict[str, Any]) -> StoredRecord:
    payload = strip_nulls({k: v for k, v in row.items() if k not in SYSTEM})
    timestamp = row["_timestamp"]
    return StoredRecord(int(row["_seq"]), row["data_id"],
                        int(timestamp.timestamp() * 1_000_000), payload, bool(row["_upsert"]))
