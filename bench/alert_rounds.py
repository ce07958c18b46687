"""The cost of one alert round: 100 rules (the shipped nine, and windowed and folded ones over
the HTTP series) over an hour of rounds (720 at 5 s) of a busy platform's registry.

    .venv/bin/python bench/alert_rounds.py [--rules 100] [--rounds 50]

Prints the mean and p99 time of `Alerting.evaluate` (what the control plane runs every
ALERT_EVAL_INTERVAL_S), against the time to read the registry's samples in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lakehouse.telemetry.alerting import Alerting, load_rules
from lakehouse.telemetry.alerts import parse_rules
from lakehouse.telemetry.metrics import Metrics


def _rules(count: int) -> list:  # type: ignore[type-arg]
    shipped = list(load_rules(None))
    extra = []
    for i in range(count - len(shipped)):
        kind = i % 3
        expr = ("increase(lakehouse_http_requests_total{status=\"500\"}[5m]) > 1" if kind == 0
                else "max(lakehouse_http_request_duration_seconds_sum) > 100" if kind == 1
                else f"rate(lakehouse_queries_total[{1 + i % 10}m]) > 5")
        extra.append({"name": f"Extra{i}", "expr": expr, "for": "1m"})
    return shipped + list(parse_rules({"rules": extra}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    metrics = Metrics()
    for service in ("tenant", "operation", "catalog", "monitoring"):  # a busy registry
        for route in range(30):
            for status in (200, 400, 404, 500):
                metrics.observe_request(service, "GET", f"/r{route}", status, 0.01)
    alerting = Alerting(_rules(args.rules))
    start = time.time() - 3600
    for i in range(720):  # an hour of history
        metrics.queries.labels("failed", "none").inc()
        alerting.evaluate(metrics.samples(), start + i * 5)
    reads, rounds = [], []
    for i in range(args.rounds):
        t0 = time.perf_counter()
        samples = metrics.samples()
        t1 = time.perf_counter()
        alerting.evaluate(samples, start + 3600 + i * 5)
        reads.append(t1 - t0)
        rounds.append(time.perf_counter() - t1)
    rounds.sort()
    print(f"{len(alerting.rules)} rules, {sum(len(v) for v in samples.values())} series, "
          f"720 rounds of history")
    print(f"evaluate: mean {statistics.mean(rounds) * 1000:.1f} ms, "
          f"p99 {rounds[int(len(rounds) * 0.99) - 1] * 1000:.1f} ms; reading the registry: "
          f"mean {statistics.mean(reads) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
