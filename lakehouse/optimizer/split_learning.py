"""The single-node threshold learned from the queries that ran: below it a query runs on one node,
above it its plan is split across the Dask workers. Whether splitting pays depends on the
machine (cores, workers, network), so the optimizer compares what it measured instead of
trusting a constant: for each split query, the time a single-node run of its size would have
taken (a line `seconds = fixed + bytes / rate` fitted to the single-node runs, so their fixed
cost is not taken for slowness) against the time it took.

- Splitting was not faster by `PAYS`: the threshold rises above the largest split query seen
  (twice it), and such queries run on one node from then on.
- Splitting was faster by `MUCH`: it pays below the threshold too, which is halved (never under
  `FLOOR_BYTES`).
- Otherwise, or with too few runs of either kind to tell (single-node ones near the threshold
  among them, and of at least two sizes), the threshold stays.

A pure decision (`learn`); lakehouse/executor/service.py feeds it the runs it finished and
applies what it answers to the service's cost model.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024
MIN_RUNS = 3  # of each kind, before anything is concluded
PAYS = 1.1  # split must read at least this much faster than single-node to be worth it
MUCH = 1.5  # faster than this: split smaller queries too
FLOOR_BYTES = 16 * MIB
CEILING_BYTES = 1 << 50  # no query reads more; "never split on this machine"
NEAR = 4  # single-node runs of at least threshold / NEAR are compared


@dataclass(frozen=True, slots=True)
class Run:
    bytes: int  # scanned
    seconds: float  # the whole run, planning to result
    split: bool  # its plan was distributed


@dataclass(frozen=True, slots=True)
class Learned:
    threshold_bytes: int
    reason: str
    single_mb_per_s: float | None = None
    split_mb_per_s: float | None = None
    speedup: float | None = None  # a single-node run's time over the split run's (median)

    def to_json(self) -> dict[str, Any]:
        return {"single_node_threshold_mb": self.threshold_bytes / MIB, "reason": self.reason,
                "single_mb_per_s": self.single_mb_per_s, "split_mb_per_s": self.split_mb_per_s,
                "speedup": self.speedup}


def _rate(runs: Sequence[Run]) -> float:
    return statistics.median(r.bytes / max(r.seconds, 1e-6) for r in runs) / MIB


def _single_seconds(single: Sequence[Run]) -> Callable[[int], float] | None:
    """How long a single-node run of so many bytes takes, fitted to the single-node runs; None
    while they are of one size (their fixed cost cannot be told from their rate) or the fit
    is not a cost that grows with size."""
    if len({r.bytes for r in single}) < 2:
        return None
    fit = statistics.linear_regression([float(r.bytes) for r in single],
                                       [r.seconds for r in single])
    if fit.slope <= 0:
        return None
    return lambda size: max(1e-6, fit.intercept + fit.slope * size)


def learn(runs: Sequence[Run], threshold: int) -> Learned:
    """The threshold the runs argue for (see the module's text)."""
    split = [r for r in runs if r.split and r.bytes > 0]
    single = [r for r in runs if not r.split and r.bytes > 0]
    near = [r for r in single if r.bytes >= threshold // NEAR]
    if len(split) < MIN_RUNS or len(near) < MIN_RUNS:
        return Learned(threshold, f"too few runs to compare: {len(split)} split, {len(near)} "
                                  f"single-node of at least {threshold // NEAR / MIB:g} MiB "
                                  f"(needs {MIN_RUNS} of each)")
    predict = _single_seconds(single)
    if predict is None:
        return Learned(threshold, "single-node runs of one size only (or no cost growing with "
                                  "size): their fixed cost cannot be told from their speed yet")
    speedup = statistics.median(predict(r.bytes) / max(r.seconds, 1e-6) for r in split)
    rates: dict[str, Any] = {"single_mb_per_s": round(_rate(near), 1),
                             "split_mb_per_s": round(_rate(split), 1),
                             "speedup": round(speedup, 3)}
    measured = (f"split queries took {1 / speedup:.2f}x the time one node would have "
                f"(single-node {rates['single_mb_per_s']:g} MiB/s near the threshold, split "
                f"{rates['split_mb_per_s']:g} MiB/s)")
    if speedup < PAYS:
        raised = min(CEILING_BYTES, max(threshold * 2, 2 * max(r.bytes for r in split)))
        if raised > threshold:
            return Learned(raised, f"{measured}: splitting does not pay here, so larger "
                                   "queries run on one node", **rates)
    elif speedup > MUCH and threshold > FLOOR_BYTES:
        return Learned(max(FLOOR_BYTES, threshold // 2),
                       f"{measured}: smaller queries are split too", **rates)
    return Learned(threshold, f"{measured}: the threshold holds", **rates)
