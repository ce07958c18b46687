"""TPC-H on three hosts against one, the same data, in the same run.

    sudo .venv/bin/python bench/multihost.py              # SF1 (needs root: namespaces)
    sudo .venv/bin/python bench/multihost.py --scale 0.1  # a smaller, quicker run

The platform runs as the README's "On several hosts" section says, on simulated hosts
(tests/multihost/platform.py: network namespaces on a bridge): PostgreSQL for the catalog and
Prefect, S3 (moto's server), the Prefect server, the Dask scheduler and `lakehouse up` on the
control-plane host. The TPC-H tables are loaded over HTTP (`POST /data/load`), then the 22
queries run over HTTP (`POST /query/execute`), the best of 3 after a warm-up run, as distributed
plans (`"plan": "distributed"`: fragments on the workers), in two arrangements of the same two
single-threaded Dask workers:

- three hosts: the workers on two worker hosts;
- one host: the same workers started on the control-plane host instead.

It prints each query's time in both and the ratio (three hosts / one host), and their geometric
mean; and, for reference, the time of the plan the optimizer chooses by itself (at SF1 it keeps
every query on one node, where the workers' arrangement does not matter). On this 2-core
machine every namespace shares the same cores, so this shows what distribution costs (hops
between hosts, the storage probe, scheduling), not a speed-up; see docs/scaling.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the simulated hosts live with the tests
from tests.multihost.platform import Platform, load_tpch, running  # noqa: E402

QUERIES = ROOT / "tests" / "golden" / "tpch"
RUNS = 3


def timed(platform: Platform, n: int, plan: str) -> tuple[float, str]:
    """The best of RUNS (after a warm-up) of query `n` over HTTP; its plan's strategy."""
    sql = (QUERIES / f"q{n:02d}.sql").read_text()
    best, strategy = math.inf, ""
    for attempt in range(RUNS + 1):
        started = time.perf_counter()
        response = httpx.post(platform.url(8081) + "/query/execute", headers=platform.headers,
                              json={"query": sql, "plan": plan}, timeout=900)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"Q{n} answered {response.status_code}: {response.text[:500]}")
        strategy = response.json().get("strategy") or ""
        if attempt:
            best = min(best, elapsed)
    return best, strategy


def all_queries(platform: Platform, plan: str = "distributed") -> dict[int, tuple[float, str]]:
    return {n: timed(platform, n, plan) for n in range(1, 23)}


def on_one_host(platform: Platform) -> None:
    """Stop the worker hosts; start the same two workers on the control-plane host."""
    for name in ("w1", "w2"):
        platform.hosts[name].kill()
    for index in (1, 2):
        platform.start_worker("cp", f"cp-{index}")
    platform.wait_for_workers({"cp-1", "cp-2"}, timeout_s=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="1", help="TPC-H scale factor (default 1)")
    args = parser.parse_args()
    # Untracked queries: the engine's time, not a Prefect run's bookkeeping.
    with running(args.scale, {"QUERY_TRACK_THRESHOLD_S": "3600"}) as platform:
        started = time.perf_counter()
        load_tpch(platform)
        print(f"TPC-H SF{args.scale} loaded over HTTP in {time.perf_counter() - started:.1f} s",
              flush=True)
        chosen = all_queries(platform, "auto")
        three = all_queries(platform)
        on_one_host(platform)
        one = all_queries(platform)
    print(f"\nTPC-H SF{args.scale}, best of {RUNS}, seconds over HTTP; ratio = three hosts / "
          "one host")
    print(f"{'query':>5} {'1 host':>8} {'3 hosts':>8} {'ratio':>6}  {'plan':<18} "
          "optimizer's own plan")
    ratios = []
    for n in range(1, 23):
        ratio = three[n][0] / one[n][0]
        ratios.append(ratio)
        print(f"Q{n:<4} {one[n][0]:8.3f} {three[n][0]:8.3f} {ratio:6.2f}  {three[n][1]:<18} "
              f"{chosen[n][1]} {chosen[n][0]:.3f}")
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    report: dict[str, Any] = {"geomean": geomean, "worst": max(ratios),
                              "best": min(ratios)}
    print(f"geometric mean {report['geomean']:.2f}x, worst {report['worst']:.2f}x, best "
          f"{report['best']:.2f}x")


if __name__ == "__main__":
    main()
