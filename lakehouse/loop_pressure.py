"""Admission limits that follow the event loop's lag.

The services of a process answer from one event loop, and the work they admit (a write's
conversion and commit, a query's planning and execution) runs on threads of the same
interpreter. Past a point, admitting more does not finish more: the threads take the
interpreter lock from the loop, every request waits in the loop before anything looks at it,
and shed answers come as late as accepted ones. Fixed limits cannot know where that point is
(it moves with the machine, the query mix and whatever else runs there), so the limits move:
every window the loop's worst lag decides them (`adjust`).

- Over the target lag: the loop is late; the writes limit loses a quarter and the queries
  limit half (a query holds the lock far longer than a write), or more, in proportion, when
  the lag is further over (down to a quarter of each at four times the target): when a flood
  starts, every write admitted at the configured limit waits for the ones before it, so the
  limit must reach its floor in a window or two, not ten.
- Under half the target: the loop keeps up; each limit grows again, writes by an eighth (at
  least one) and queries by one, never past the configured limits (INGEST_MAX_INFLIGHT,
  QUERY_MAX_CONCURRENT), which stay the ceilings.
- In between: unchanged.

Never below a floor, so a platform that is slow for other reasons (a busy machine) still takes
some work; the floor is also each tenant's least share (api/loop_watch.py: see there why).
What is shed is decided, per tenant, by `lakehouse.fair_share` from these limits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    writes: int  # writes in flight
    queries: int  # queries running


@dataclass(frozen=True, slots=True)
class Bounds:
    writes: int  # INGEST_MAX_INFLIGHT: the ceiling, and where the writes limit starts
    queries: int  # QUERY_MAX_CONCURRENT: likewise for queries
    target_lag_s: float  # ADMISSION_TARGET_LAG_MS
    min_writes: int = 8  # INGEST_MIN_INFLIGHT, also each tenant's least share of the writes
    min_queries: int = 2  # QUERY_MIN_CONCURRENT, also each tenant's least share of the queries

    def start(self) -> Limits:
        return Limits(self.writes, self.queries)


def adjust(limits: Limits, lag_s: float, bounds: Bounds) -> Limits:
    """The limits for the next window, given the loop's worst lag in the last one."""
    min_writes = min(bounds.min_writes, bounds.writes)
    min_queries = min(bounds.min_queries, bounds.queries)
    if lag_s > bounds.target_lag_s:
        over = bounds.target_lag_s / lag_s  # under 1: how far past the target
        return Limits(max(min_writes, int(limits.writes * max(0.25, min(0.75, over)))),
                      max(min_queries, int(limits.queries * max(0.25, min(0.5, over)))))
    if lag_s < bounds.target_lag_s / 2:
        return Limits(min(bounds.writes, limits.writes + max(1, limits.writes // 8)),
                      min(bounds.queries, limits.queries + 1))
    return limits
