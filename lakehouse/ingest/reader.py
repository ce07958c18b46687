"""Read-your-writes: records are visible the instant they are acknowledged.

Unflushed records are read from the WAL. Flushed records come from the table's Parquet files
through a `FlushedRecords` source (the storage layer provides it); the listing merges both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, replace
from typing import Any, Protocol

from lakehouse.errors import InvalidInput, NotFound, Unavailable
from lakehouse.ingest.batch import RecordBatch, StoredRecord
from lakehouse.ingest.keys import TableRef, decode_seq, record_key
from lakehouse.ingest.service import REJECTS_TABLE, IngestService
from lakehouse.schema.coerce import coerce_payload

SETTLE_TRIES = 3


class FlushedRecords(Protocol):
    def get(self, ref: TableRef, data_id: str, seq: int) -> StoredRecord | None: ...

    def newest(self, ref: TableRef, before_seq: int | None, limit: int) -> list[StoredRecord]: ...


@dataclass(frozen=True, slots=True)
class Page:
    records: list[dict[str, Any]]
    next_after: int | None


def record_json(ref: TableRef, record: StoredRecord, *, flushed: bool) -> dict[str, Any]:
    timestamp = dt.datetime.fromtimestamp(record.timestamp_us / 1_000_000, dt.UTC)
    return {"data_id": record.data_id, "table": ref.table, "seq": record.seq,
            "timestamp": timestamp.isoformat(), "payload": record.payload, "flushed": flushed}


class RecordReader:
    def __init__(self, service: IngestService, flushed: FlushedRecords | None = None) -> None:
        self._service = service
        self._flushed = flushed

    def get(self, ref: TableRef, data_id: str) -> dict[str, Any]:
        wal = self._service.wal
        key = record_key(ref, data_id)
        for _ in range(SETTLE_TRIES):
            [stored] = wal.index_get([key])
            if stored is None:
                raise NotFound(f"no record {data_id!r} in table {ref.table!r}",
                               details={"data_id": data_id, "table": ref.table})
            seq = decode_seq(stored)
            if seq <= wal.last_seq():
                break
            # The index already names a write the log is still syncing (see wal/rocks.py):
            # its answer is an fsync away, so wait for it rather than answer around it.
            self._service.settle(key)
        else:
            raise Unavailable(f"record {data_id!r} is being rewritten as we read it; retry",
                              code="record_busy", details={"data_id": data_id})
        entry = wal.entry_containing(seq)
        if entry is not None:
            batch = RecordBatch.decode(entry.payload)
            return self._unflushed_json(ref, batch.records(entry.seq)[seq - entry.seq])
        if self._flushed is not None:
            record = self._flushed.get(ref, data_id, seq)
            if record is not None:
                return record_json(ref, record, flushed=True)
        raise NotFound(f"record {data_id!r} was flushed but its file cannot be read",
                       code="record_unavailable", details={"data_id": data_id, "seq": seq})

    def newest(self, ref: TableRef, limit: int, after: int | None = None) -> Page:
        """Live records of the table, newest first, with sequence numbers below `after`."""
        wal = self._service.wal
        out: list[dict[str, Any]] = []
        for first_seq in self._service.unflushed_entries(ref, after):
            entry = wal.entry_containing(first_seq)
            if entry is None:  # flushed and trimmed since we looked
                continue
            records = [r for r in reversed(RecordBatch.decode(entry.payload).records(entry.seq))
                       if after is None or r.seq < after]
            out.extend(self._unflushed_json(ref, r) for r in self._live(ref, records))
            if len(out) >= limit:
                return Page(out[:limit], out[limit - 1]["seq"])
        if self._flushed is not None:
            before = out[-1]["seq"] if out else after
            while len(out) < limit:
                older = self._flushed.newest(ref, before, limit - len(out))
                if not older:
                    break
                out.extend(record_json(ref, r, flushed=True) for r in self._live(ref, older))
                before = older[-1].seq
        return Page(out[:limit], out[limit - 1]["seq"] if len(out) >= limit else None)

    def _unflushed_json(self, ref: TableRef, record: StoredRecord) -> dict[str, Any]:
        """As the flushed record will read: values of exact columns converted, the way the
        flush converts them (a timestamp with an offset reads in UTC, a decimal at its scale)."""
        schema = self._service.table_schema(ref) if ref.table != REJECTS_TABLE else None
        if schema is not None and schema.exact:
            # Checked when it was written; shown as stored if it no longer converts.
            with contextlib.suppress(InvalidInput):
                record = replace(record, payload=coerce_payload(record.payload, schema))
        return record_json(ref, record, flushed=False)

    def _live(self, ref: TableRef, records: list[StoredRecord]) -> list[StoredRecord]:
        """Drop versions an upsert has replaced."""
        if ref.table == REJECTS_TABLE or not records:
            return records
        wal = self._service.wal
        current = wal.index_get([record_key(ref, r.data_id) for r in records])
        durable = wal.last_seq()  # read after the index: an index seq above it is still syncing
        # A version stays live until the version replacing it is durable.
        return [r for r, value in zip(records, current, strict=True)
                if value is not None and (decode_seq(value) == r.seq
                                          or decode_seq(value) > durable)]
