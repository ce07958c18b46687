"""When the keeper deletes a mirror's rows of replaced files (lakehouse/serving/prune.py): a
table of cases, each a state, what is live now, the time, and what the mirror holds."""

from __future__ import annotations

import pytest

from lakehouse.serving.prune import PruneState, prune

GRACE = 300.0
CASES = [
    # state, live now, held by the mirror, now → files deleted, files still waiting
    (PruneState(), {1, 2}, {1, 2}, 0.0, (), {}),
    (PruneState(), {3}, {1, 2, 3}, 0.0, (), {1: 0.0, 2: 0.0}),  # first seen dead: wait
    (PruneState(), {3}, set(), 0.0, (), {}),  # an empty mirror
    (PruneState({1: 10.0, 2: 10.0}), {3}, {1, 2, 3}, 309.0, (), {1: 10.0, 2: 10.0}),
    (PruneState({1: 10.0, 2: 10.0}), {3}, {1, 2, 3}, 310.0, (1, 2), {}),
    (PruneState({1: 10.0}), {4}, {1, 3, 4}, 400.0, (1,), {3: 400.0}),
    (PruneState({1: 10.0}), {1, 3}, {1, 3}, 400.0, (), {}),  # live again: kept
    # A file copied after it was replaced (a late backfill) is found and goes in its turn.
    (PruneState(), {5}, {5, 2}, 50.0, (), {2: 50.0}),
    (PruneState({1: 10.0}), {3}, {3}, 400.0, (), {}),  # gone already: forgotten
]


@pytest.mark.parametrize(("state", "live", "held", "now", "deleted", "waiting"), CASES)
def test_replaced_files_rows_go_once_no_query_can_read_them(
        state: PruneState, live: set[int], held: set[int], now: float,
        deleted: tuple[int, ...], waiting: dict[int, float]) -> None:
    step = prune(state, frozenset(live), frozenset(held), now, GRACE)
    assert step.delete == deleted
    assert dict(step.state.dead_since) == waiting
