"""Kill the control plane while a table's ClickHouse mirror is being filled; after a restart
the mirror equals the table, with no row lost or doubled.

A real `lakehouse serve` (Auth, Tenant, Catalog and Operation services) on a real WAL, catalog
and embedded ClickHouse folder. `LAKEHOUSE_CRASH_AT` makes the process exit at once (as SIGKILL
would): right after the first file's rows reach ClickHouse during the backfill, before the
mirror's watermark moves; after a flush's Parquet commit, before the keeper copies it; and
after the keeper's insert, before its watermark. Prefect is not reachable here, so the backfill
runs in the process as the run shell's policy says. "No row doubled" is the mirror's raw row
count, read in a process of its own once the server is gone (chDB opens a folder in one process
at once).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_crash import Server

pytestmark = pytest.mark.slow

SERVICES = ("auth", "tenant", "catalog", "operation")
COUNT = "SELECT count(*) AS n, count(DISTINCT data_id) AS ids, sum(i) AS total FROM records"


def _login(server: Server) -> dict[str, str]:
    token = httpx.post(f"http://127.0.0.1:{server.auth_port}/auth/login", json={
        "username": "admin", "password": "password"}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _store(server: Server, headers: dict[str, str], first: int, count: int) -> None:
    stored = httpx.post(f"http://127.0.0.1:{server.tenant_port}/data/store", headers=headers,
                        json=[{"data_id": f"r{i}", "payload": {"i": i}}
                              for i in range(first, first + count)], timeout=30).json()
    assert stored["accepted"] == count, stored


def _flush(server: Server, headers: dict[str, str]) -> Any:
    return httpx.post(f"http://127.0.0.1:{server.tenant_port}/data/flush", headers=headers,
                      timeout=120)


def _mirror_state(server: Server, headers: dict[str, str]) -> dict[str, Any]:
    answer = httpx.get(f"http://127.0.0.1:{server.ports['catalog']}/metadata/tables",
                       params={"table": "records"}, headers=headers, timeout=30).json()
    return dict(answer["tables"][0]["serving"] or {})


def _count(server: Server, headers: dict[str, str], engine: str) -> list[Any]:
    answer = httpx.post(f"http://127.0.0.1:{server.ports['operation']}/query/execute",
                        headers=headers, json={"query": COUNT, "engine": engine}, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.json()["engine"] == engine
    return list(answer.json()["rows"][0])


def _wait_current(server: Server, headers: dict[str, str], rows: int) -> None:
    deadline = time.monotonic() + 60
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = _mirror_state(server, headers)
        if state.get("current") and state.get("rows") == rows:
            return
        time.sleep(0.3)
    raise AssertionError(f"the mirror did not catch up: {state}")


def _raw_rows(data_dir: Path) -> int:
    """Rows the mirror holds, repeats included, read by a process of its own."""
    script = ("import json, sys, clickhouse_connect; c = clickhouse_connect.get_client("
              "dsn='chdb://' + sys.argv[1]); print(json.dumps(c.query("
              "'SELECT count() FROM lakehouse_default.records').result_rows[0][0]))")
    done = subprocess.run([sys.executable, "-c", script, str(data_dir / "clickhouse")],
                          capture_output=True, text=True, timeout=120, check=True)
    return int(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("point", ["backfill", "flush:after_commit", "mirror:after_insert"])
def test_a_crash_while_mirroring_loses_and_doubles_nothing(tmp_path: Path, point: str) -> None:
    server = Server(tmp_path, SERVICES, FLUSH_ON_DASK="false", FLUSH_MAX_AGE_S="3600",
                    QUERY_ON_DASK="false", PREFECT_CLIENT_MAX_RETRIES="0",
                    SERVING_CATCH_UP_INTERVAL_S="0.5")
    server.start()
    headers = _login(server)
    try:
        _store(server, headers, 0, 300)
        assert _flush(server, headers).status_code == 200
        _store(server, headers, 300, 200)
        assert _flush(server, headers).status_code == 200  # two files
        if point != "backfill":
            mark = httpx.put(f"http://127.0.0.1:{server.ports['catalog']}/metadata/tables/"
                             "records/options", headers=headers, json={"serving": "clickhouse"})
            assert mark.status_code == 200, mark.text
            _wait_current(server, headers, 500)
        server.stop()

        server.env["LAKEHOUSE_CRASH_AT"] = ("mirror:after_insert" if point == "backfill"
                                            else point)
        server.log = (tmp_path / "server.log").open("ab")
        server.start()
        headers = _login(server)
        if point == "backfill":  # the first file copied, then the process dies
            with contextlib.suppress(httpx.HTTPError):  # it may die before it answers
                httpx.put(f"http://127.0.0.1:{server.ports['catalog']}/metadata/tables/"
                          "records/options", headers=headers, json={"serving": "clickhouse"},
                          timeout=30)
        else:  # a flush, then the keeper's catch-up
            _store(server, headers, 500, 250)
            with contextlib.suppress(httpx.HTTPError):  # flush:after_commit dies inside it
                _flush(server, headers)
        assert server.proc is not None and server.proc.wait(60) == 137

        del server.env["LAKEHOUSE_CRASH_AT"]
        server.start()
        headers = _login(server)
        expected = 500 if point == "backfill" else 750
        _wait_current(server, headers, expected)
        on_clickhouse = _count(server, headers, "clickhouse")
        assert on_clickhouse == _count(server, headers, "default")
        assert on_clickhouse[:2] == [expected, expected]
    finally:
        server.stop()
    assert _raw_rows(tmp_path) == expected  # repeated inserts were dropped, not kept
