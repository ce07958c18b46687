"""Idempotency keys (lakehouse/ingest/replay.py): a request sent again with the same key gets the
first one's answer, marked as a replay, and writes nothing; on the in-memory WAL."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import pytest

from lakehouse.ingest.admission import BacklogLimits, IngestLimits
from lakehouse.ingest.arrow_read import read_ndjson
from lakehouse.ingest.keys import TableRef, request_key
from lakehouse.ingest.plan import PendingWrite, WritePlan, render_answer
from lakehouse.ingest.records import IncomingRecord
from lakehouse.ingest.replay import Replays
from lakehouse.ingest.service import IngestService
from lakehouse.wal.memory import MemoryWal
from lakehouse.wal.port import LogEntry

UNLIMITED = IngestLimits(BacklogLimits(1 << 30, 3600.0), 0.0, 0.0)
FIRST = [{"data_id": "a", "payload": {"n": 1}}, {"data_id": "b", "payload": {"n": 2}}]
DIFFERENT = [{"data_id": "c", "payload": {"n": 3}}]


class GatedWal(MemoryWal):
    """Appends wait until the test opens the gate: a write stays in flight meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def append(self, entries: Sequence[LogEntry],
               index: Mapping[bytes, bytes | None] | None = None) -> int:
        self.gate.wait(10)
        return super().append(entries, index)


@pytest.fixture
def wal() -> GatedWal:
    return GatedWal()


@pytest.fixture
def service(wal: GatedWal) -> Iterator[IngestService]:
    built = IngestService(wal, UNLIMITED)
    yield built
    built.close()


def _replayed(answer: dict[str, Any]) -> dict[str, Any]:
    return {**answer, "status": "duplicate", "replayed": True}


def test_the_same_key_twice_gets_the_first_answer_as_a_replay(
        wal: GatedWal, service: IngestService) -> None:
    first = service.write("acme", FIRST, idempotency_key="k1").answer(timeout_s=10)
    assert (first["status"], first["accepted"]) == ("durable", 2)
    last_seq = wal.last_seq()
    again = service.write("acme", DIFFERENT, idempotency_key="k1").answer(timeout_s=10)
    assert again == _replayed(first)
    assert wal.last_seq() == last_seq  # nothing written
    batch = read_ndjson(b'{"data_id": "c", "payload": {"n": 3}}\n'
                        b'{"data_id": "d", "payload": {"n": 4}}\n', "records", 10)
    assert batch is not None
    by_arrow = service.write_arrow("acme", batch, idempotency_key="k1")
    assert by_arrow is not None and by_arrow.answer(timeout_s=10) == _replayed(first)
    assert wal.last_seq() == last_seq


def test_a_repeat_while_the_first_is_in_flight_waits_for_its_answer(
        wal: GatedWal, service: IngestService) -> None:
    wal.gate.clear()
    pending = service.write("acme", FIRST, idempotency_key="k1")
    repeat = service.write("acme", DIFFERENT, idempotency_key="k1")
    assert repeat.future is pending.future  # the same write, not a second one
    wal.gate.set()
    first = pending.answer(timeout_s=10)
    assert repeat.answer(timeout_s=10) == _replayed(first)
    assert service.table_stats("acme")[0]["records"] == 2


def test_the_answer_outlives_a_restart(wal: GatedWal, service: IngestService) -> None:
    first = service.write("acme", FIRST, idempotency_key="k1").answer(timeout_s=10)
    service.close()
    again = IngestService(wal, UNLIMITED)
    try:
        assert again.write("acme", DIFFERENT, idempotency_key="k1").answer(
            timeout_s=10) == _replayed(first)
    finally:
        again.close()


def test_keys_are_the_tenants_own(service: IngestService) -> None:
    service.write("acme", FIRST, idempotency_key="k1").answer(timeout_s=10)
    other = service.write("globex", FIRST, idempotency_key="k1").answer(timeout_s=10)
    assert (other["status"], other["accepted"], "replayed" in other) == ("durable", 2, False)


def test_a_request_in_flight_is_replayed_until_it_is_done() -> None:
    replays = Replays(MemoryWal())
    plan = WritePlan("acme", None, 0, [], request_key=request_key("acme", "k1"))
    plan.writes[TableRef("acme", "records")] = [
        IncomingRecord(0, "a", "records", 0, {"n": 1}, None, False)]
    future: Future[int] = Future()
    replays.started(PendingWrite(plan, future, render_answer))
    repeat = replays.replay("acme", "k1")
    assert repeat is not None and repeat.future is future
    future.set_result(7)
    assert repeat.answer() == _replayed(render_answer(plan, 7))
    replays.done(plan)  # ... failed, say: its answer was never stored
    assert replays.replay("acme", "k1") is None  # so a repeat writes anew
