"""The ClickHouse serving route against the default engine, on the same data, in the same run:
the platform started by `lakehouse up` (embedded ClickHouse, two Dask workers), over real HTTP.

    .venv/bin/python bench/clickhouse.py                  # generates SF1 with tpchgen-cli first
    .venv/bin/python bench/clickhouse.py --data DIR       # reuse Parquet files tpchgen-cli wrote
    .venv/bin/python bench/clickhouse.py --quick          # a smoke run: SF0.01, short phases

The 8 TPC-H tables are loaded with POST /data/load and marked for serving with
PUT /metadata/tables/{table}/options {"serving": "clickhouse"}; the backfills are followed in
GET /metadata/tables until every mirror is current.
(a) 8 concurrent clients (threads, an HTTP connection each) for a fixed time per phase:
    point lookups of orders by data_id (another key each time), and narrow range aggregates
    (a week of orders); each on the ClickHouse route and on the default engine ("engine"
    forced on POST /query/execute). Throughput, p50 and p99.
(b) the 22 TPC-H queries on both routes, best of 3 after a warm-up, each as a ratio to DuckDB
    (2 threads, in a process of its own, on the generator's original files).
What the optimizer does without "engine" follows these numbers (lakehouse/optimizer/route.py).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from resilience import running_system  # sibling modules, found through the line above
from tpch import TABLES, THREADS, Bench, generate, load_tables, login, query, reference

CLIENTS = 8


def mark_served(bench: Bench, catalog: str) -> None:
    started = time.perf_counter()
    for table in TABLES:
        answer = bench.http.put(f"{catalog}/metadata/tables/{table}/options",
                                json={"serving": "clickhouse"})
        assert answer.status_code == 200, answer.text[:500]
    while True:
        listed = bench.http.get(f"{catalog}/metadata/tables").json()["tables"]
        states = [t["serving"] or {} for t in listed if t["table"] in TABLES]
        if len(states) == len(TABLES) and all(s.get("current") and s.get("rows")
                                              for s in states):
            break
        time.sleep(1)
    rows = sum(int(s["rows"]) for s in states)
    print(f"mirrored 8 tables, {rows:,} rows, into ClickHouse (backfill runs) in "
          f"{time.perf_counter() - started:.1f} s")


def ask(client: httpx.Client, operation: str, sql: str, engine: str) -> dict[str, Any]:
    answer = client.post(f"{operation}/query/execute", json={"query": sql, "engine": engine})
    assert answer.status_code == 200, (engine, sql[:80], answer.text[:300])
    body: dict[str, Any] = answer.json()
    assert body["engine"] == engine, body["engine"]
    return body


def concurrent(bench: Bench, make: Any, engine: str, seconds: float) -> dict[str, float]:
    """CLIENTS threads asking `make(rng)` queries for `seconds`; throughput and latencies."""
    token = bench.http.headers["Authorization"]
    times: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        mine = []
        with httpx.Client(timeout=120, headers={"Authorization": token}) as http:
            ask(http, bench.operation, make(rng), engine)  # its connection, warm
            while time.monotonic() < stop:
                started = time.perf_counter()
                ask(http, bench.operation, make(rng), engine)
                mine.append(time.perf_counter() - started)
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    times.sort()
    return {"qps": len(times) / elapsed, "p50": statistics.median(times) * 1000,
            "p99": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
            "queries": len(times)}


def lookups_and_ranges(bench: Bench, seconds: float) -> None:
    ids = [row[0] for row in ask(bench.http, bench.operation, (
        "SELECT data_id FROM orders WHERE o_orderkey % 997 = 3"), "default")["rows"]]
    low = ask(bench.http, bench.operation, "SELECT min(o_orderdate) AS d FROM orders",
              "default")["rows"][0][0]
    first = time.mktime(time.strptime(low, "%Y-%m-%d")) / 86400

    def lookup(rng: random.Random) -> str:
        return f"SELECT * FROM orders WHERE data_id = '{rng.choice(ids)}'"  # noqa: S608

    def week(rng: random.Random) -> str:
        start = time.strftime("%Y-%m-%d", time.gmtime((first + rng.randrange(2400)) * 86400))
        return ("SELECT count(*) AS n, sum(o_totalprice) AS total FROM orders WHERE "  # noqa: S608
                f"o_orderdate BETWEEN DATE '{start}' AND DATE '{start}' + INTERVAL 6 DAY")

    print(f"\n(a) {CLIENTS} concurrent clients over HTTP, {seconds:g} s a phase")
    print(f"{'workload':>22}{'engine':>12}{'queries/s':>11}{'p50 ms':>9}{'p99 ms':>9}")
    for name, make in (("point lookup", lookup), ("week range aggregate", week)):
        found = {}
        for engine in ("clickhouse", "default"):
            found[engine] = concurrent(bench, make, engine, seconds)
            f = found[engine]
            print(f"{name:>22}{engine:>12}{f['qps']:>11.1f}{f['p50']:>9.1f}{f['p99']:>9.1f}")
        print(f"{'':>22}{'ratio':>12}{found['clickhouse']['qps'] / found['default']['qps']:>11.2f}"
              f"{found['clickhouse']['p50'] / found['default']['p50']:>9.2f}"
              f"{found['clickhouse']['p99'] / found['default']['p99']:>9.2f}"
              "   (ClickHouse / default)")


def tpch_both(bench: Bench, runs: int) -> None:
    print(f"\n(b) TPC-H on both routes, warm, best of {runs}, each as a ratio to DuckDB "
          f"({THREADS} threads, its own process, the original files)")
    print(f"{'query':>6}{'duckdb ms':>11}{'default ms':>12}{'ratio':>7}{'clickhouse ms':>15}"
          f"{'ratio':>7}")
    ratios: dict[str, list[float]] = {"default": [], "clickhouse": []}
    for n in range(1, 23):
        sql = query(n)
        best: dict[str, float] = {}
        for engine in ("default", "clickhouse"):
            body = ask(bench.http, bench.operation, sql, engine)
            _, rows = bench.reference.best(sql)
            assert body["row_count"] == rows, (n, engine, body["row_count"], rows)
            best[engine] = math.inf
            for _ in range(runs):
                started = time.perf_counter()
                ask(bench.http, bench.operation, sql, engine)
                best[engine] = min(best[engine], time.perf_counter() - started)
        duck = bench.reference.best(sql, runs)[0]
        for engine, found in ratios.items():
            found.append(best[engine] / duck)
        print(f"{'Q' + str(n):>6}{duck * 1000:>11.1f}{best['default'] * 1000:>12.1f}"
              f"{best['default'] / duck:>7.2f}{best['clickhouse'] * 1000:>15.1f}"
              f"{best['clickhouse'] / duck:>7.2f}")
    for engine, found in ratios.items():
        other = ratios["clickhouse" if engine == "default" else "default"]
        faster = sum(1 for a, b in zip(found, other, strict=True) if a < b)
        geomean = math.exp(statistics.fmean(math.log(r) for r in found))
        print(f"{engine}: geometric mean of ratios to DuckDB {geomean:.2f}, worst "
              f"{max(found):.2f} (Q{found.index(max(found)) + 1}), faster than the other "
              f"route on {faster} of 22")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="TPC-H Parquet files to reuse")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="SF0.01 (unless --data), short")
    parser.add_argument("--seconds", type=float, default=15.0, help="a phase of (a)")
    args = parser.parse_args()
    scale = 0.01 if args.quick and args.data is None else args.scale
    runs, seconds = (1, 2.0) if args.quick else (3, args.seconds)
    with tempfile.TemporaryDirectory(prefix="bench-clickhouse-") as tmp:
        sources = args.data.resolve() if args.data else Path(tmp) / "tpch"
        if args.data is None:
            sources.mkdir()
            generate(sources, scale)
        # 8 clients of one tenant: the per-tenant limit of queries at once must let them in.
        extra = {"LOAD_ROOTS": str(sources), "DASK_WORKERS": str(THREADS),
                 "QUERY_MAX_CONCURRENT_PER_TENANT": str(CLIENTS * 2)}
        with running_system("bench-clickhouse-", extra) as (ports, _, _up), \
                reference(sources) as duck:
            bench = Bench(ports, login(ports["AUTH_PORT"]), duck, sources)
            load_tables(bench, sources)
            mark_served(bench, f"http://127.0.0.1:{ports['CATALOG_PORT']}")
            lookups_and_ranges(bench, seconds)
            tpch_both(bench, runs)


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    main()
