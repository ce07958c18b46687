"""What one write request will do, decided before the commit, and the answer it gets.

A `WritePlan` is built under the ingest service's lock and read by the commit thread; the answer is
rendered from it once everything it waits for is durable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from lakehouse.errors import Conflict, InvalidInput
from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.records import IncomingRecord, Rejected
from lakehouse.schema import FieldType


@dataclass(frozen=True, slots=True)
class RecordResult:
    index: int
    data_id: str | None
    table: str | None
    status: str  # durable | duplicate | rejected | conflict
    seq: int | None = None
    reason: str | None = None
    code: str | None = None


@dataclass
class WritePlan:
    """What one request will write, decided under the lock."""

    tenant: str
    request_id: str | None
    received_us: int
    results: list[RecordResult]
    writes: dict[TableRef, Sequence[IncomingRecord]] = field(default_factory=dict)
    schemas: dict[TableRef, FieldType] = field(default_factory=dict)
    rejects: list[Rejected] = field(default_factory=list)
    waits: list[tuple[int, Future[int], int]] = field(default_factory=list)
    request_key: bytes | None = None
    inserts: dict[TableRef, int] = field(default_factory=dict)  # new data_ids (not replacements)
    aliases: dict[int, int] = field(default_factory=dict)  # repeated record → its first index
    keys: dict[TableRef, list[bytes]] = field(default_factory=dict)  # record keys of `writes`
    arrays: dict[TableRef, Any] = field(default_factory=dict)  # payloads typed by Arrow at once
    sizes: dict[TableRef, int] = field(default_factory=dict)  # encoded bytes, known at prepare

    def event_counts(self) -> dict[TableRef, tuple[int, int]]:
        """(duplicates, rejected) per table this request touched."""
        counts: dict[TableRef, tuple[int, int]] = {}
        for r in self.results:
            if r.status in ("duplicate", "rejected"):
                ref = TableRef(self.tenant, r.table or "records")
                dups, rejected = counts.get(ref, (0, 0))
                counts[ref] = (dups + (r.status == "duplicate"),
                               rejected + (r.status == "rejected"))
        return counts

    @property
    def width(self) -> int:
        return sum(len(r) for r in self.writes.values()) + len(self.rejects)


class PendingWrite:
    """A write in flight: `answer()` blocks until it is durable (or failed)."""

    def __init__(self, plan: WritePlan, future: Future[int] | None,
                 finish: Callable[[WritePlan, int | None], dict[str, Any]]) -> None:
        self.plan = plan
        self.future = future
        self._finish = finish

    def futures(self) -> list[Future[int]]:
        own = [self.future] if self.future is not None else []
        return own + [f for _, f, _ in self.plan.waits]

    def answer(self, timeout_s: float | None = None) -> dict[str, Any]:
        first = self.future.result(timeout_s) if self.future is not None else None
        for _, waited, _ in self.plan.waits:
            waited.result(timeout_s)
        return self._finish(self.plan, first)


def render_answer(plan: WritePlan, first_seq: int | None) -> dict[str, Any]:
    """The answer, once all is durable: counts, the sequence numbers each table's accepted
    records took (consecutive, in request order), and every record that was not written
    with why — or, for a one-record request, that record whatever happened to it."""
    ranges = []
    seqs: dict[int, int] = {}
    seq = first_seq or 0
    accepted = sum(len(records) for records in plan.writes.values())
    single = accepted + len(plan.results) == 1
    for ref, records in plan.writes.items():
        ranges.append({"table": ref.table, "count": len(records), "first_seq": seq,
                       "last_seq": seq + len(records) - 1})
        if single or plan.aliases:
            seqs.update((r.index, seq + i) for i, r in enumerate(records))
        seq += len(records)
    for index, waited, offset in plan.waits:
        seqs[index] = waited.result() + offset
    for index, earlier in plan.aliases.items():
        if earlier in seqs:
            seqs[index] = seqs[earlier]
    counts = {"accepted": accepted, "duplicate": 0, "rejected": 0, "conflict": 0}
    listed = []
    for r in plan.results:
        counts[r.status] += 1
        listed.append(result_json(replace(r, seq=seqs.get(r.index, r.seq))))
    if single and accepted:
        [record] = [r for records in plan.writes.values() for r in records]
        listed.append(result_json(RecordResult(record.index, record.data_id, record.table,
                                                "durable", seqs[record.index])))
    listed.sort(key=lambda r: int(r["index"]))
    return {"status": "durable", **counts, "tables": ranges, "records": listed}


def raw_record(record: IncomingRecord) -> dict[str, Any]:
    return {"data_id": record.data_id, "table": record.table, "payload": record.payload}


def result_json(r: RecordResult) -> dict[str, Any]:
    return {k: v for k, v in (("index", r.index), ("data_id", r.data_id), ("table", r.table),
                              ("status", r.status), ("seq", r.seq), ("error", r.code),
                              ("reason", r.reason)) if v is not None}


def reason_of(exc: InvalidInput) -> str:
    detail = exc.details.get("path") or exc.details.get("field")
    if not detail or str(detail) in exc.message:  # the message names it already
        return exc.message
    return f"{exc.message} ({detail})"


def as_replay(answer: dict[str, Any]) -> dict[str, Any]:
    return {**answer, "status": "duplicate", "replayed": True}


def conflict_error(result: dict[str, Any]) -> Conflict:
    return Conflict(str(result.get("reason", "conflict")), code="data_id_conflict",
                    details={k: result[k] for k in ("data_id", "table", "seq") if k in result})
