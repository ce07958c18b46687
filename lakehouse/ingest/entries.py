"""What a write plan puts in the log, and the per-table counters it moves (pure).

The entries and index keys are built on the commit thread once the plan's sequence numbers are
known; the counters are applied twice, to the durable copy persisted with the write and, once it
is durable, to the live one.
"""

from __future__ import annotations

import orjson

from lakehouse.ingest.arrow_read import ArrowRows
from lakehouse.ingest.batch import RecordBatch
from lakehouse.ingest.keys import TableRef, schema_key
from lakehouse.ingest.plan import WritePlan
from lakehouse.ingest.state import TableState
from lakehouse.wal.port import LogEntry

REJECTS_TABLE = "_rejects"


def plan_entries(plan: WritePlan, first_seq: int,
                 ) -> tuple[list[LogEntry], dict[bytes, bytes | None]]:
    """One log entry per table written (then one for the rejects), and the index keys that go
    with them: each record key → its sequence number, each changed schema. Records the size of
    each entry in the plan."""
    entries: list[LogEntry] = []
    index: dict[bytes, bytes | None] = {}
    seq = first_seq
    for ref, records in plan.writes.items():
        batch = _batch(plan, ref)
        payload = batch.encode()
        entries.append(LogEntry(payload, len(records)))
        plan.sizes[ref] = len(payload)
        keys = plan.keys[ref]
        index.update(zip(keys, [(seq + offset).to_bytes(8, "big")
                                for offset in range(len(keys))], strict=True))
        seq += len(records)
    for ref, schema in plan.schemas.items():
        index[schema_key(ref)] = orjson.dumps(schema.to_json())
    if plan.rejects:
        ref = TableRef(plan.tenant, REJECTS_TABLE)
        rows = tuple((r.data_id or f"#{r.index}", plan.received_us,
                      {"table": r.table, "error": r.code, "reason": r.reason,
                       "request_id": plan.request_id,
                       "raw": r.raw if isinstance(r.raw, str) else orjson.dumps(
                           r.raw, default=str).decode()}, False) for r in plan.rejects)
        payload = RecordBatch(ref.tenant, ref.table, plan.request_id, plan.received_us,
                              rows).encode()
        entries.append(LogEntry(payload, len(rows)))
        plan.sizes[ref] = len(payload)
    return entries, index


def _batch(plan: WritePlan, ref: TableRef) -> RecordBatch:
    records = plan.writes[ref]
    if isinstance(records, ArrowRows):  # read by Arrow: the columns are stored as they came
        return RecordBatch(ref.tenant, ref.table, plan.request_id, plan.received_us,
                           arrow=records.stored_table())
    array = plan.arrays.get(ref)
    if array is not None:
        return RecordBatch(ref.tenant, ref.table, plan.request_id, plan.received_us,
                           arrow=RecordBatch.arrow_table(
                               [r.data_id for r in records], [r.timestamp_us for r in records],
                               [r.upsert for r in records], array))
    return RecordBatch(ref.tenant, ref.table, plan.request_id, plan.received_us,
                       tuple((r.data_id, r.timestamp_us, r.payload, r.upsert) for r in records))


def count_writes(plan: WritePlan, into: dict[TableRef, TableState]) -> set[TableRef]:
    touched = set()
    for ref, size in plan.sizes.items():
        state = into.setdefault(ref, TableState(ref))
        state.records += plan.inserts.get(ref, 0) if ref.table != REJECTS_TABLE else len(
            plan.rejects)
        state.size_bytes += size
        touched.add(ref)
    return touched


def count_events(plan: WritePlan, into: dict[TableRef, TableState]) -> set[TableRef]:
    touched = set()
    for ref, (dups, rejected) in plan.event_counts().items():
        state = into.setdefault(ref, TableState(ref))
        state.duplicates += dups
        state.rejected += rejected
        touched.add(ref)
    return touched


def copy_counts(state: TableState) -> TableState:
    copy = TableState(state.ref)
    copy.records, copy.size_bytes = state.records, state.size_bytes
    copy.duplicates, copy.rejected = state.duplicates, state.rejected
    return copy
