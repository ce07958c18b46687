"""When the control plane flushes: a table of cases over the pure decision."""

from __future__ import annotations

import pytest

from lakehouse.ingest.flush_policy import Action, Backlog, FlushThresholds, decide

LIMITS = FlushThresholds(max_bytes=1000, max_rows=100, max_age_s=60)


@pytest.mark.parametrize(
    ("backlog", "action", "why"),
    [
        (Backlog(0, 0, 0), Action.WAIT, "nothing"),
        (Backlog(0, 0, 0, shutting_down=True), Action.WAIT, "nothing"),
        (Backlog(5, 10, 1), Action.WAIT, "below"),
        (Backlog(5, 1000, 1), Action.FLUSH, "size"),
        (Backlog(100, 10, 1), Action.FLUSH, "rows"),
        (Backlog(5, 10, 60), Action.FLUSH, "age"),
        (Backlog(5, 10, 1, requested=True), Action.FLUSH, "requested"),
        (Backlog(5, 10, 1, shutting_down=True), Action.FLUSH, "shutdown"),
    ],
)
def test_decide(backlog: Backlog, action: Action, why: str) -> None:
    decided, reason = decide(backlog, LIMITS)
    assert decided is action
    assert why in reason
