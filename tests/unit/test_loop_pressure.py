"""The admission limits that follow the event loop's lag (lakehouse/loop_pressure.py), as a
table of cases, and the one-log-line-a-second rule for shed answers (api/middleware.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from api.middleware import SHED_MARK, RequestContext, ShedLines, request_id
from lakehouse.loop_pressure import Bounds, Limits, adjust
from lakehouse.telemetry.metrics import Metrics

BOUNDS = Bounds(writes=64, queries=8, target_lag_s=0.02)


@pytest.mark.parametrize(("limits", "lag_s", "expected"), [
    # Just late: writes lose a quarter, queries half.
    (Limits(48, 6), 0.021, Limits(36, 3)),
    (Limits(64, 8), 0.025, Limits(48, 4)),
    # Later: in proportion to how far past the target (0.02 / 0.03 of 64 is 42.7) ...
    (Limits(64, 8), 0.03, Limits(42, 4)),
    (Limits(64, 8), 0.04, Limits(32, 4)),
    # … down to a quarter at four times the target and past it: a flood's start is met in a
    # window, not in ten (the writes floor is reached from 32 in one).
    (Limits(64, 8), 0.08, Limits(16, 2)),
    (Limits(64, 8), 0.5, Limits(16, 2)),
    (Limits(32, 8), 0.5, Limits(8, 2)),
    # Never below the floors.
    (Limits(20, 6), 1.0, Limits(8, 2)),
    (Limits(8, 2), 1.0, Limits(8, 2)),
    # In between half the target and the target: unchanged.
    (Limits(36, 4), 0.015, Limits(36, 4)),
    (Limits(36, 4), 0.02, Limits(36, 4)),
    # Keeping up: writes grow by an eighth (at least one), queries by one, up to the limits.
    (Limits(16, 4), 0.0, Limits(18, 5)),
    (Limits(8, 2), 0.0, Limits(9, 3)),
    (Limits(40, 3), 0.009, Limits(45, 4)),
    (Limits(60, 8), 0.0, Limits(64, 8)),
    (Limits(64, 8), 0.0, Limits(64, 8)),
])
def test_limits_follow_the_lag(limits: Limits, lag_s: float, expected: Limits) -> None:
    assert adjust(limits, lag_s, BOUNDS) == expected


def test_floors_never_exceed_the_configured_limits() -> None:
    small = Bounds(writes=2, queries=1, target_lag_s=0.02)
    assert small.start() == Limits(2, 1)
    assert adjust(Limits(2, 1), 1.0, small) == Limits(2, 1)
    assert adjust(Limits(1, 1), 0.0, small) == Limits(2, 1)


def test_one_shed_line_a_second_says_how_many_were_left_out() -> None:
    lines = ShedLines(interval_s=1.0)
    assert lines.take(10.0) == 0  # the first is logged
    assert [lines.take(t) for t in (10.1, 10.5, 10.99)] == [None, None, None]
    assert lines.take(11.0) == 3  # the next second's first says three were not
    assert lines.take(11.2) is None
    assert lines.take(50.0) == 1


def test_shed_answers_are_logged_one_a_second_and_other_refusals_each(
        caplog: pytest.LogCaptureFixture) -> None:
    """Answers the admission limits shed (marked in the scope) share a line a second; a 429 of
    anything else (the login throttle, say) keeps its own line."""

    def answering(shed: bool) -> Any:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if shed:
                scope[SHED_MARK] = True
            await send({"type": "http.response.start", "status": 429, "headers": []})
            await send({"type": "http.response.body", "body": b"{}"})
        return app

    async def call(app: Any) -> None:
        scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            return None

        await app(scope, receive, send)

    metrics = Metrics()
    shed = RequestContext(answering(True), "Tenant Node", metrics)
    throttled = RequestContext(answering(False), "Auth Gateway", metrics)

    async def scenario() -> None:
        for _ in range(5):
            await call(shed)
            await call(throttled)

    with caplog.at_level(logging.INFO, logger="api.access"):
        asyncio.run(scenario())
    lines = [r for r in caplog.records if r.getMessage() == "request"]
    assert [getattr(r, "status", None) for r in lines] == [429] * 6  # one shed, five throttled
    assert sum(1 for r in lines if not hasattr(r, "shed_unlogged")) == 6


def test_request_ids_are_distinct_hex() -> None:
    ids = {request_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
