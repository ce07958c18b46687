"""The thread that decides when to flush (lakehouse/ingest/flush_trigger.py), given what a flush
is: a request is answered with the run's summary; a conflict plans again at once; any other
failure is answered as an error and the next round tries again. On the in-memory WAL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lakehouse.errors import Conflict
from lakehouse.ingest.admission import BacklogLimits
from lakehouse.ingest.flush_policy import FlushThresholds
from lakehouse.ingest.flush_trigger import FlushTrigger
from lakehouse.ingest.service import IngestLimits, IngestService
from lakehouse.wal.memory import MemoryWal


@pytest.fixture
def service() -> Iterator[IngestService]:
    built = IngestService(MemoryWal(), IngestLimits(BacklogLimits(1 << 30, 3600.0), 0.0, 0.0))
    built.write("acme", [{"data_id": "a", "payload": {"n": 1}}]).answer(timeout_s=10)
    yield built
    built.close()


def _trigger(service: IngestService, outcomes: list[Any]) -> tuple[FlushTrigger, list[str]]:
    reasons: list[str] = []

    def flush(reason: str) -> dict[str, Any]:
        reasons.append(reason)
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return dict(outcome)

    limits = FlushThresholds(max_bytes=1 << 30, max_rows=10**9, max_age_s=3600.0)
    return FlushTrigger(service, flush, limits, interval_s=0.05), reasons


def test_a_request_is_answered_with_the_summary_and_a_conflict_plans_again(
        service: IngestService) -> None:
    trigger, reasons = _trigger(service, [Conflict("a load changed the types"),
                                          {"rows": 3, "snapshot": 7}])
    trigger.start()
    try:
        assert trigger.request().result(timeout=10) == {"rows": 3, "snapshot": 7}
        assert len(reasons) == 2
    finally:
        trigger._stopping = True  # stop without the last flush: no outcome is left for it
        trigger._wake.set()


def test_a_failure_is_answered_as_an_error(service: IngestService) -> None:
    trigger, _ = _trigger(service, [OSError("disk gone"), {"rows": 0, "snapshot": None}])
    trigger.start()
    try:
        answer = trigger.request().result(timeout=10)
        assert answer["rows"] == 0 and "OSError: disk gone" in answer["error"]
    finally:
        trigger.stop(timeout_s=10)  # the stop flushes what is left: the second outcome
