"""Duplicates and conflicts by data_id (lakehouse/ingest/dedupe.py), as a table of cases over the
in-memory WAL: a data_id seen earlier in the request, in a write in flight, stored in the log, or
flushed out of it."""

from __future__ import annotations

from concurrent.futures import Future
from decimal import Decimal
from typing import Any

import pytest

from lakehouse.ingest.batch import RecordBatch, StoredRecord
from lakehouse.ingest.dedupe import Deduper
from lakehouse.ingest.inflight import InflightWrite, reserve
from lakehouse.ingest.keys import TableRef, record_key
from lakehouse.ingest.plan import WritePlan
from lakehouse.ingest.records import IncomingRecord
from lakehouse.wal.memory import MemoryWal
from lakehouse.wal.port import LogEntry, StoredEntry

REF = TableRef("acme", "records")
SAME, OTHER = {"n": 1}, {"n": 2}


class FlushedFiles:
    """Records the flush wrote out and the log trimmed, by data_id (a FlushedSource)."""

    def __init__(self, records: dict[str, StoredRecord]) -> None:
        self._records = records

    def get(self, ref: TableRef, data_id: str, seq: int) -> StoredRecord | None:
        found = self._records.get(data_id)
        return found if found is not None and found.seq == seq and ref == REF else None


def _record(data_id: str, payload: dict[str, Any], *, index: int = 1,
            upsert: bool = False) -> IncomingRecord:
    return IncomingRecord(index, data_id, REF.table, 0, payload, None, upsert)


def _stored(wal: MemoryWal, data_ids: list[str]) -> int:
    """Write `data_ids` with payload SAME as one entry, as the commit would; its first seq."""
    rows = tuple((data_id, 0, SAME, False) for data_id in data_ids)
    first = wal.last_seq() + 1
    wal.append([LogEntry(RecordBatch(REF.tenant, REF.table, None, 0, rows).encode(), len(rows))],
               {record_key(REF, d): (first + i).to_bytes(8, "big")
                for i, d in enumerate(data_ids)})
    return first


class World:
    """A log that held "flushed", "typed" and "lost" (seqs 1-3, trimmed since; the first two
    are in the files, "typed" in an exact column) and holds "stored" (seq 4); and "moving" in a
    write in flight."""

    def __init__(self) -> None:
        self.wal = MemoryWal()
        self.wal.append([LogEntry(b"trimmed", 3)],
                        {record_key(REF, data_id): seq.to_bytes(8, "big")
                         for seq, data_id in enumerate(["flushed", "typed", "lost"], 1)})
        self.wal.trim(3)
        _stored(self.wal, ["stored"])
        self.flushed = FlushedFiles({
            "flushed": StoredRecord(1, "flushed", 0, SAME, False),
            "typed": StoredRecord(2, "typed", 0, {"n": Decimal("1.50")}, False)})
        self.future: Future[int] = Future()
        self.inflight: dict[bytes, InflightWrite] = {}
        reserve(self.inflight, self.future,
                [([record_key(REF, "before"), record_key(REF, "moving")],
                  [_record("before", OTHER, index=0), _record("moving", SAME, index=1)])])

    def decide(self, record: IncomingRecord, earlier: IncomingRecord | None = None,
               ) -> tuple[WritePlan, str, int | None, str | None]:
        plan = WritePlan(REF.tenant, None, 0, [])
        key = record_key(REF, record.data_id)
        [stored] = self.wal.index_get([key])
        result = Deduper(self.wal, self.inflight, self.flushed).decide(
            plan, record, key, stored, earlier)
        if result is None:
            return plan, "write", None, None
        return plan, result.status, result.seq, result.code


@pytest.fixture
def world() -> World:
    return World()


@pytest.mark.parametrize(
    ("data_id", "payload", "upsert", "earlier", "status", "seq"),
    [
        ("new", SAME, False, None, "write", None),
        ("new", SAME, False, SAME, "duplicate", None),  # earlier in the request, same payload
        ("new", OTHER, False, SAME, "conflict", None),  # ... a different one
        ("new", OTHER, True, SAME, "conflict", None),  # an upsert cannot replace its own request
        ("moving", SAME, False, None, "duplicate", None),  # in flight, same payload
        ("moving", OTHER, False, None, "conflict", None),  # ... a different one
        ("moving", OTHER, True, None, "conflict", None),  # ... even to an upsert: retry after
        ("stored", SAME, False, None, "duplicate", 4),
        ("stored", {"n": 1.0, "gone": None}, False, None, "duplicate", 4),  # compared by value
        ("stored", OTHER, False, None, "conflict", 4),
        ("stored", OTHER, True, None, "write", None),  # an upsert replaces it
        ("flushed", SAME, False, None, "duplicate", 1),  # compared with the flushed version
        ("flushed", OTHER, False, None, "conflict", 1),
        ("flushed", OTHER, True, None, "write", None),
        ("typed", {"n": "1.5"}, False, None, "duplicate", 2),  # read as the column's type
        ("typed", {"n": "1.6"}, False, None, "conflict", 2),
        ("lost", OTHER, False, None, "duplicate", 3),  # flushed out and not found: seen is seen
    ],
)
def test_decision(world: World, data_id: str, payload: dict[str, Any], upsert: bool,
                  earlier: dict[str, Any] | None, status: str, seq: int | None) -> None:
    record = _record(data_id, payload, upsert=upsert)
    first = None if earlier is None else _record(data_id, earlier, index=0)
    _plan, got, got_seq, code = world.decide(record, first)
    assert (got, got_seq) == (status, seq)
    assert code == ("data_id_conflict" if status == "conflict" else None)


def test_a_repeat_in_the_request_takes_the_answer_of_its_first(world: World) -> None:
    plan, status, _seq, _code = world.decide(_record("new", SAME, index=3),
                                             _record("new", SAME, index=1))
    assert status == "duplicate"
    assert plan.aliases == {3: 1}


def test_a_duplicate_of_a_write_in_flight_waits_for_it(world: World) -> None:
    plan, status, _seq, _code = world.decide(_record("moving", SAME, index=7))
    assert status == "duplicate"
    assert plan.waits == [(7, world.future, 1)]  # the second record of that write


class CountingWal(MemoryWal):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[int] = []

    def entry_containing(self, seq: int) -> StoredEntry | None:
        self.reads.append(seq)
        return super().entry_containing(seq)


def test_a_stored_entry_is_read_once_for_the_whole_request() -> None:
    wal = CountingWal()
    first = _stored(wal, ["a", "b", "c"])
    deduper = Deduper(wal, {}, None)
    assert [deduper.stored_payload(first + i) for i in range(3)] == [SAME] * 3
    assert wal.reads == [first]
    assert deduper.stored_payload(first + 3) is None  # not in the log
