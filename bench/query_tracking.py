"""What tracking a query as a Prefect flow run costs: the same small query, untracked and with
"track": true, through the Operation Node, against a local Prefect server (a temporary one).

    .venv/bin/python bench/query_tracking.py [--runs 10]

Prints the median time of each and the difference: the cost a flow run adds, which is what
QUERY_TRACK_THRESHOLD_S is weighed against (a query expected to run longer is tracked).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

from flows.ingest import flush_here

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.app import create_app
from api.core import build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-tracking-"))
    try:
        with prefect_test_harness(server_startup_timeout=120):
            core = build_core(Settings.for_tests(root, prefect_api_url=PREFECT_API_URL.value(),
                                                 query_on_dask=False), ingest=True)
            assert core.ingest is not None and core.flusher is not None
            core.ingest.write("bench", [{"data_id": f"r{i}", "payload": {"i": i}}
                                        for i in range(1000)]).answer(timeout_s=10)
            flush_here(core.flusher)
            core.auth.create_user("bench", "bench-password", "bench", Role.READER)
            token = core.auth.login("bench", "bench-password").access_token
            headers = {"Authorization": f"Bearer {token}"}
            query = "SELECT count(*), sum(i) FROM records"
            with TestClient(create_app(Service.OPERATION, core)) as client:
                times: dict[bool, list[float]] = {False: [], True: []}
                for track in (False, True) * (args.runs + 1):
                    started = time.perf_counter()
                    response = client.post("/query/execute", headers=headers,
                                           json={"query": query, "track": track})
                    assert response.status_code == 200, response.text
                    times[track].append(time.perf_counter() - started)
            core.close()
        plain = statistics.median(times[False][1:])
        tracked = statistics.median(times[True][1:])
        print(f"untracked query: {plain * 1000:.1f} ms (median of {args.runs})")
        print(f"tracked query (a `query` flow run, 3 tasks, a plan artifact): "
              f"{tracked * 1000:.1f} ms")
        print(f"a flow run adds {1000 * (tracked - plain):.0f} ms; QUERY_TRACK_THRESHOLD_S "
              f"defaults to 1 s, so tracking costs at most "
              f"{100 * (tracked - plain) / 1.0:.0f}% of a query it applies to")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
