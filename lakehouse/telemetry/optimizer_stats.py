"""What the CBO Engine reports about itself: queries optimized, planning time, pruning, and how
far its row estimates were from the rows that came (q-error: max(est/actual, actual/est))."""

from __future__ import annotations

import statistics
import threading
from collections import deque
from typing import Any

WINDOW = 10_000


def q_error(estimated: int, actual: int) -> float:
    e, a = max(1, estimated), max(1, actual)
    return max(e / a, a / e)


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class OptimizerStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.optimized = 0
        self._planning: deque[float] = deque(maxlen=WINDOW)
        self._files_total = 0
        self._files_kept = 0
        self._q_errors: deque[float] = deque(maxlen=WINDOW)
        self._strategies: dict[str, int] = {}

    def planned(self, planning_ms: float, files_total: int, files_kept: int,
                strategy: str) -> None:
        with self._lock:
            self.optimized += 1
            self._planning.append(planning_ms)
            self._files_total += files_total
            self._files_kept += files_kept
            self._strategies[strategy] = self._strategies.get(strategy, 0) + 1

    def measured(self, pairs: list[tuple[int, int]]) -> None:
        with self._lock:
            self._q_errors.extend(q_error(e, a) for e, a in pairs)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            planning, errors = list(self._planning), list(self._q_errors)
            pruned = self._files_total - self._files_kept
            return {
                "queries_optimized": self.optimized,
                "planning_ms": {"p50": _percentile(planning, 0.5),
                                "p90": _percentile(planning, 0.9),
                                "p99": _percentile(planning, 0.99)},
                "files_considered": self._files_total, "files_pruned": pruned,
                "pruning_ratio": round(pruned / self._files_total, 4)
                if self._files_total else None,
                "row_estimates": {"measured": len(errors),
                                  "median_q_error": statistics.median(errors)
                                  if errors else None,
                                  "p90_q_error": _percentile(errors, 0.9)},
                "strategies": dict(self._strategies),
            }
