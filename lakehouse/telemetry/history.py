"""A short history of the platform's metrics for the dashboard (GET /dashboard), so its charts
work without an external Prometheus: each alert round adds one point (rates and quantiles over
the interval since the round before, gauges as they are), and about an hour of points is kept.

`point` is pure: two rounds' samples in, the dashboard's values out. `History` keeps the ring.
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Labels = tuple[tuple[str, str], ...]
Samples = Mapping[str, list[tuple[Labels, float]]]
Select = Callable[[dict[str, str]], bool]

# What each chart shows, and from which series (README "Dashboard").
RATES: dict[str, tuple[str, Select]] = {
    "ingest_records_per_s": ("lakehouse_ingest_records_total", lambda _: True),
    "rejected_records_per_s": ("lakehouse_ingest_rejected_records_total", lambda _: True),
    "shed_requests_per_s": ("lakehouse_shed_requests_total", lambda _: True),
    "queries_per_s": ("lakehouse_queries_total", lambda _: True),
    "query_errors_per_s": ("lakehouse_queries_total", lambda labels: labels.get("state")
                           == "failed"),
    "http_5xx_per_s": ("lakehouse_http_requests_total",
                       lambda labels: labels.get("status", "").startswith("5")),
}
GAUGES: dict[str, tuple[str, Select]] = {
    "unflushed_bytes": ("lakehouse_unflushed_bytes", lambda _: True),
    "unflushed_oldest_age_s": ("lakehouse_unflushed_oldest_age_seconds", lambda _: True),
    "compaction_backlog_files": ("lakehouse_compaction_backlog_files", lambda _: True),
    "dask_workers": ("lakehouse_dask_workers", lambda _: True),
    "dask_memory_bytes": ("lakehouse_dask_memory_bytes", lambda _: True),
    "dask_memory_limit_bytes": ("lakehouse_dask_memory_limit_bytes", lambda _: True),
    "alerts_firing": ("lakehouse_alerts", lambda labels: labels.get("state") == "firing"),
}
QUANTILES: dict[str, tuple[str, float]] = {
    "query_p50_s": ("lakehouse_query_duration_seconds", 0.5),
    "query_p95_s": ("lakehouse_query_duration_seconds", 0.95),
    "wal_commit_p95_s": ("lakehouse_wal_group_commit_duration_seconds", 0.95),
}


def _total(samples: Samples, name: str, keep: Select) -> float | None:
    found = [value for labels, value in samples.get(name, []) if keep(dict(labels))]
    return sum(found) if found else None


def _buckets(samples: Samples, name: str) -> dict[float, float]:
    """Cumulative counts per upper bound, summed over the other labels."""
    out: dict[float, float] = {}
    for labels, value in samples.get(f"{name}_bucket", []):
        bound = float(dict(labels).get("le", "nan"))
        if not math.isnan(bound):
            out[bound] = out.get(bound, 0.0) + value
    return out


def quantile(q: float, counts: Mapping[float, float]) -> float | None:
    """Prometheus' histogram_quantile over cumulative bucket counts: linear within the bucket
    the rank falls in; the largest finite bound when it falls in +Inf; None with no counts."""
    bounds = sorted(counts)
    if not bounds or counts[bounds[-1]] <= 0:
        return None
    rank = q * counts[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        if counts[bound] >= rank:
            if math.isinf(bound):
                return lower
            inside = counts[bound] - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, counts[bound]
    return lower


def point(before: Samples | None, now: Samples, elapsed_s: float) -> dict[str, float | None]:
    """The dashboard's values for the interval from `before` to `now`. Rates and quantiles need
    an earlier round (None without one); a counter that went down (a restart) counts from 0."""
    values: dict[str, float | None] = {}
    for key, (name, keep) in GAUGES.items():
        values[key] = _total(now, name, keep)
    for key, (name, keep) in RATES.items():
        current = _total(now, name, keep)
        if before is None or elapsed_s <= 0:
            values[key] = None
            continue
        earlier = _total(before, name, keep) or 0.0
        current = current or 0.0
        values[key] = (current - earlier if current >= earlier else current) / elapsed_s
    for key, (name, q) in QUANTILES.items():
        if before is None:
            values[key] = None
            continue
        then, latest = _buckets(before, name), _buckets(now, name)
        fallen = any(latest.get(b, 0.0) < c for b, c in then.items())
        delta = latest if fallen else {b: c - then.get(b, 0.0) for b, c in latest.items()}
        values[key] = quantile(q, delta)
    return values


@dataclass(frozen=True, slots=True)
class Point:
    at: float
    values: dict[str, float | None]


class History:
    """The last `capacity` points, oldest first."""

    def __init__(self, capacity: int) -> None:
        self._points: collections.deque[Point] = collections.deque(maxlen=max(2, capacity))
        self._last: tuple[float, Samples] | None = None
        self._lock = threading.Lock()

    def add(self, at: float, samples: Samples) -> Point:
        with self._lock:
            before = self._last
            values = point(before[1] if before else None, samples,
                           at - before[0] if before else 0.0)
            added = Point(at, values)
            self._points.append(added)
            self._last = (at, samples)
            return added

    def points(self, since: float | None = None) -> list[Point]:
        with self._lock:
            return [p for p in self._points if since is None or p.at > since]


def series(points: Iterable[Point]) -> dict[str, Any]:
    """Column form for the page: {"at": [...], key: [...]}, one value per point."""
    listed = list(points)
    keys = [*GAUGES, *RATES, *QUANTILES]
    return {"at": [p.at for p in listed],
            **{k: [p.values.get(k) for p in listed] for k in keys}}
