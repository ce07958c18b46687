"""When the keeper deletes a mirror's rows of replaced files (lakehouse/serving/prune.py): a
table of cases, each a state, what is live now, the time, and what the mirror holds."""

from __future__ import annotations

import pytest

from lakehouse.serving.prune import PruneState, prune

GRACE = 300.0
CASES = [
    # state, live now, now, held (first look) → files deleted, files still waiting
    (PruneState(), {1, 2}, 0.0, {1, 2}, (), {}),
    (PruneState(), {3}, 0.0, {1, 2, 3}, (), {1: 0.0, 2: 0.0}),  # first look: wait, not delete
    (PruneState(), {3}, 0.0, None, (), {}),  # not asked (an empty mirror): nothing known
    (PruneState(frozenset({1, 2})), {3}, 10.0, None, (), {1: 10.0, 2: 10.0}),
    (PruneState(frozenset({3}), {1: 10.0, 2: 10.0}), {3}, 309.0, None, (), {1: 10.0, 2: 10.0}),
    (PruneState(frozenset({3}), {1: 10.0, 2: 10.0}), {3}, 310.0, None, (1, 2), {}),
    (PruneState(frozenset({3}), {1: 10.0}), {4}, 400.0, None, (1,), {3: 400.0}),
    (PruneState(frozenset({3}), {1: 10.0}), {1, 3}, 400.0, None, (), {}),  # live again: kept
]


@pytest.mark.parametrize(("state", "live", "now", "held", "deleted", "waiting"), CASES)
def test_replaced_files_rows_go_once_no_query_can_read_them(
        state: PruneState, live: set[int], now: float, held: set[int] | None,
        deleted: tuple[int, ...], waiting: dict[int, float]) -> None:
    step = prune(state, frozenset(live), now, GRACE, frozenset(held) if held is not None
                 else None)
    assert step.delete == deleted
    assert dict(step.state.dead_since) == waiting
    assert step.state.live == frozenset(live)
