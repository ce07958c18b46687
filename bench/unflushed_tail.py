"""Queries over a backlog of unflushed writes: the log's entries kept as Arrow between queries
(QUERY_UNFLUSHED_TAIL_MB, lakehouse/ingest/tail.py) against converting every entry again for
each query (the same code with the tail off, which converts as the code before the tail did),
in the same run, on the same writes.

    .venv/bin/python bench/unflushed_tail.py               # 2,000 entries of 20 records
    .venv/bin/python bench/unflushed_tail.py --quick

Two real `lakehouse serve -s auth -s tenant -s operation` processes, one with the tail and one
without, take the same NDJSON writes (20 records a request, as a busy client sends them; the
flush held off), then answer the same query over HTTP in turns; the figures are each server's
median and p90 latency and their ratio. What a write flood leaves waiting is what a query pays
to read: the flood's queries in bench/resilience.py grow slower as the backlog grows.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import Server as IngestServer  # sibling modules, found through the line above
from loadgen import build_request, run

QUERY = "SELECT city, count(*) AS n, sum(amount) AS total FROM events GROUP BY city"


class Server(IngestServer):
    def __init__(self, data_dir: Path, tail_mb: float) -> None:
        super().__init__(data_dir, sync=True, services=("operation",), extra={
            "FLUSH_MAX_AGE_S": "3600", "FLUSH_MAX_ROWS": "100000000",
            "FLUSH_MAX_BYTES": str(8 * 1024**3), "QUERY_ON_DASK": "false",
            "QUERY_UNFLUSHED_TAIL_MB": str(tail_mb), "PREFECT_CLIENT_MAX_RETRIES": "0"})

    def write(self, bodies: list[bytes]) -> None:
        requests = [build_request("POST", "/data/store", "bench", body, "application/x-ndjson",
                                  self.token) for body in bodies]
        result = asyncio.run(run("127.0.0.1", self.port, requests, 8))
        assert result.errors == 0, result.statuses

    def query(self) -> tuple[float, Any]:
        started = time.perf_counter()
        answer = httpx.post(f"http://127.0.0.1:{self.operation_port}/query/execute",
                            headers={"Authorization": f"Bearer {self.token}"},
                            json={"query": QUERY}, timeout=300)
        elapsed = time.perf_counter() - started
        assert answer.status_code == 200, answer.text[:300]
        return elapsed, sorted(answer.json()["rows"])


def bodies(entries: int, per_entry: int) -> list[bytes]:
    cities = ["Oslo", "Rome", "Lima", "Pune", "Kyiv"]
    return [b"\n".join(orjson.dumps({
        "data_id": f"e{n}-{i}", "table": "events",
        "payload": {"amount": (n * per_entry + i) % 997, "city": cities[(n + i) % 5],
                    "note": f"entry {n} record {i}"}}) for i in range(per_entry))
        for n in range(entries)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2_000)
    parser.add_argument("--per-entry", type=int, default=20)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--quarter-mb", type=float, default=0.7,
                        help="the third server's tail (about a quarter of 2,000 entries)")
    args = parser.parse_args()
    entries, queries = (200, 5) if args.quick else (args.entries, args.queries)
    writes = bodies(entries, args.per_entry)
    with tempfile.TemporaryDirectory(prefix="bench-tail-") as tmp:
        # A third server's tail holds about a quarter of the backlog: what a query saves
        # when the backlog outgrows the tail (the older entries stay kept).
        servers = {"tail": Server(Path(tmp) / "tail", 256),
                   "no tail": Server(Path(tmp) / "none", 0),
                   "1/4 tail": Server(Path(tmp) / "quarter", args.quarter_mb)}
        try:
            for server in servers.values():
                server.write(writes)
            print(f"{entries:,} unflushed entries of {args.per_entry} records each "
                  f"({entries * args.per_entry:,} records) on each server; query: {QUERY}")
            times: dict[str, list[float]] = {name: [] for name in servers}
            answers = set()
            for _ in range(queries):
                for name, server in servers.items():
                    elapsed, rows = server.query()
                    times[name].append(elapsed)
                    answers.add(orjson.dumps(rows))
            assert len(answers) == 1, "the two servers answered differently"
            print(f"{'':>10}{'first ms':>10}{'p50 ms':>10}{'p90 ms':>10}")
            for name, found in times.items():
                rest = sorted(found[1:])
                print(f"{name:>10}{found[0] * 1000:>10.1f}{statistics.median(rest) * 1000:>10.1f}"
                      f"{rest[int(0.9 * (len(rest) - 1))] * 1000:>10.1f}")
            for name in ("tail", "1/4 tail"):
                ratio = (statistics.median(times[name][1:])
                         / statistics.median(times["no tail"][1:]))
                print(f"p50 ratio {name} / no tail (after the first query): {ratio:.2f}")
        finally:
            for server in servers.values():
                server.stop()


if __name__ == "__main__":
    main()
