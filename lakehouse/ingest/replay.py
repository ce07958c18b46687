"""Idempotency keys: a request sent again with the key of an earlier one gets the earlier one's
answer, marked as a replay, and writes nothing.

The answer is stored in the log's index atomically with the write it answers (see the service's
`_prepare`); until that write is durable, a repeat waits for it through the write in flight.
"""

from __future__ import annotations

import orjson

from lakehouse.ingest.keys import request_key
from lakehouse.ingest.plan import PendingWrite, WritePlan, as_replay, render_answer
from lakehouse.wal.port import WriteAheadLog


class Replays:
    """Not thread-safe by itself: the ingest service checks, starts and ends requests under its
    lock, so a repeat can never slip between a write's start and its answer being stored."""

    def __init__(self, wal: WriteAheadLog) -> None:
        self._wal = wal
        self.inflight: dict[bytes, PendingWrite] = {}  # request key → the write answering it

    def replay(self, tenant: str, idempotency_key: str) -> PendingWrite | None:
        """The earlier request's answer to come, if there was one with this key."""
        key = request_key(tenant, idempotency_key)
        inflight = self.inflight.get(key)
        if inflight is not None:
            return PendingWrite(inflight.plan, inflight.future,
                                lambda plan, first: as_replay(render_answer(plan, first)))
        [stored] = self._wal.index_get([key])
        if stored is None:
            return None
        answer = as_replay(orjson.loads(stored))
        return PendingWrite(WritePlan(tenant, None, 0, []), None, lambda _p, _f: answer)

    def started(self, pending: PendingWrite) -> None:
        if pending.plan.request_key is not None:
            self.inflight[pending.plan.request_key] = pending

    def done(self, plan: WritePlan) -> None:
        """The write is durable (its answer is in the index) or failed (a repeat writes anew)."""
        if plan.request_key is not None:
            self.inflight.pop(plan.request_key, None)
