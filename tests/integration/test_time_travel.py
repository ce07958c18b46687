"""Time travel over HTTP: a query, a plan or a partition listing pinned to snapshot N reads
exactly N's files (never rows still in the write-ahead log), on the real write path, catalog
and files; unknown, future and expired snapshots are refused with the one error shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD

COUNT = "SELECT count(*) AS n, sum(amount) AS total FROM orders"


def _core(tmp_path: Path, **overrides: Any) -> Core:
    return build_core(Settings.for_tests(tmp_path, query_on_dask=False, **overrides),
                      ingest=True)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = _core(tmp_path)
    yield built
    built.close()


@pytest.fixture
def clients(core: Core) -> Iterator[dict[str, TestClient]]:
    services = {"op": Service.OPERATION, "tenant": Service.TENANT, "cbo": Service.CBO,
                "catalog": Service.CATALOG}
    made = {name: TestClient(create_app(s, core), raise_server_exceptions=False)
            for name, s in services.items()}
    core.auth.create_user("w", PASSWORD, "acme", Role.WRITER)
    token = core.auth.login("w", PASSWORD).access_token
    for client in made.values():
        client.headers["Authorization"] = f"Bearer {token}"
    yield made
    for client in made.values():
        client.close()


def _write(core: Core, start: int, n: int, **extra: Any) -> None:
    assert core.ingest is not None
    records = [{"data_id": f"o{i}", "table": "orders", **extra,
                "payload": {"amount": i, "city": ["Oslo", "Rome", "Lima"][i % 3]}}
               for i in range(start, start + n)]
    core.ingest.write("acme", records).answer(timeout_s=10)


def _history(core: Core) -> None:
    """Snapshot 1: o0..o9. Snapshot 2: o10..o14 added. Snapshot 3: o3 upserted to 1000. Then
    o15..o17 written and not flushed."""
    assert core.flusher is not None
    _write(core, 0, 10)
    assert flush_here(core.flusher)["snapshot"] == 1
    _write(core, 10, 5)
    assert flush_here(core.flusher)["snapshot"] == 2
    assert core.ingest is not None
    core.ingest.write("acme", [{"data_id": "o3", "table": "orders", "upsert": True,
                                "payload": {"amount": 1000, "city": "Oslo"}}]).answer(10)
    assert flush_here(core.flusher)["snapshot"] == 3
    _write(core, 15, 3)


def _rows(response: Any) -> list[list[Any]]:
    assert response.status_code == 200, response.text
    return [list(r) for r in response.json()["rows"]]


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "details"} and body["error"] == code, body
    return body


@pytest.mark.parametrize("plan", ["single", "distributed"])
def test_a_query_at_a_snapshot_reads_exactly_that_snapshot(
        core: Core, clients: dict[str, TestClient], plan: str) -> None:
    _history(core)
    op = clients["op"]
    now = _rows(op.post("/query/execute", json={"query": COUNT, "plan": plan}))
    assert now == [[18, sum(range(18)) - 3 + 1000]]  # read-your-writes without a snapshot
    expected = {1: [[10, sum(range(10))]], 2: [[15, sum(range(15))]],
                # The current snapshot, pinned: its files only, not the 3 rows in the log.
                3: [[15, sum(range(15)) - 3 + 1000]]}
    for snapshot, rows in expected.items():
        response = op.post("/query/execute", json={"query": COUNT, "plan": plan,
                                                   "snapshot": snapshot})
        assert _rows(response) == rows, snapshot
        assert response.json()["snapshot"] == snapshot
    assert "snapshot" in op.post("/query/execute", json={"query": COUNT}).json()


def test_every_query_endpoint_takes_the_snapshot(core: Core,
                                                 clients: dict[str, TestClient]) -> None:
    _history(core)
    sql = "SELECT count(*) FROM orders WHERE amount >= 0"
    plan = clients["op"].get("/query/plan", params={"query": sql, "snapshot": 1}).json()
    assert plan["snapshot"] == 1 and plan["plan"]["scans"][0]["files_total"] == 1
    analyzed = clients["op"].get("/query/plan", params={"query": sql, "snapshot": 2,
                                                        "analyze": "true"}).json()
    assert analyzed["snapshot"] == 2 and analyzed["analyze"]["rows"] == 1
    assert analyzed["plan"]["steps"]["actual_rows"] == 1
    posted = clients["op"].post("/query/plan", json={"query": sql, "snapshot": 1}).json()
    assert posted["snapshot"] == 1
    optimized = clients["cbo"].post("/optimize/query", json={"query": sql, "snapshot": 1})
    assert optimized.json()["snapshot"] == 1 and optimized.json()["files"]["total"] == 1
    single = clients["tenant"].post("/data/execute", json={"query": sql, "snapshot": 1})
    assert _rows(single) == [[10]]
    dsl = clients["op"].post("/query/execute", json={
        "dsl": {"from": "orders", "select": [{"column": "amount", "agg": "count"}]},
        "snapshot": 2})
    assert _rows(dsl) == [[15]]


def test_at_version_pins_the_whole_query(core: Core, clients: dict[str, TestClient]) -> None:
    _history(core)
    op = clients["op"]
    assert _rows(op.post("/query/execute", json={
        "query": "SELECT count(*) FROM orders AT (VERSION => 1)"})) == [[10]]
    joined = ("SELECT count(*) FROM orders AT (VERSION => 2) AS a "
              "JOIN orders AT (VERSION => 2) AS b ON a.data_id = b.data_id")
    assert _rows(op.post("/query/execute", json={"query": joined})) == [[15]]
    assert _rows(op.post("/query/execute", json={
        "query": "SELECT count(*) FROM orders AT (VERSION => 1)", "snapshot": 1})) == [[10]]
    mixed = op.post("/query/execute", json={"query": "SELECT count(*) FROM orders AT (VERSION "
                                            "=> 1) AS a, orders AT (VERSION => 2) AS b"})
    assert "one snapshot" in _error(mixed, 400, "conflicting_snapshots")["message"]
    both = op.post("/query/execute", json={
        "query": "SELECT count(*) FROM orders AT (VERSION => 1)", "snapshot": 2})
    _error(both, 400, "conflicting_snapshots")
    for form in ("AT (TIMESTAMP => '2026-01-01'::TIMESTAMP)", "AT (VERSION => 'x')",
                 "BEFORE (VERSION => 1)", "AT (VERSION => -1)"):
        refused = op.post("/query/execute",
                          json={"query": "SELECT count(*) FROM orders " + form})  # noqa: S608
        body = _error(refused, 400, "unsupported_time_travel")
        assert "VERSION => " in body["message"] and "snapshot" in body["message"], form
    future = op.post("/query/execute",
                     json={"query": "SELECT count(*) FROM orders AT (VERSION => 99)"})
    _error(future, 404, "snapshot_not_found")
    validated = clients["op"].get("/query/plan", params={
        "query": "SELECT count(*) FROM orders AT (VERSION => 1)"}).json()
    assert validated["snapshot"] == 1


def test_unknown_and_future_snapshots_are_refused(core: Core,
                                                  clients: dict[str, TestClient]) -> None:
    _history(core)
    for endpoint in ("/query/execute", "/query/plan"):
        body = _error(clients["op"].post(endpoint, json={"query": COUNT, "snapshot": 4}),
                      404, "snapshot_not_found")
        assert body["details"] == {"snapshot": 4, "current_snapshot": 3}
    _error(clients["op"].get("/query/plan", params={"query": COUNT, "snapshot": 99}),
           404, "snapshot_not_found")
    _error(clients["cbo"].post("/optimize/query", json={"query": COUNT, "snapshot": 99}),
           404, "snapshot_not_found")
    _error(clients["tenant"].post("/data/execute", json={"query": COUNT, "snapshot": 99}),
           404, "snapshot_not_found")
    for bad in (0, -1, "one"):
        _error(clients["op"].post("/query/execute", json={"query": COUNT, "snapshot": bad}),
               422, "invalid_request")
    async_run = clients["op"].post("/query/execute", json={"query": COUNT, "snapshot": 99,
                                                           "mode": "async"})
    _error(async_run, 404, "snapshot_not_found")  # refused before a run is started


def test_partitions_at_a_snapshot(core: Core, clients: dict[str, TestClient]) -> None:
    _history(core)
    catalog = clients["catalog"]

    def files(response: Any) -> int:
        assert response.status_code == 200, response.text
        return int(response.json()["files_total"])

    assert files(catalog.post("/metadata/partitions", json={"table": "orders"})) == 3
    assert files(catalog.post("/metadata/partitions", params={"snapshot": 1},
                              json={"table": "orders"})) == 1
    assert files(catalog.post("/metadata/partitions", json={"table": "orders",
                                                            "snapshot": 2})) == 2
    answer = catalog.post("/metadata/partitions", params={"snapshot": 2},
                          json={"table": "orders", "snapshot": 2})
    assert files(answer) == 2 and answer.json()["snapshot"] == 2
    _error(catalog.post("/metadata/partitions", params={"snapshot": 1},
                        json={"table": "orders", "snapshot": 2}), 400, "conflicting_snapshots")
    for where in ({"params": {"snapshot": 9}}, {"json_extra": {"snapshot": 9}}):
        body = {"table": "orders", **where.get("json_extra", {})}
        refused = catalog.post("/metadata/partitions", params=where.get("params"), json=body)
        _error(refused, 404, "snapshot_not_found")
    tables = catalog.get("/metadata/tables", params={"snapshot": 9})
    _error(tables, 404, "snapshot_not_found")


def test_a_snapshot_past_the_cleanup_grace_is_refused(tmp_path: Path) -> None:
    """Files a later snapshot replaced are deleted CLEANUP_GRACE_S after it: a snapshot
    superseded longer ago than that may miss files, so it is refused, not half read."""
    core = _core(tmp_path, cleanup_grace_s=0)
    try:
        assert core.flusher is not None
        _write(core, 0, 4)
        flush_here(core.flusher)
        _write(core, 4, 4)
        flush_here(core.flusher)
        core.auth.create_user("w", PASSWORD, "acme", Role.READER)
        token = core.auth.login("w", PASSWORD).access_token
        with TestClient(create_app(Service.OPERATION, core),
                        raise_server_exceptions=False) as op:
            op.headers["Authorization"] = f"Bearer {token}"
            old = op.post("/query/execute", json={"query": COUNT, "snapshot": 1})
            body = _error(old, 404, "snapshot_expired")
            assert body["details"]["snapshot"] == 1 and "CLEANUP_GRACE_S" in body["message"]
            assert _rows(op.post("/query/execute", json={"query": COUNT, "snapshot": 2})) == [
                [8, sum(range(8))]]
    finally:
        core.close()
