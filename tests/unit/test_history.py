"""The dashboard's history: values per interval from two rounds of samples (pure), and the
ring that keeps about an hour of them."""

from __future__ import annotations

import math

import pytest

from lakehouse.telemetry.history import History, Samples, point, quantile, series

INF = math.inf


@pytest.mark.parametrize(("q", "counts", "want"), [
    (0.5, {}, None),
    (0.5, {0.1: 0, 1.0: 0, INF: 0}, None),
    (0.5, {0.1: 10, 1.0: 10, INF: 10}, 0.05),  # all in the first bucket: halfway up it
    (0.5, {0.1: 0, 1.0: 10, INF: 10}, 0.55),   # all in (0.1, 1]: halfway through it
    (0.95, {0.1: 50, 1.0: 100, INF: 100}, 0.91),
    (0.99, {0.1: 0, 1.0: 0, INF: 4}, 1.0),    # past the last finite bound: that bound
])
def test_quantiles_follow_prometheus_histogram_quantile(q: float, counts: dict[float, float],
                                                        want: float | None) -> None:
    got = quantile(q, counts)
    assert got == pytest.approx(want) if want is not None else got is None


def _samples(records: float, failed: float, ok: float, fast: float, slow: float,
             backlog: float) -> Samples:
    bucket = "lakehouse_query_duration_seconds_bucket"
    return {
        "lakehouse_ingest_records_total": [((), records)],
        "lakehouse_queries_total": [((("state", "failed"), ("strategy", "single")), failed),
                                    ((("state", "completed"), ("strategy", "single")), ok)],
        bucket: [((("le", "0.1"), ("strategy", "single")), fast),
                 ((("le", "1.0"), ("strategy", "single")), fast + slow),
                 ((("le", "+Inf"), ("strategy", "single")), fast + slow)],
        "lakehouse_unflushed_bytes": [((), backlog)],
    }


@pytest.mark.parametrize(("case", "before", "now", "elapsed", "want"), [
    ("first round: gauges only", None, _samples(100, 0, 0, 0, 0, 512), 0.0,
     {"unflushed_bytes": 512, "ingest_records_per_s": None, "query_p50_s": None}),
    ("rates over the interval", _samples(100, 1, 9, 10, 0, 0), _samples(200, 3, 17, 20, 0, 0),
     10.0, {"ingest_records_per_s": 10.0, "queries_per_s": 1.0, "query_errors_per_s": 0.2,
            "query_p50_s": 0.05}),
    ("quantiles of this interval only", _samples(0, 0, 100, 100, 0, 0),
     _samples(0, 0, 110, 100, 10, 0), 5.0, {"query_p50_s": 0.55}),
    ("no query in the interval", _samples(0, 0, 5, 5, 0, 0), _samples(0, 0, 5, 5, 0, 0), 5.0,
     {"queries_per_s": 0.0, "query_p50_s": None}),
    ("a restart resets the counters", _samples(1000, 0, 50, 50, 0, 0),
     _samples(30, 0, 2, 2, 0, 0), 10.0, {"ingest_records_per_s": 3.0, "queries_per_s": 0.2,
                                         "query_p50_s": 0.05}),
    ("series the process lacks", {}, {}, 5.0,
     {"dask_workers": None, "shed_requests_per_s": 0.0, "wal_commit_p95_s": None}),
])
def test_a_point_per_interval(case: str, before: Samples | None, now: Samples, elapsed: float,
                              want: dict[str, float | None]) -> None:
    got = point(before, now, elapsed)
    for key, value in want.items():
        assert got[key] == (pytest.approx(value) if value is not None else None), (case, key)


def test_the_history_keeps_its_capacity_and_reads_since() -> None:
    history = History(capacity=3)
    for n in range(5):
        history.add(float(n), _samples(n * 10, 0, 0, 0, 0, n))
    kept = history.points()
    assert [p.at for p in kept] == [2.0, 3.0, 4.0]
    assert kept[-1].values["ingest_records_per_s"] == 10.0
    assert [p.at for p in history.points(since=3.0)] == [4.0]
    columns = series(kept)
    assert columns["at"] == [2.0, 3.0, 4.0] and columns["unflushed_bytes"] == [2, 3, 4]
