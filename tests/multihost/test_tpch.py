"""TPC-H at SF0.1 on three simulated hosts: loaded over HTTP into S3-backed storage with the
catalog on PostgreSQL, the 22 queries forced distributed, every answer equal to DuckDB's over
the generator's own files, and a large query's jobs run on both worker hosts."""

from __future__ import annotations

import time
from typing import Any

import duckdb
import httpx
import pytest

from tests.flows.test_tpch_queries import UNORDERED, _normal, _same, query
from tests.multihost.conftest import TPCH_TABLES, Platform


def load_tpch(platform: Platform) -> None:
    runs = {}
    for table in TPCH_TABLES:
        response = httpx.post(platform.url(8000) + "/data/load", headers=platform.headers,
                              json={"table": table,
                                    "source": str(platform.tpch / table)},
                              timeout=120)
        assert response.status_code == 202, response.text
        runs[table] = response.json()["run_id"]
    deadline = time.monotonic() + 300
    for table, run_id in runs.items():
        while True:
            run = httpx.get(platform.url(8081) + f"/runs/{run_id}", headers=platform.headers,
                            timeout=30).json()
            if run.get("state") == "COMPLETED":
                break
            assert run.get("state") not in ("FAILED", "CRASHED", "CANCELLED"), (table, run)
            assert time.monotonic() < deadline, (table, run)
            time.sleep(1)


@pytest.fixture(scope="module")
def loaded(platform: Platform) -> Platform:
    load_tpch(platform)
    return platform


@pytest.fixture(scope="module")
def oracle(platform: Platform) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    for table in TPCH_TABLES:
        connection.read_parquet(str(platform.tpch / table / "*.parquet")).create_view(table)
    return connection


def run_query(platform: Platform, sql: str) -> dict[str, Any]:
    response = httpx.post(platform.url(8081) + "/query/execute", headers=platform.headers,
                          json={"query": sql, "plan": "distributed"}, timeout=300)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_22_queries_equal_duckdb(loaded: Platform,
                                     oracle: duckdb.DuckDBPyConnection) -> None:
    wrong = []
    for n in range(1, 23):
        body = run_query(loaded, query(n))
        want = _normal(oracle.sql(query(n)).to_arrow_table())
        if not _same(body["rows"], want, ordered=n not in UNORDERED):
            wrong.append((n, body["rows"][:2], want[:2]))
    assert not wrong


def test_a_large_query_runs_on_both_worker_hosts(loaded: Platform) -> None:
    """Q1 over lineitem's files, cut into fragments of 1 MiB (SF0.1 is small: at the default
    32 MiB it would be one fragment)."""
    config = loaded.url(8082) + "/optimize/config"
    before = httpx.get(config, headers=loaded.headers, timeout=30).json()
    changed = httpx.put(config, headers=loaded.headers, json={"target_fragment_mb": 1},
                        timeout=30)
    assert changed.status_code == 200, changed.text
    try:
        body = run_query(loaded, query(1))
    finally:
        httpx.put(config, headers=loaded.headers, timeout=30,
                  json={"target_fragment_mb": before["target_fragment_mb"]})
    assert body["strategy"] == "partial_aggregate"
    status = httpx.get(loaded.url(8081) + f"/query/{body['query_id']}",
                       headers=loaded.headers, timeout=30).json()
    ran_on = status["progress"]["workers"]
    hosts = {address.split("://")[-1].rsplit(":", 1)[0] for address in ran_on}
    assert hosts == {loaded.hosts["w1"].address, loaded.hosts["w2"].address}, status
