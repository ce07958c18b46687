"""The single-node threshold learned from measured runs: a table of cases (sizes in MiB, times
in seconds)."""

from __future__ import annotations

import pytest

from lakehouse.optimizer.split_learning import (
    CEILING_BYTES,
    FLOOR_BYTES,
    MIB,
    Learned,
    Run,
    learn,
)

T = 512 * MIB
# Smaller single-node runs at the same rate as the 400 MiB ones below (no fixed cost).
SMALL = [Run(100 * MIB, 0.25, False)]


def _runs(split: bool, mib: float, seconds: float, n: int = 3) -> list[Run]:
    return [Run(int(mib * MIB), seconds, split) for _ in range(n)]


@pytest.mark.parametrize(("runs", "threshold", "expected", "says"), [
    # Too few of either kind: nothing concluded.
    ([], T, T, "too few runs"),
    (_runs(True, 1024, 2.0), T, T, "too few runs"),
    (_runs(True, 1024, 2.0) + _runs(False, 64, 0.1), T, T, "too few runs"),  # not near
    # Split reads slower than single-node near the threshold: raised past the largest split.
    (SMALL + _runs(True, 1024, 4.0) + _runs(False, 400, 1.0), T, 2048 * MIB, "does not pay"),
    # Only a little faster (under PAYS): not worth it either.
    (SMALL + _runs(True, 1024, 2.5) + _runs(False, 400, 1.0), T, 2048 * MIB, "does not pay"),
    # Faster, not by much: holds.
    (SMALL + _runs(True, 1024, 2.0) + _runs(False, 400, 1.0), T, T, "holds"),
    # Much faster: smaller queries split too, never under the floor.
    (SMALL + _runs(True, 1024, 1.0) + _runs(False, 400, 1.0), T, T // 2, "split too"),
    (_runs(True, 64, 0.1) + _runs(False, 8, 1.0) + [Run(2 * MIB, 0.25, False)], FLOOR_BYTES,
     FLOOR_BYTES, "holds"),
    # One size of single-node runs: their fixed cost cannot be told apart yet.
    (_runs(True, 1024, 1.0) + _runs(False, 400, 1.0), T, T, "one size only"),
    # Single-node runs of two sizes: their fixed cost is not taken for slowness (0.9 s
    # fixed, 1 ms a MiB: 1,024 MiB would take 1.92 s on one node).
    (_runs(False, 100, 1.0) + _runs(False, 400, 1.3) + _runs(True, 1024, 1.5), T, T, "holds"),
    (_runs(False, 100, 1.0) + _runs(False, 400, 1.3) + _runs(True, 1024, 1.8), T,
     2048 * MIB, "does not pay"),
    # Never past the ceiling.
    (_runs(True, 2**49 / MIB, 1e6) + _runs(False, 2**48 / MIB, 1.0)
     + [Run(2**47, 0.5, False)], CEILING_BYTES, CEILING_BYTES, "holds"),
])
def test_the_threshold_follows_the_measured_rates(runs: list[Run], threshold: int,
                                                  expected: int, says: str) -> None:
    found = learn(runs, threshold)
    assert isinstance(found, Learned)
    assert found.threshold_bytes == expected
    assert says in found.reason
    assert found.to_json()["single_node_threshold_mb"] == expected / MIB
