"""Whether a record is new, a duplicate of one already taken, or a conflict with it, by its
data_id: what makes a retried write harmless.

A data_id is looked for, in order, earlier in the same request, in a write not yet durable, then
in the log's index (its version still in the log, or flushed out to Parquet). Payloads are compared
only when a data_id is seen again, which is rare: the common write pays for no hashing at all.
"""

from __future__ import annotations

from typing import Any, Protocol

from lakehouse.ingest.batch import RecordBatch, StoredRecord, canonical
from lakehouse.ingest.inflight import InflightWrite
from lakehouse.ingest.keys import TableRef, decode_seq
from lakehouse.ingest.plan import RecordResult, WritePlan
from lakehouse.ingest.records import IncomingRecord
from lakehouse.wal.port import WriteAheadLog


class FlushedSource(Protocol):
    def get(self, ref: TableRef, data_id: str, seq: int) -> StoredRecord | None: ...


class Deduper:
    """One request's decisions, made under the ingest service's lock (the in-flight writes it
    reads change under that lock only)."""

    def __init__(self, wal: WriteAheadLog, inflight: dict[bytes, InflightWrite],
                 flushed_source: FlushedSource | None) -> None:
        self._wal = wal
        self._inflight = inflight  # record key → the write holding it
        self._flushed_source = flushed_source
        # Entries of the log read to compare payloads: a request repeating many ids of one
        # earlier write decodes its entry once.
        self._entries: dict[int, RecordBatch | None] = {}

    def decide(  # noqa: PLR0911 - a decision table reads best as one return per case
            self, plan: WritePlan, record: IncomingRecord, key: bytes, stored: bytes | None,
            earlier: IncomingRecord | None,
    ) -> RecordResult | None:
        """None if the record is to be written; else its answer (duplicate or conflict).

        `stored` is the record key's value in the log's index (read before, for the whole
        request); `earlier` a record of this request with the same key."""
        index, data_id, table = record.index, record.data_id, record.table
        if earlier is not None:  # the same data_id twice in one request
            if canonical(earlier.payload) == canonical(record.payload):
                plan.aliases[index] = earlier.index
                return RecordResult(index, data_id, table, "duplicate")
            return RecordResult(index, data_id, table, "conflict", code="data_id_conflict",
                                reason="this request has this data_id twice with different "
                                       "payloads")
        inflight = self._inflight.get(key)
        if inflight is not None:
            offset, payload = inflight.find(key)
            if canonical(payload) == canonical(record.payload):
                plan.waits.append((index, inflight.future, offset))
                return RecordResult(index, data_id, table, "duplicate")
            return RecordResult(index, data_id, table, "conflict", code="data_id_conflict",
                                reason="a concurrent write of this data_id is in progress; "
                                       "retry when it is done")
        if stored is None:
            return None
        seq = decode_seq(stored)
        previous = self.stored_payload(seq)
        like = None  # a flushed version holds typed values: compare the record as those
        if previous is None and self._flushed_source is not None:
            flushed = self._flushed_source.get(TableRef(plan.tenant, table), data_id, seq)
            previous = like = flushed.payload if flushed is not None else None
        if previous is None or canonical(previous) == canonical(record.payload, like):
            # None: flushed out of the log, so not comparable here; an id seen is a duplicate.
            return RecordResult(index, data_id, table, "duplicate", seq=seq)
        if record.upsert:
            return None
        return RecordResult(index, data_id, table, "conflict", seq=seq, code="data_id_conflict",
                            reason="this data_id exists with a different payload; send "
                                   "\"upsert\": true to replace it")

    def stored_payload(self, seq: int) -> dict[str, Any] | None:
        """The payload of the record `seq` while it is still in the log; None once trimmed."""
        for first, batch in self._entries.items():
            if batch is not None and first <= seq < first + len(batch):
                return batch.record(first, seq - first).payload
        entry = self._wal.entry_containing(seq)
        if entry is None:
            return None
        batch = self._entries[entry.seq] = RecordBatch.decode(entry.payload)
        return batch.record(entry.seq, seq - entry.seq).payload
