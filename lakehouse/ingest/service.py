"""The write path: check, deduplicate, evolve the schema, group-commit, then acknowledge.

Everything before the commit runs under one lock and only decides; the commit thread writes. A
record's answer is given only after the write that holds it is durable.

This module coordinates; the parts it holds the lock over are their own modules: `recovery`
(start-up), `schemas` and `declared_cache` (what records are checked against), `admission`,
`dedupe` and `replay` (idempotency keys).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import orjson

from lakehouse.catalog.declarations import TableDeclarations
from lakehouse.errors import Conflict
from lakehouse.ingest.admission import Admission, Backlog, IngestLimits
from lakehouse.ingest.arrow_read import ArrowBatch, ArrowRows
from lakehouse.ingest.declared_cache import DeclaredCache
from lakehouse.ingest.dedupe import Deduper, FlushedSource
from lakehouse.ingest.entries import (
    REJECTS_TABLE,
    copy_counts,
    count_events,
    count_writes,
    plan_entries,
)
from lakehouse.ingest.group_commit import GroupCommitter, Prepared
from lakehouse.ingest.inflight import InflightWrite, release, reserve
from lakehouse.ingest.keys import TableRef, record_prefix, request_key, stats_key
from lakehouse.ingest.meter import NoMeter, WriteMeter
from lakehouse.ingest.plan import PendingWrite, RecordResult, WritePlan, render_answer
from lakehouse.ingest.records import IncomingRecord, Rejected, check_records
from lakehouse.ingest.recovery import recover
from lakehouse.ingest.replay import Replays
from lakehouse.ingest.schemas import CatalogSchema, SchemaCache
from lakehouse.ingest.state import TableState, table_state
from lakehouse.ingest.tail import MAX_BYTES, ArrowTail
from lakehouse.ingest.type_checks import Items, check_declared, check_types
from lakehouse.schema import FieldType, evolve
from lakehouse.schema.declared import DeclaredTable
from lakehouse.wal.port import WriteAheadLog

log = logging.getLogger(__name__)

__all__ = ["REJECTS_TABLE", "FlushedSource", "IngestLimits", "IngestService", "WritePathSchema"]

SETTLE_TIMEOUT_S = 5.0  # a read waits this long at most for a write being synced


class IngestService:
    def __init__(self, wal: WriteAheadLog, limits: IngestLimits,
                 clock: Callable[[], float] = time.time,
                 declarations: TableDeclarations | None = None,
                 meter: WriteMeter | None = None, *, tail_bytes: int = MAX_BYTES) -> None:
        self.wal = wal
        self._meter = meter or NoMeter()
        # Where records trimmed from the log are read back (the Parquet files), once flushing.
        self.flushed_source: FlushedSource | None = None
        self._admission = Admission(limits, clock)
        self._schemas = SchemaCache(wal)
        self._declared = DeclaredCache(declarations, clock)
        self._replays = Replays(wal)
        self._clock = clock
        self._lock = threading.RLock()  # a done-callback may run inline under it
        self._inflight: dict[bytes, InflightWrite] = {}  # record key → the write holding it
        self.committer = GroupCommitter(wal, meter=self._meter)
        self.tail = ArrowTail(tail_bytes)  # unflushed entries as Arrow, for queries
        recovered = recover(wal)
        self._tables: dict[TableRef, TableState] = recovered.tables
        self._durable_counts: dict[TableRef, TableState] = recovered.durable_counts

    @property
    def limits(self) -> IngestLimits:
        return self._admission.limits

    @property
    def declarations(self) -> TableDeclarations | None:
        return self._declared.declarations

    @property
    def catalog_schema(self) -> CatalogSchema | None:
        """The catalog's schema of a table, for tables the log has not seen yet."""
        return self._schemas.catalog_schema

    @catalog_schema.setter
    def catalog_schema(self, read: CatalogSchema | None) -> None:
        self._schemas.catalog_schema = read

    def _table(self, ref: TableRef) -> TableState:
        return table_state(self._tables, ref)

    def _schema(self, ref: TableRef) -> FieldType | None:
        return self._schemas.of(self._table(ref))

    # --- schemas ----------------------------------------------------------------------------
    def adopt_schema(self, ref: TableRef, committed: FieldType | None) -> None:
        """The catalog's schema of `ref` is now `committed` (a flush or load committed it)."""
        with self._lock:
            self._schemas.adopt(self._table(ref), committed)

    def refresh_schemas(self) -> None:
        """Take the catalog's schema of every table this process knows, reading the catalog
        outside the lock (a load run by another process changes it without telling us)."""
        if not self._schemas.reads_catalog:
            return
        with self._lock:
            refs = [ref for ref, state in self._tables.items() if state.schema_loaded]
        for ref, committed in self._schemas.committed(refs):
            self.adopt_schema(ref, committed)

    @contextlib.contextmanager
    def schema_guard(self, ref: TableRef, planned: FieldType | None) -> Iterator[None]:
        """Records to `ref` wait while a load commits: Conflict if they changed its schema
        since the load planned against `planned`; afterwards the catalog's schema is taken."""
        with self._lock:
            state = self._table(ref)
            if self._schemas.of(state) != planned:
                raise Conflict("records written meanwhile changed the table's columns; load "
                               "again", code="table_changed", details={"table": ref.table})
            yield
            self._schemas.adopt_catalog(state)

    # --- admission --------------------------------------------------------------------------
    def settle(self, key: bytes, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
        """Wait until a write of this record key that is in flight is done (durable or failed)."""
        with self._lock:
            held = self._inflight.get(key)
        if held is not None:
            # Failed or slow, the caller reads again and finds out either way.
            with contextlib.suppress(Exception):
                held.future.result(timeout_s)

    def backlog(self) -> Backlog:
        now_us = int(self._clock() * 1_000_000)
        oldest = [t.oldest_unflushed_us() for t in self._tables.values()]
        known = [o for o in oldest if o is not None]
        age = (now_us - min(known)) / 1_000_000 if known else 0.0
        return Backlog(sum(t.unflushed_bytes for t in self._tables.values()), age)

    # --- the write path ---------------------------------------------------------------------
    def write(self, tenant: str, raws: list[Any], *, request_id: str | None = None,
              idempotency_key: str | None = None, default_table: str = "records",
              pre_rejected: Iterable[Rejected] = (), skip: set[int] | frozenset[int] = frozenset(),
              keep_rejects: bool = True) -> PendingWrite:
        """Check and queue `raws` for a durable write; `answer()` on the result waits for it.

        `pre_rejected` are records the caller already found bad (e.g. unparsable NDJSON lines,
        whose positions in `raws` are in `skip`). Rejected records go to the tenant's
        `_rejects` table unless `keep_rejects` is false.
        """
        received_us = int(self._clock() * 1_000_000)
        good, bad = check_records(raws, received_us, default_table, typed=len(raws) == 1)
        bad = sorted([*(b for b in bad if b.index not in skip), *pre_rejected],
                     key=lambda r: r.index)
        with self._lock:
            if idempotency_key is not None and (
                    replay := self._replays.replay(tenant, idempotency_key)) is not None:
                return replay
            plan = self._admitted(tenant, request_id, received_us, idempotency_key,
                                  len(good) + len(bad))
            self._plan_records(plan, good)
            for rejected in bad:
                plan.results.append(RecordResult(rejected.index, rejected.data_id,
                                                 rejected.table, "rejected",
                                                 reason=rejected.reason, code=rejected.code))
                plan.rejects.append(rejected)
            if not keep_rejects:
                plan.rejects.clear()
            return self._queue(plan)

    def write_arrow(self, tenant: str, batch: ArrowBatch, *, request_id: str | None = None,
                    idempotency_key: str | None = None) -> PendingWrite | None:
        """Queue a batch read and checked by Arrow at once (see arrow_read), as `write` would;
        None, having changed nothing, if it needs `write`'s record-by-record decisions after all:
        a data_id already stored or in flight, a declared table, types that do not fit."""
        received_us = int(self._clock() * 1_000_000)
        ref = TableRef(tenant, batch.table)
        prefix = record_prefix(ref)
        data_ids: list[str] = batch.data_ids.to_pylist()
        keys = [prefix + data_id.encode() for data_id in data_ids]
        with self._lock:
            if idempotency_key is not None and (
                    replay := self._replays.replay(tenant, idempotency_key)) is not None:
                return replay
            if self.declared(ref) is not None or not self._inflight.keys().isdisjoint(keys):
                return None
            if any(stored is not None for stored in self.wal.index_get(keys)):
                return None
            schema = self._schema(ref)
            evolution = evolve(schema, batch.payload_type)
            if evolution.conflicts or evolution.schema.exact:  # exact: values to convert
                return None
            plan = self._admitted(tenant, request_id, received_us, idempotency_key, len(keys))
            if evolution.changed or schema is None:
                plan.schemas[ref] = evolution.schema
            plan.writes[ref] = ArrowRows(batch, data_ids, received_us)
            plan.keys[ref] = keys
            plan.inserts[ref] = len(keys)
            return self._queue(plan)

    def _admitted(self, tenant: str, request_id: str | None, received_us: int,
                  idempotency_key: str | None, records: int) -> WritePlan:
        """Under the lock, after the replay check, what both write entry points share:
        admission (the backlog, the tenant's rate; a 429/503 if refused) and the write's empty
        plan."""
        self._admission.admit(tenant, records, self.backlog())
        plan = WritePlan(tenant, request_id, received_us, [])
        if idempotency_key is not None:
            plan.request_key = request_key(tenant, idempotency_key)
        return plan

    def _queue(self, plan: WritePlan) -> PendingWrite:
        """Hand a decided plan to the committer (under the lock); its answer waits for it."""
        for ref, schema in plan.schemas.items():
            # Visible to the next request at once; reloaded from the WAL if this write fails.
            self._schemas.decided(self._table(ref), schema)
        future = None
        if plan.width or plan.request_key is not None:
            future = self.committer.submit(plan.width, lambda first: self._prepare(plan, first))
            reserve(self._inflight, future,
                    [(plan.keys[ref], records) for ref, records in plan.writes.items()])
        else:
            count_events(plan, self._tables)
            count_events(plan, self._durable_counts)
        pending = PendingWrite(plan, future, render_answer)
        self._replays.started(pending)
        if future is not None:
            # Last: a write that failed at once runs this inline, and it releases what the
            # lines above reserved.
            future.add_done_callback(lambda f: self._on_commit(plan, f))
        return pending

    def _plan_records(self, plan: WritePlan, good: list[IncomingRecord]) -> None:
        refs = {table: TableRef(plan.tenant, table) for table in {r.table for r in good}}
        prefixes = {table: record_prefix(ref) for table, ref in refs.items()}
        keys = [prefixes[r.table] + r.data_id.encode() for r in good]
        lookup = [k for k in keys if k not in self._inflight]
        existing = dict(zip(lookup, self.wal.index_get(lookup), strict=True)) if lookup else {}
        seen: dict[bytes, IncomingRecord] = {}
        candidates: dict[str, list[tuple[IncomingRecord, bytes]]] = {}
        deduper = Deduper(self.wal, self._inflight, self.flushed_source)
        for record, key in zip(good, keys, strict=True):
            result = deduper.decide(plan, record, key, existing.get(key), seen.get(key))
            if result is not None:
                plan.results.append(result)
                continue
            seen[key] = record
            candidates.setdefault(record.table, []).append((record, key))
        for table, items in candidates.items():
            ref = refs[table]
            accepted = self._check_types(plan, ref, items)
            if accepted:
                plan.inserts[ref] = sum(1 for _, key in accepted if existing.get(key) is None)
                plan.writes[ref] = [record for record, _ in accepted]
                plan.keys[ref] = [key for _, key in accepted]

    def declared(self, ref: TableRef) -> DeclaredTable | None:
        """The table's declaration, looked up at most every few seconds."""
        return self._declared.get(ref)

    def forget_declaration(self, ref: TableRef) -> None:
        with self._lock:
            self._declared.forget(ref)

    def _check_types(self, plan: WritePlan, ref: TableRef, items: Items) -> Items:
        """The records whose types fit the table (evolving it); the rest become rejects."""
        declared = self.declared(ref)
        if declared is not None:
            return check_declared(plan, ref, declared, self._schema(ref), items)
        return check_types(plan, ref, plan.schemas.get(ref, self._schema(ref)), items)

    def _prepare(self, plan: WritePlan, first_seq: int) -> Prepared:
        """Runs on the commit thread: the bytes to write, now that sequence numbers are known."""
        entries, index = plan_entries(plan, first_seq)
        with self._lock:
            # The counters as they will be once this write is durable, persisted with it.
            touched = count_writes(plan, self._durable_counts)
            touched |= count_events(plan, self._durable_counts)
            for ref in touched:
                index[stats_key(ref)] = self._durable_counts[ref].counters()
        if plan.request_key is not None:
            index[plan.request_key] = orjson.dumps(render_answer(plan, first_seq))
        return Prepared(entries, index)

    def _on_commit(self, plan: WritePlan, future: Future[int]) -> None:
        """Runs on the commit thread, in sequence order, once the write is durable (or failed)."""
        with self._lock:
            for keys in plan.keys.values():
                release(self._inflight, future, keys)
            self._replays.done(plan)
            if future.exception() is not None:
                # Nothing was written: forget decisions that assumed it would be.
                for ref in {*plan.writes, *plan.schemas, *plan.sizes}:
                    state = self._table(ref)
                    self._schemas.forget(state)
                    self._durable_counts[ref] = copy_counts(state)
                return
            seq = future.result()
            for ref, records in plan.writes.items():
                self._table(ref).add_entry(seq, len(records), plan.sizes[ref], plan.received_us)
                seq += len(records)
            if plan.rejects:
                ref = TableRef(plan.tenant, REJECTS_TABLE)
                self._table(ref).add_entry(seq, len(plan.rejects), plan.sizes[ref],
                                           plan.received_us)
            for ref in plan.sizes:
                self._table(ref)
            count_writes(plan, self._tables)
            count_events(plan, self._tables)
        self._measure(plan)

    def _measure(self, plan: WritePlan) -> None:
        rejected = sum(1 for r in plan.results if r.status == "rejected")
        try:
            self._meter.written(plan.tenant, sum(len(r) for r in plan.writes.values()),
                                sum(plan.sizes.values()), rejected)
        except Exception:  # a meter's fault must not fail a durable write
            log.exception("the write meter failed")

    # --- what readers and the flush need -----------------------------------------------------
    def unflushed_entries(self, ref: TableRef, before_seq: int | None) -> list[int]:
        with self._lock:
            state = self._tables.get(ref)
            return state.entries_before(before_seq) if state else []

    def unflushed_entries_after(self, ref: TableRef, seq: int) -> list[int]:
        """The table's unflushed entries above `seq` (a query's watermark), oldest first."""
        with self._lock:
            state = self._tables.get(ref)
            return state.entries_after(seq) if state else []

    def table_stats(self, tenant: str | None) -> list[dict[str, Any]]:
        now_us = int(self._clock() * 1_000_000)
        with self._lock:
            states = [s for ref, s in sorted(self._tables.items(), key=lambda kv: (
                kv[0].tenant, kv[0].table)) if tenant is None or ref.tenant == tenant]
            out = []
            for state in states:
                oldest = state.oldest_unflushed_us()
                out.append({
                    "tenant": state.ref.tenant, "table": state.ref.table,
                    "records": state.records, "bytes": state.size_bytes,
                    "unflushed_records": state.unflushed_records,
                    "unflushed_bytes": state.unflushed_bytes,
                    "oldest_unflushed_age_s": round((now_us - oldest) / 1e6, 3)
                    if oldest is not None else None,
                    "duplicates_refused": state.duplicates,
                    "rejected": state.rejected,
                })
            return out

    def table_schema(self, ref: TableRef) -> FieldType | None:
        with self._lock:
            return self._schema(ref)

    def unflushed_totals(self) -> tuple[int, int, float]:
        """(records, bytes, age of the oldest in seconds) waiting for the flush."""
        backlog = self.backlog()
        with self._lock:
            records = sum(t.unflushed_records for t in self._tables.values())
        return records, backlog.unflushed_bytes, backlog.oldest_unflushed_age_s

    def flushed_everywhere(self, through_seq: int) -> None:
        with self._lock:
            for state in self._tables.values():
                state.drop_through(through_seq)
        self.tail.forget_through(through_seq)

    def flushed(self, ref: TableRef, through_seq: int) -> None:
        """The storage layer committed this table's records up to `through_seq` to Parquet."""
        with self._lock:
            self._table(ref).drop_through(through_seq)
        self.tail.forget_through(through_seq, ref)

    def close(self) -> None:
        self.committer.close()


@dataclass(frozen=True)
class WritePathSchema:
    """What a load run in this process asks the write path (lakehouse.load.loader.LiveSchema)."""

    service: IngestService

    def schema(self, tenant: str, table: str) -> FieldType | None:
        return self.service.table_schema(TableRef(tenant, table))

    def guard(self, tenant: str, table: str, planned: FieldType | None,
              ) -> contextlib.AbstractContextManager[None]:
        return self.service.schema_guard(TableRef(tenant, table), planned)
