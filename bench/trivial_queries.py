"""The fixed cost of a query over real HTTP: p50 and p90 of trivial queries sent to the
Operation Node (uvicorn on loopback, the real core under a temporary DATA_DIR), each query
`--runs` times after a warm-up.

    .venv/bin/python bench/trivial_queries.py [--runs 300]

Queries: `SELECT 1`, a count over a small loaded table, a point query by key and a filtered
count (each run with another value), and an aggregate. To compare two versions of the
platform, run this file in each checkout in turn (alternately, a few times: the machine is
shared): its figures compare only with another run on the same machine at about that time.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.app import create_app
from api.core import build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.load.loader import Loader, LoadRequest
from lakehouse.load.sources import roots_for

# `{n}` is the run's number: a query a client sends with other values each time (so nothing
# cached by the query's text helps it).
QUERIES = {
    "select_1": "SELECT 1",
    "count": "SELECT count(*) FROM events",
    "point": "SELECT * FROM events WHERE data_id = 'k-{n:05d}'",
    "count_where": "SELECT count(*) FROM events WHERE amount > {n}",
    "aggregate": "SELECT kind, count(*), sum(amount) FROM events GROUP BY kind",
}
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway user of a temporary DATA_DIR


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trivial-") as tmp:
        data = Path(tmp) / "data"
        core = build_core(Settings.for_tests(data, query_on_dask=False, load_on_dask=False),
                          ingest=True)
        imports = data / "imports"
        imports.mkdir(parents=True)
        rows = 10_000
        pq.write_table(pa.table({
            "data_id": [f"k-{i:05d}" for i in range(rows)],
            "kind": [f"kind-{i % 7}" for i in range(rows)],
            "amount": pa.array([i * 0.5 for i in range(rows)], pa.float64())}),
            imports / "events.parquet")
        assert core.catalog is not None and core.storage is not None
        Loader(core.catalog, core.storage, roots_for(core.settings), core.declarations).run(
            LoadRequest("acme", "events", str(imports / "events.parquet")))
        core.auth.create_user("reader", PASSWORD, "acme", Role.READER)
        token = core.auth.login("reader", PASSWORD).access_token
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(Service.OPERATION, core),
                                               host="127.0.0.1", port=port, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}",
                              headers={"Authorization": f"Bearer {token}"}) as client:
                for name, sql in QUERIES.items():
                    times = []
                    for run in range(args.runs + 20):
                        started = time.perf_counter()
                        text = sql.format(n=run)
                        response = client.post("/query/execute", json={"query": text})
                        elapsed = (time.perf_counter() - started) * 1000
                        response.raise_for_status()
                        if run >= 20:  # warm-up: caches, pools
                            times.append(elapsed)
                    times.sort()
                    print(f"{name:10s} p50 {statistics.median(times):6.2f} ms   "
                          f"p90 {times[int(len(times) * 0.9)]:6.2f} ms")
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            core.close()


if __name__ == "__main__":
    main()
