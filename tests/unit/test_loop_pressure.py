"""The admission limits that follow the event loop's lag (lakehouse/loop_pressure.py), as a
table of cases, and the one-log-line-a-second rule for shed answers (api/middleware.py)."""

from __future__ import annotations

import pytest

from api.middleware import ShedLines, request_id
from lakehouse.loop_pressure import Bounds, Limits, adjust

BOUNDS = Bounds(writes=64, queries=8, target_lag_s=0.02)


@pytest.mark.parametrize(("limits", "lag_s", "expected"), [
    # Late: writes lose a quarter, queries half.
    (Limits(64, 8), 0.5, Limits(48, 4)),
    (Limits(48, 6), 0.021, Limits(36, 4)),
    # Never below the floors.
    (Limits(20, 6), 1.0, Limits(16, 4)),
    (Limits(16, 4), 1.0, Limits(16, 4)),
    # In between half the target and the target: unchanged.
    (Limits(36, 4), 0.015, Limits(36, 4)),
    (Limits(36, 4), 0.02, Limits(36, 4)),
    # Keeping up: writes grow by an eighth (at least one), queries by one, up to the limits.
    (Limits(16, 4), 0.0, Limits(18, 5)),
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


def test_request_ids_are_distinct_hex() -> None:
    ids = {request_id() for _ in range(10_000)}
    assert len(ids) == 10_000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
