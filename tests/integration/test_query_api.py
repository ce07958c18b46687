"""Queries over HTTP on the real write path, catalog and files: the Operation Node's endpoints,
the Tenant Node's /data/execute, the CBO Engine's; read-your-writes, limits, formats, refusals.

Prefect is not running here, so these are untracked (sync, short) queries; the tracked ones run
in tests/flows/test_query_flow.py on Prefect's test harness.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.executor.service import QueryService
from lakehouse.fair_share import Pace
from lakehouse.ingest.keys import TableRef
from tests.conftest import PASSWORD
from tests.unit.sql_cases import HOSTILE


@pytest.fixture(params=["duckdb", "arrow"])
def core(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Core]:
    """Every test twice: DuckDB reading the files itself, and our pyarrow scan reading them
    (QUERY_FILE_READER): the answers must not depend on who reads."""
    built = build_core(Settings.for_tests(tmp_path, query_on_dask=False,
                                          query_max_concurrent_per_tenant=2,
                                          query_file_reader=request.param), ingest=True)
    yield built
    built.close()


def _headers(core: Core, user: str, tenant: str = "acme", role: Role = Role.WRITER,
             ) -> dict[str, str]:
    core.auth.create_user(user, PASSWORD, tenant, role)
    return {"Authorization": f"Bearer {core.auth.login(user, PASSWORD).access_token}"}


def _write(core: Core, records: list[dict[str, Any]], tenant: str = "acme") -> None:
    assert core.ingest is not None
    core.ingest.write(tenant, records).answer(timeout_s=10)


@pytest.fixture
def clients(core: Core) -> Iterator[dict[str, TestClient]]:
    with TestClient(create_app(Service.OPERATION, core), raise_server_exceptions=False) as op, \
            TestClient(create_app(Service.TENANT, core), raise_server_exceptions=False) as tn, \
            TestClient(create_app(Service.CBO, core), raise_server_exceptions=False) as cbo:
        yield {"op": op, "tenant": tn, "cbo": cbo}


def _orders(n: int, start: int = 0, table: str = "orders") -> list[dict[str, Any]]:
    return [{"data_id": f"o{i}", "table": table,
             "payload": {"amount": i, "city": ["Oslo", "Rome", "Lima"][i % 3]}}
            for i in range(start, start + n)]


def test_the_seed_query_answers_rows_with_types(core: Core,
                                                clients: dict[str, TestClient]) -> None:
    _write(core, _orders(30))
    assert core.flusher is not None
    flush_here(core.flusher)
    headers = _headers(core, "w")
    response = clients["op"].post("/query/execute", headers=headers,
                                  json={"query": "SELECT * FROM orders LIMIT 10"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["row_count"] == 10 and len(body["rows"]) == 10
    # Records carry their data_id: a column; `_timestamp` the platform keeps is hidden.
    assert [c["name"] for c in body["columns"]] == ["data_id", "amount", "city"]
    assert body["query_id"].startswith("q-") and body["bytes_scanned"] > 0
    assert body["elapsed_s"] >= 0 and body["strategy"] == "single"
    # Counted when the run ends, which its answer may beat by a moment on a busy machine.
    counted = 'lakehouse_queries_total{state="finished",strategy="single"} 1.0'
    deadline = time.monotonic() + 30
    while counted not in core.metrics.exposition().decode():
        assert time.monotonic() < deadline, core.metrics.exposition().decode()
        time.sleep(0.05)
    status = clients["op"].get(f"/query/{body['query_id']}", headers=headers).json()
    assert status["state"] == "finished" and status["rows"] == 10
    same = clients["op"].get("/query/status", params={"id": body["query_id"]},
                             headers=headers).json()
    assert same["query_id"] == body["query_id"]


def test_read_your_writes_each_row_once(core: Core, clients: dict[str, TestClient]) -> None:
    """Rows flushed, rows still in the log, and an upsert of a flushed row: each counted once,
    the newest version visible."""
    assert core.flusher is not None
    headers = _headers(core, "w")
    _write(core, _orders(20))
    flush_here(core.flusher)
    _write(core, _orders(10, start=20))
    _write(core, [{"data_id": "o3", "table": "orders", "upsert": True,
                   "payload": {"amount": 1000, "city": "Oslo"}}])
    sql = "SELECT count(*) AS n, sum(amount) AS total FROM orders"
    for plan in ("single", "distributed"):
        body = clients["op"].post("/query/execute", headers=headers,
                                  json={"query": sql, "plan": plan}).json()
        assert body["rows"] == [[30, sum(range(30)) - 3 + 1000]], (plan, body)
    flush_here(core.flusher)
    body = clients["op"].post("/query/execute", headers=headers, json={"query": sql}).json()
    assert body["rows"][0][0] == 30


def test_unflushed_rows_are_converted_once_and_again_when_the_schema_grows(
        core: Core, clients: dict[str, TestClient]) -> None:
    """The log's unflushed entries are kept as Arrow between queries (lakehouse/ingest/
    tail.py): a second query converts nothing again and answers the same; a field added since
    makes the kept rows convert to the wider schema; the flush takes them out of the tail."""
    assert core.flusher is not None and core.ingest is not None
    tail = core.ingest.tail
    headers = _headers(core, "w")
    for start in range(0, 40, 10):  # four entries
        _write(core, _orders(10, start=start))
    sql = "SELECT count(*) AS n, sum(amount) AS total, count(note) AS notes FROM orders"

    def ask() -> list[Any]:
        body = clients["op"].post("/query/execute", headers=headers,
                                  json={"query": sql.replace(", count(note) AS notes", "")
                                        if not with_note else sql}).json()
        return body["rows"][0]

    with_note = False
    assert ask() == [40, sum(range(40))]
    misses, hits = tail.misses, tail.hits
    assert ask() == [40, sum(range(40))]
    assert (tail.misses, tail.hits) == (misses, hits + 4)  # all four kept
    _write(core, [{"data_id": "n1", "table": "orders",
                   "payload": {"amount": 1, "city": "Oslo", "note": "new field"}}])
    with_note = True
    assert ask() == [41, sum(range(40)) + 1, 1]  # the four kept convert to the wider schema
    assert tail.entries == 5
    sample = core.metrics.registry.get_sample_value
    assert sample("lakehouse_unflushed_tail_entries") == 5
    assert sample("lakehouse_unflushed_tail_lookups_total", {"outcome": "hit"}) == tail.hits
    assert sample("lakehouse_unflushed_tail_lookups_total", {"outcome": "miss"}) == tail.misses
    assert tail.hits >= 4 and tail.misses >= 5
    assert sample("lakehouse_unflushed_tail_bytes") == tail.bytes > 0
    flush_here(core.flusher)
    assert (tail.entries, tail.bytes) == (0, 0)  # the flush took them
    assert sample("lakehouse_unflushed_tail_bytes") == 0
    assert ask() == [41, sum(range(40)) + 1, 1]


def test_plans_are_reused_only_while_what_they_read_is_the_same(
        core: Core, clients: dict[str, TestClient]) -> None:
    """The same text is planned once per tenant, snapshot, view and cost model
    (lakehouse/executor/plan_cache.py): asked again it reuses the plan and answers the same; a
    write that adds a column, a flush (a new snapshot), another tenant or another cost model
    plan it anew. Answers are checked against the rows at every step."""
    assert core.flusher is not None and core.queries is not None
    plans = core.queries.engine.plans
    headers = _headers(core, "w")
    other = _headers(core, "o", tenant="globex")
    _write(core, _orders(9))
    _write(core, _orders(2), tenant="globex")
    sql = "SELECT * FROM orders ORDER BY amount"

    def ask(as_: dict[str, str] = headers) -> dict[str, Any]:
        response = clients["op"].post("/query/execute", headers=as_, json={"query": sql})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def planned_then(body: dict[str, Any], *, reused: bool) -> None:
        assert (plans.reused, plans.planned) == ((before[0] + 1, before[1]) if reused
                                                  else (before[0], before[1] + 1)), body

    before = (plans.reused, plans.planned)
    first = ask()
    planned_then(first, reused=False)
    assert [c["name"] for c in first["columns"]] == ["data_id", "amount", "city"]
    before = (plans.reused, plans.planned)
    assert ask()["rows"] == first["rows"] and len(first["rows"]) == 9
    planned_then(first, reused=True)
    before = (plans.reused, plans.planned)
    theirs = ask(other)  # the same text for another tenant: its own plan, its own rows
    planned_then(theirs, reused=False)
    assert [row[0] for row in theirs["rows"]] == ["o0", "o1"]
    _write(core, [{"data_id": "n1", "table": "orders",
                   "payload": {"amount": 100, "city": "Oslo", "note": "a new column"}}])
    before = (plans.reused, plans.planned)
    wider = ask()  # the view has a column more: planned again, and `*` has it
    planned_then(wider, reused=False)
    assert [c["name"] for c in wider["columns"]] == ["data_id", "amount", "city", "note"]
    assert wider["rows"][-1] == ["n1", 100, "Oslo", "a new column"] and len(wider["rows"]) == 10
    _write(core, _orders(1, start=50))  # more rows, the same columns: the plan holds
    before = (plans.reused, plans.planned)
    assert len(ask()["rows"]) == 11
    planned_then(first, reused=True)
    flush_here(core.flusher)
    before = (plans.reused, plans.planned)
    flushed = ask()  # a new snapshot: planned again, the same rows from files
    planned_then(flushed, reused=False)
    assert flushed["rows"] == [[*row, None] for row in first["rows"]] + [
        ["o50", 50, "Lima", None], ["n1", 100, "Oslo", "a new column"]]
    model = core.queries.model
    core.queries.model = replace(model, broadcast_threshold_bytes=model.broadcast_threshold_bytes
                                 + 1)
    try:
        before = (plans.reused, plans.planned)
        assert ask()["rows"] == flushed["rows"]  # another cost model: planned again
        planned_then(flushed, reused=False)
    finally:
        core.queries.model = model
    before = (plans.reused, plans.planned)
    assert ask()["rows"] == flushed["rows"]
    planned_then(flushed, reused=True)
    stats = clients["cbo"].get("/optimize/stats", headers=headers).json()["plan_cache"]
    assert stats == {"reused": plans.reused, "planned": plans.planned, "kept": len(plans)}
    sample = core.metrics.registry.get_sample_value
    assert sample("lakehouse_query_plans_total", {"outcome": "reused"}) == plans.reused
    assert sample("lakehouse_query_plans_total", {"outcome": "planned"}) == plans.planned
    assert stats["reused"] >= 3 and stats["kept"] >= 4
    optimized = clients["cbo"].post("/optimize/query", headers=headers, json={"query": sql})
    assert optimized.json()["plan_reused"] is True and optimized.json()["optimizer_ms"] == 0.0
    fresh = clients["cbo"].post("/optimize/query", headers=headers,
                                json={"query": sql + " LIMIT 5"}).json()
    assert fresh["plan_reused"] is False and fresh["optimizer_ms"] > 0


def test_many_unflushed_entries_are_merged_and_answer_the_same(
        core: Core, clients: dict[str, TestClient]) -> None:
    """Past MERGE_AFTER entries read one by one, a query merges a table's entries into one run
    of few chunks kept in the tail; later queries take the run's unflushed part as a slice and
    merge what came since. Answers are those of the rows, through upserts and a flush."""
    assert core.flusher is not None and core.ingest is not None
    tail, ref = core.ingest.tail, TableRef("acme", "orders")
    headers = _headers(core, "w")
    sql = ("SELECT count(*) AS n, sum(amount) AS total, count(DISTINCT data_id) AS ids "
           "FROM orders")

    def ask() -> list[Any]:
        return clients["op"].post("/query/execute", headers=headers,
                                  json={"query": sql}).json()["rows"][0]

    def schema() -> Any:
        return core.ingest.table_schema(ref) if core.ingest is not None else None

    for start in range(0, 12 * 5, 5):  # twelve entries of five
        _write(core, _orders(5, start=start))
    assert ask() == [60, sum(range(60)), 60]
    run = tail.run(ref, schema())
    assert run is not None and len(run.firsts) == 12 and run.rows.column(0).num_chunks == 1
    misses = tail.misses
    assert ask() == [60, sum(range(60)), 60]
    assert tail.misses == misses and tail.run(ref, schema()) is run  # read from the run
    for start in range(60, 75, 5):  # three more: too few to merge again
        _write(core, _orders(5, start=start))
    assert ask() == [75, sum(range(75)), 75] and tail.run(ref, schema()) is run
    core.ingest.write("acme", [{"data_id": "o3", "table": "orders", "upsert": True,
                                "payload": {"amount": 1000, "city": "Oslo"}}]).answer(
        timeout_s=10)
    for start in range(75, 100, 5):  # five more: merged with the three and the upsert
        _write(core, _orders(5, start=start))
    assert ask() == [100, sum(range(100)) - 3 + 1000, 100]
    merged = tail.run(ref, schema())
    assert merged is not None and merged is not run and len(merged.firsts) == 21
    flush_here(core.flusher)
    assert (tail.entries, tail.bytes) == (0, 0)
    assert ask() == [100, sum(range(100)) - 3 + 1000, 100]


def test_results_page_and_come_in_every_format(tmp_path: Path) -> None:
    core = build_core(Settings.for_tests(tmp_path, query_max_result_rows=7), ingest=True)
    try:
        with TestClient(create_app(Service.OPERATION, core),
                        raise_server_exceptions=False) as op:
            _pages_and_formats(core, {"op": op})
    finally:
        core.close()


def _pages_and_formats(core: Core, clients: dict[str, TestClient]) -> None:
    _write(core, _orders(25))
    headers = _headers(core, "w")
    body = clients["op"].post("/query/execute", headers=headers, json={
        "query": "SELECT amount FROM orders ORDER BY amount"}).json()
    assert body["row_count"] == 25 and body["returned"] == 7 and body["truncated"]
    assert body["next_offset"] == 7
    # Following next_uri, as a Trino client does, reads every row once, in order.
    seen, uri = [row[0] for row in body["rows"]], body["next_uri"]
    assert uri == f"/query/{body['query_id']}/result?offset=7&limit=7"
    while uri is not None:
        followed = clients["op"].get(uri, headers=headers).json()
        seen += [row[0] for row in followed["rows"]]
        uri = followed["next_uri"]
    assert seen == list(range(25))
    page = clients["op"].get(f"/query/{body['query_id']}/result", headers=headers,
                             params={"offset": 20, "limit": 10}).json()
    assert page["rows"] == [[i] for i in range(20, 25)] and page["next_offset"] is None
    assert page["next_uri"] is None
    lines = clients["op"].get(f"/query/{body['query_id']}/result", headers=headers,
                              params={"format": "jsonl", "limit": 3})
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert lines.text.splitlines() == ['{"amount":0}', '{"amount":1}', '{"amount":2}']
    csv = clients["op"].get(f"/query/{body['query_id']}/result", headers=headers,
                            params={"format": "csv", "limit": 3})
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines() == ['"amount"', "0", "1", "2"]
    arrow = clients["op"].post("/query/execute", headers=headers, json={
        "query": "SELECT city, count(*) AS n FROM orders GROUP BY city ORDER BY city",
        "format": "arrow"})
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.to_pylist() == [{"city": "Lima", "n": 8}, {"city": "Oslo", "n": 9},
                                 {"city": "Rome", "n": 8}]
    parquet = clients["op"].post("/query/execute", headers=headers, json={
        "query": "SELECT amount FROM orders", "format": "parquet"})
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == 25
    bad = clients["op"].post("/query/execute", headers=headers,
                             json={"query": "SELECT 1", "format": "xml"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_format"


def test_large_results_stream_in_batches_equal_to_the_whole(
        core: Core, clients: dict[str, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    """Each streamed format, encoded a few rows at a time, reads back as the whole result:
    one CSV header, one Arrow schema, one Parquet file of several row groups; repeated names
    disambiguated; no rows still gives the header, the schema and an empty file."""
    monkeypatch.setattr("api.query_results.STREAM_BATCH_ROWS", 4)
    _write(core, _orders(30))
    headers = _headers(core, "w")
    sql = "SELECT amount, city, amount * 2 AS amount FROM orders ORDER BY 1"
    expected = [{"amount": i, "city": ["Oslo", "Rome", "Lima"][i % 3], "amount_1": 2 * i}
                for i in range(30)]

    def fetch(fmt: str, query: str = sql) -> Any:
        answer = clients["op"].post("/query/execute", headers=headers,
                                    json={"query": query, "format": fmt})
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-row-count"] == str(len(expected) if query == sql else 0)
        return answer

    assert [orjson.loads(line) for line in fetch("jsonl").text.splitlines()] == expected
    csv = fetch("csv").text.splitlines()
    assert csv[0] == '"amount","city","amount_1"' and len(csv) == 31
    assert csv[1:3] == ['0,"Oslo",0', '1,"Rome",2']
    assert pa.ipc.open_stream(fetch("arrow").content).read_all().to_pylist() == expected
    parquet = pq.ParquetFile(io.BytesIO(fetch("parquet").content))
    assert parquet.metadata.num_row_groups == 8 and parquet.read().to_pylist() == expected
    none = f"{sql.split(' ORDER', maxsplit=1)[0]} WHERE amount < 0"
    assert fetch("csv", none).text.splitlines() == ['"amount","city","amount_1"']
    assert pa.ipc.open_stream(fetch("arrow", none).content).read_all().num_rows == 0
    assert pq.read_table(io.BytesIO(fetch("parquet", none).content)).column_names == [
        "amount", "city", "amount_1"]
    assert fetch("jsonl", none).text == ""


def test_hostile_sql_is_refused_before_anything_is_read(core: Core,
                                                        clients: dict[str, TestClient]) -> None:
    _write(core, _orders(3))
    headers = _headers(core, "w")
    found = core.queries
    assert isinstance(found, QueryService)
    for dialect, sql, _ in HOSTILE:
        response = clients["op"].post("/query/execute", headers=headers,
                                      json={"query": sql, "dialect": dialect})
        assert 400 <= response.status_code < 500, (sql, response.text)
        assert set(response.json()) == {"error", "message", "details"}
        executed = clients["tenant"].post("/data/execute", headers=headers,
                                          json={"query": sql, "dialect": dialect})
        assert 400 <= executed.status_code < 500, (sql, executed.text)
    assert found.stats.optimized == 0  # nothing got as far as planning, so nothing was read


def test_tenants_see_only_their_own_tables(core: Core, clients: dict[str, TestClient]) -> None:
    _write(core, _orders(5), tenant="acme")
    _write(core, _orders(4, table="secrets"), tenant="globex")
    acme = _headers(core, "a", "acme")
    response = clients["op"].post("/query/execute", headers=acme,
                                  json={"query": "SELECT count(*) FROM secrets"})
    assert response.status_code == 400 and response.json()["error"] == "unknown_table"
    refused = clients["op"].post("/query/execute", headers=acme,
                                 json={"query": "SELECT * FROM tenant_globex.secrets"})
    assert refused.status_code == 403
    globex = _headers(core, "g", "globex")
    body = clients["op"].post("/query/execute", headers=globex,
                              json={"query": "SELECT count(*) FROM secrets"}).json()
    assert body["rows"] == [[4]]
    qid = clients["op"].post("/query/execute", headers=acme, json={
        "query": "SELECT count(*) FROM orders"}).json()["query_id"]
    assert clients["op"].get(f"/query/{qid}", headers=globex).status_code == 404


def test_data_execute_is_a_single_node_query(core: Core, clients: dict[str, TestClient]) -> None:
    _write(core, _orders(9))
    headers = _headers(core, "r", role=Role.READER)
    body = clients["tenant"].post("/data/execute", headers=headers, json={
        "query": "SELECT city, sum(amount) FROM orders GROUP BY city ORDER BY city"}).json()
    assert body["rows"] == [["Lima", 15], ["Oslo", 9], ["Rome", 12]]
    assert body["strategy"] == "single"


def test_limits_bytes_concurrency_and_time(core: Core, clients: dict[str, TestClient]) -> None:
    assert core.flusher is not None
    _write(core, _orders(2000))
    flush_here(core.flusher)
    headers = _headers(core, "w")
    found = core.queries
    assert isinstance(found, QueryService)
    found.max_bytes_scanned = 10
    big = clients["op"].post("/query/execute", headers=headers,
                             json={"query": "SELECT count(*) FROM orders"})
    assert big.status_code == 400 and big.json()["error"] == "query_too_large"
    found.max_bytes_scanned = 10**12
    slow = "SELECT count(*) FROM orders a, orders b, orders c WHERE a.amount + b.amount > c.amount"
    timed = clients["op"].post("/query/execute", headers=headers,
                               json={"query": slow, "timeout_s": 0.5})
    assert timed.status_code == 408 and timed.json()["error"] == "query_timeout"
    # Two at once is this tenant's limit: a third is refused with 429 and Retry-After.
    answers: list[Any] = []
    threads = [threading.Thread(target=lambda: answers.append(clients["op"].post(
        "/query/execute", headers=headers, json={"query": slow, "timeout_s": 60})))
        for _ in range(2)]
    for thread in threads:
        thread.start()
    running = _wait_running(core, 2)
    third = clients["op"].post("/query/execute", headers=headers, json={"query": slow})
    assert third.status_code == 429 and third.headers["retry-after"] == "1"
    assert third.json()["error"] == "too_many_queries"
    for run in running:
        cancelled = clients["op"].delete(f"/query/{run.query_id}", headers=headers)
        assert cancelled.status_code == 200
        # The answer waits up to 10 s for the end; a loaded machine may take longer.
        assert run.done.wait(30) and run.state == "cancelled", cancelled.json()
    for thread in threads:
        thread.join(30)
    assert sorted(a.status_code for a in answers) == [409, 409]


def test_queries_past_the_platform_limit_are_shed_fairly(
        core: Core, clients: dict[str, TestClient]) -> None:
    """QUERY_MAX_CONCURRENT for every tenant together, here 1: a tenant alone may take it;
    another tenant still gets one (its fair share, let in past the limit); past that each is
    refused at once (429 over_fair_share with Retry-After), nothing queued; a slot given back
    is taken again."""
    for tenant in ("acme", "other"):
        _write(core, _orders(2000), tenant)
    assert core.flusher is not None
    flush_here(core.flusher)
    found = core.queries
    assert isinstance(found, QueryService)
    found.registry.capacity = found.registry.ceiling = 1  # the configured limit, not lowered
    found.registry.least = 1  # each tenant's least share: here the share of the limit rules
    # Every ask after a tenant's first is too fast, so its second and later queries are never
    # steady (let in whatever the limit in force) however slow the machine.
    found.registry.asks = Pace(per_s=1e-9, room=0.0)
    acme, other = _headers(core, "w"), _headers(core, "o", "other")
    slow = {"query": "SELECT count(*) FROM orders a, orders b, orders c "
                     "WHERE a.amount + b.amount > c.amount", "mode": "async", "timeout_s": 60}

    def start(headers: dict[str, str]) -> Any:
        return clients["op"].post("/query/execute", headers=headers, json=slow)

    first = start(acme)
    assert first.status_code == 202
    newcomer = start(other)
    assert newcomer.status_code == 202
    for headers in (acme, other):
        shed = start(headers)
        assert shed.status_code == 429 and shed.headers["retry-after"] == "1", shed.json()
        assert shed.json()["error"] == "over_fair_share"
        assert shed.json()["details"] == {"held": 1, "fair_share": 1, "capacity": 1}
        assert "connection" not in shed.headers  # a small body: the client keeps it
    # Shed before the request is read (api/middleware.py QueryAdmission): a body that is not
    # even a query gets the same answer, and the shed is counted.
    unread = clients["op"].post("/query/execute", content=b"not json",
                                headers={**acme, "content-type": "application/json"})
    assert unread.status_code == 429 and unread.json()["error"] == "over_fair_share"
    assert core.metrics.registry.get_sample_value(
        "lakehouse_shed_requests_total", {"pool": "queries", "reason": "over_share"}) == 3
    for answer, headers, tenant in ((first, acme, "acme"), (newcomer, other, "other")):
        query_id = answer.json()["query_id"]
        assert clients["op"].delete(f"/query/{query_id}", headers=headers).status_code == 200
        assert found.registry.get(tenant, query_id).done.wait(30)
    fast = clients["op"].post("/query/execute", headers=acme,
                              json={"query": "SELECT count(*) FROM orders"})
    assert fast.status_code == 200 and fast.json()["rows"] == [[2000]]


def _wait_running(core: Core, count: int) -> list[Any]:
    found = core.queries
    assert isinstance(found, QueryService)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = [r for r in found.registry.runs("acme") if r.state == "running"]
        if len(running) >= count:
            return running
        time.sleep(0.05)
    raise AssertionError("the queries did not start")


def test_explain_and_the_cbo_engine(core: Core, clients: dict[str, TestClient]) -> None:
    assert core.flusher is not None
    for start in (0, 100, 200):
        _write(core, _orders(100, start=start))
        flush_here(core.flusher)
    headers = _headers(core, "w")
    admin = _headers(core, "boss", role=Role.ADMIN)
    sql = "SELECT city, count(*) FROM orders WHERE amount >= 250 GROUP BY city"
    plan = clients["op"].get("/query/plan", headers=headers, params={"query": sql}).json()
    [scan] = plan["plan"]["scans"]
    assert scan["files"] == 1 and scan["files_total"] == 3 and scan["pruned_by_stats"] == 2
    analyzed = clients["op"].post("/query/plan", headers=headers, params={"analyze": "true"},
                                  json={"query": sql}).json()
    assert analyzed["analyze"]["rows"] == 3 and analyzed["plan"]["steps"]["actual_rows"] == 3
    optimized = clients["cbo"].post("/optimize/query", headers=headers,
                                    json={"query": sql}).json()
    assert optimized["files"] == {"total": 3, "kept": 1, "pruned": 2}
    rules = {d["rule"] for d in optimized["plan"]["decisions"]}
    assert {"pushdown_predicates", "prune_columns", "prune_files",
            "choose_distribution"} <= rules
    stats = clients["cbo"].get("/optimize/stats", headers=headers).json()
    assert stats["queries_optimized"] >= 3 and stats["pruning_ratio"] > 0
    assert stats["row_estimates"]["measured"] >= 1
    assert clients["cbo"].put("/optimize/config", headers=headers,
                              json={"mode": "single"}).status_code == 403
    changed = clients["cbo"].put("/optimize/config", headers=admin, json={
        "broadcast_threshold_mb": 1, "rules_enabled": ["prune_columns"]}).json()
    assert changed["broadcast_threshold_mb"] == 1 and changed["rules_enabled"] == [
        "prune_columns"]
    bad = clients["cbo"].put("/optimize/config", headers=admin, json={"rules_enabled": ["x"]})
    assert bad.status_code == 400
    plan = clients["op"].get("/query/plan", headers=headers, params={"query": sql}).json()
    assert plan["plan"]["scans"][0]["files"] == 3  # pruning switched off


def test_cancel_stops_a_running_query(core: Core, clients: dict[str, TestClient]) -> None:
    assert core.flusher is not None
    _write(core, _orders(3000))
    flush_here(core.flusher)
    headers = _headers(core, "w")
    slow = "SELECT count(*) FROM orders a, orders b, orders c WHERE a.amount + b.amount > c.amount"
    answer: dict[str, Any] = {}

    def run() -> None:
        answer["response"] = clients["op"].post("/query/execute", headers=headers,
                                                json={"query": slow, "timeout_s": 120})

    thread = threading.Thread(target=run)
    thread.start()
    [running] = _wait_running(core, 1)
    started = time.monotonic()
    clients["op"].delete(f"/query/{running.query_id}", headers=headers)
    thread.join(30)
    assert time.monotonic() - started < 10
    assert answer["response"].status_code == 409
    assert answer["response"].json()["error"] == "query_cancelled"
    # Its result says it was cancelled and must be run again (not "there once finished").
    result = clients["op"].get(f"/query/{running.query_id}/result", headers=headers)
    assert result.status_code == 409 and result.json()["error"] == "query_cancelled"
    assert "cancelled" in result.json()["message"] and "run it again" in result.json()[
        "message"]
    assert "once it is finished" not in result.text


def test_queries_are_listed_and_cancelled_like_trinos(core: Core,
                                                     clients: dict[str, TestClient]) -> None:
    """An async query answers 202 with its status URL in Location; GET /queries lists the
    tenant's running and recent ones newest first (who asked, state, elapsed, rows), filtered
    by state or user; DELETE /queries/{id} cancels from there. Another tenant sees none of
    them and cannot cancel them; an admin naming no tenant sees and cancels every tenant's."""
    assert core.flusher is not None
    _write(core, _orders(3000))
    _write(core, _orders(10), tenant="other")
    flush_here(core.flusher)
    ann, bob = _headers(core, "ann"), _headers(core, "bob", role=Role.READER)
    other, admin = _headers(core, "olga", "other"), _headers(core, "boss", role=Role.ADMIN)
    op = clients["op"]
    done = op.post("/query/execute", headers=bob, json={"query": "SELECT count(*) FROM orders"})
    assert done.status_code == 200
    slow = op.post("/query/execute", headers=ann, json={
        "query": "SELECT count(*) FROM orders a, orders b, orders c "
                 "WHERE a.amount + b.amount > c.amount", "mode": "async", "timeout_s": 120})
    assert slow.status_code == 202
    slow_id = slow.json()["query_id"]
    assert slow.headers["location"] == f"http://testserver:{core.settings.operation_port}" \
        f"/query/{slow_id}"
    op.post("/query/execute", headers=other, json={"query": "SELECT 1 FROM orders"})

    listed = op.get("/queries", headers=ann).json()
    assert [q["query_id"] for q in listed["queries"]] == [slow_id, done.json()["query_id"]]
    newest, oldest = listed["queries"]
    assert (newest["user"], newest["tenant"], newest["mode"]) == ("ann", "acme", "async")
    assert newest["state"] in ("queued", "planning", "running") and newest["rows"] is None
    # Its rows asked for too soon: the request is right, the query not there yet (409, not
    # 400: the same request succeeds once it finished).
    early = op.get(f"/query/{slow_id}/result", headers=ann)
    assert early.status_code == 409 and early.json()["error"] == "query_not_finished", early.text
    assert (oldest["user"], oldest["state"], oldest["rows"]) == ("bob", "finished", 1)
    assert oldest["elapsed_s"] >= 0 and oldest["sql"] == "SELECT count(*) FROM orders"
    assert listed["total"] == listed["returned"] == 2
    assert [q["user"] for q in op.get("/queries", headers=ann,
                                      params={"state": "active"}).json()["queries"]] == ["ann"]
    assert [q["user"] for q in op.get("/queries", headers=ann,
                                      params={"user": "bob"}).json()["queries"]] == ["bob"]
    assert op.get("/queries", headers=ann, params={"limit": 1}).json()["returned"] == 1
    assert op.get("/queries", headers=ann, params={"state": "lost"}).status_code == 422

    theirs = op.get("/queries", headers=other).json()["queries"]
    assert [q["user"] for q in theirs] == ["olga"]
    assert op.delete(f"/queries/{slow_id}", headers=other).status_code == 404
    everyone = op.get("/queries", headers=admin).json()["queries"]
    assert {q["tenant"] for q in everyone} == {"acme", "other"}
    assert [q["tenant"] for q in op.get("/queries", headers={**admin, "X-Tenant-Id": "other"}
                                        ).json()["queries"]] == ["other"]
    # Only who ran it (or a tenant admin) may cancel a query; a tenant-mate may see it.
    assert op.delete(f"/queries/{slow_id}", headers=bob).status_code == 403
    assert op.delete(f"/query/{slow_id}", headers=bob).status_code == 403
    cancelled = op.delete(f"/queries/{slow_id}", headers=admin)
    assert cancelled.status_code == 200 and cancelled.json()["query_id"] == slow_id
    found = core.queries
    assert isinstance(found, QueryService) and found.registry.get("acme", slow_id).done.wait(30)
    assert op.get("/queries", headers=ann, params={"state": "cancelled"}).json()[
        "queries"][0]["query_id"] == slow_id


def test_rows_past_the_retention_period_are_hidden_at_once(
        core: Core, clients: dict[str, TestClient]) -> None:
    from lakehouse.catalog.options import DAY_S, TableOptions

    assert core.flusher is not None and core.table_options is not None
    _write(core, [{"data_id": f"old{i}", "table": "orders", "timestamp": "2020-01-01T00:00:00Z",
                   "payload": {"amount": 1, "city": "Oslo"}} for i in range(4)])
    flush_here(core.flusher)
    _write(core, _orders(3))  # still in the log
    _write(core, [{"data_id": "old-unflushed", "table": "orders",
                   "timestamp": "2020-01-02T00:00:00Z", "payload": {"amount": 1}}])
    headers = _headers(core, "w")
    sql = {"query": "SELECT count(*) FROM orders"}
    assert clients["op"].post("/query/execute", headers=headers, json=sql).json()["rows"] == [[8]]
    core.table_options.put("acme", "orders", TableOptions(retention_s=30 * DAY_S))
    assert clients["op"].post("/query/execute", headers=headers, json=sql).json()["rows"] == [[3]]


@pytest.mark.parametrize("plan", ["single", "distributed"])
def test_few_valued_strings_read_as_dictionaries_answer_the_same(
        core: Core, clients: dict[str, TestClient], plan: str) -> None:
    """`city` (3 values in 300 rows) is read from the files as a dictionary; rows still in the
    log, a new value and an upsert join it as plain strings, and every answer is unchanged."""
    assert core.flusher is not None
    for start in (0, 150):
        _write(core, _orders(150, start=start))
        flush_here(core.flusher)
    _write(core, [{"data_id": f"n{i}", "table": "orders",
                   "payload": {"amount": 1000 + i, "city": "Kyiv"}} for i in range(5)])
    _write(core, [{"data_id": "o1", "table": "orders", "upsert": True,
                   "payload": {"amount": 1, "city": "Kyiv"}}])
    headers = _headers(core, "w")
    explained = clients["op"].get("/query/plan", headers=headers, params={
        "query": "SELECT city FROM orders"}).json()
    assert explained["plan"]["scans"][0]["dictionary_columns"] == ["city"]

    cities = ["Oslo", "Rome", "Lima"]
    expected = {c: sum(1 for i in range(300) if i != 1 and cities[i % 3] == c) for c in cities}
    expected["Kyiv"] = 6

    def rows(sql: str) -> list[list[Any]]:
        response = clients["op"].post("/query/execute", headers=headers,
                                      json={"query": sql, "plan": plan})
        assert response.status_code == 200, response.text
        assert response.json()["columns"][0]["type"] == "string"
        return [list(r) for r in response.json()["rows"]]

    assert {c: n for c, n in rows(
        "SELECT city, count(*) FROM orders GROUP BY city")} == expected
    assert rows("SELECT city, sum(amount) FROM orders WHERE city = 'Kyiv' GROUP BY city") == [
        ["Kyiv", 1 + sum(1000 + i for i in range(5))]]
    assert rows("SELECT city FROM orders WHERE city > 'M' ORDER BY city DESC, amount LIMIT 2"
                ) == [["Rome"], ["Rome"]]
    assert rows("SELECT DISTINCT city FROM orders ORDER BY city") == [
        [c] for c in sorted(expected)]


def test_unknown_fields_are_refused_and_named(core: Core,
                                              clients: dict[str, TestClient]) -> None:
    """A misspelt option is refused, not ignored: ignoring `snapshot_id` would answer about the
    wrong snapshot without a word."""
    _write(core, _orders(3))
    headers = _headers(core, "w")
    cases = [("op", "/query/execute", {"sql": "SELECT 1"}, ("sql", "query")),
             ("op", "/query/execute", {"query": "SELECT 1", "snapshot_id": 1},
              ("snapshot_id", "snapshot")),
             ("op", "/query/execute", {"query": "SELECT 1", "timeout": 3}, ("timeout",
                                                                             "timeout_s")),
             ("op", "/query/plan", {"statement": "SELECT 1"}, ("statement", "query")),
             ("cbo", "/optimize/query", {"qurey": "SELECT 1"}, ("qurey", "query")),
             ("tenant", "/data/execute", {"sql": "SELECT 1"}, ("sql", "query")),
             ("tenant", "/data/execute", {"query": "SELECT 1", "as_of": 1},
              ("as_of", "snapshot"))]
    for client, path, body, (given, meant) in cases:
        response = clients[client].post(path, headers=headers, json=body)
        assert response.status_code == 422, (path, response.text)
        answer = response.json()
        assert answer["error"] == "invalid_request", answer
        assert f"`{given}`" in answer["message"] and f"`{meant}`" in answer["message"], answer
        [problem] = answer["details"]["problems"]
        assert problem["location"] == ["body", given] and problem["type"] == "unknown_field"
    nested = clients["op"].post("/query/execute", headers=headers, json={
        "dsl": {"from": "orders", "wher": "amount > 1"}})
    assert nested.status_code == 422 and "`wher`" in nested.json()["message"], nested.text
    # The documented fields are all still taken.
    ok = clients["op"].post("/query/execute", headers=headers, json={
        "query": "SELECT count(*) FROM orders", "dialect": "duckdb", "mode": "sync",
        "format": "json", "timeout_s": 30, "track": False, "plan": "auto"})
    assert ok.status_code == 200 and ok.json()["rows"] == [[3]], ok.text


def test_a_declared_table_answers_with_its_columns_and_no_rows(
        core: Core, clients: dict[str, TestClient]) -> None:
    _write(core, _orders(3))
    headers = _headers(core, "w")
    with TestClient(create_app(Service.CATALOG, core), raise_server_exceptions=False) as cat:
        declared = cat.post("/metadata/tables", headers=headers, json={
            "table": "people", "columns": {"name": "string", "age": "int64",
                                           "tags": {"list": "string"},
                                           "home": {"struct": {"city": "string"}}}})
        assert declared.status_code == 201, declared.text

    def run(sql: str, plan: str = "auto") -> dict[str, Any]:
        response = clients["op"].post("/query/execute", headers=headers,
                                      json={"query": sql, "plan": plan})
        assert response.status_code == 200, (sql, response.text)
        body: dict[str, Any] = response.json()
        return body

    everything = run("SELECT * FROM people")
    assert [c["name"] for c in everything["columns"]] == [  # no keys written yet: no data_id
        "name", "age", "tags", "home"]
    assert everything["rows"] == [] and everything["row_count"] == 0
    types = {c["name"]: c["type"] for c in everything["columns"]}
    assert (types["name"], types["age"]) == ("string", "int64")
    assert types["tags"].startswith("list") and types["home"] == "struct<city: string>"
    for plan in ("single", "distributed"):
        assert run("SELECT count(*) FROM people", plan)["rows"] == [[0]]
    grouped = run("SELECT name, count(*) AS n, max(age) AS oldest FROM people GROUP BY name")
    assert grouped["rows"] == [] and [(c["name"], c["type"]) for c in grouped["columns"]] == [
        ("name", "string"), ("n", "int64"), ("oldest", "int64")]
    typed = run("SELECT age + 1 AS next, home.city FROM people WHERE age > 3")
    assert typed["rows"] == [] and typed["columns"][0]["type"] == "int64"
    joined = run("SELECT count(*) FROM people p JOIN orders o ON p.name = o.city")
    assert joined["rows"] == [[0]]
    # Written to (not yet flushed) and flushed, the same table answers with its rows.
    _write(core, [{"data_id": "p1", "table": "people", "payload": {"name": "Ann", "age": 4}}])
    assert run("SELECT name, age FROM people")["rows"] == [["Ann", 4]]
    # The record wrote a key: data_id is a column of the table now, flushed or not.
    assert run("SELECT * FROM people")["rows"] == [["p1", "Ann", 4, None, None]]
    assert core.flusher is not None
    flush_here(core.flusher)
    assert run("SELECT count(*) FROM people")["rows"] == [[1]]
    assert run("SELECT * FROM people")["rows"] == [["p1", "Ann", 4, None, None]]


def test_bodies_take_only_the_json_types_their_documents_declare(
        core: Core, clients: dict[str, TestClient]) -> None:
    """`false` is not a number and `"5"` not an integer: refused (422, naming the field), not
    converted and stored; an integer is still a number."""
    admin = _headers(core, "boss", role=Role.ADMIN)
    cbo = clients["cbo"]
    for body in ({"broadcast_threshold_mb": False}, {"max_fragments": "5"},
                 {"broadcast_threshold_mb": "1"}, {"max_fragments": 2.5}):
        refused = cbo.put("/optimize/config", headers=admin, json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["details"]["problems"][0]["location"] == ["body", *body]
    before = cbo.get("/optimize/config", headers=admin).json()
    assert before["broadcast_threshold_mb"] != 0.0
    changed = cbo.put("/optimize/config", headers=admin, json={"broadcast_threshold_mb": 3})
    assert changed.status_code == 200 and changed.json()["broadcast_threshold_mb"] == 3.0
    late = clients["op"].post("/query/execute", headers=admin,
                              json={"query": "SELECT 1", "timeout_s": "10"})
    assert late.status_code == 422


def test_names_holding_a_nul_come_back_whole(core: Core, clients: dict[str, TestClient]) -> None:
    """DuckDB's Arrow export cuts names at a NUL: a column named `"\\u0000x"` came back named
    `""`. The answer names columns and struct fields as the query does, as DuckDB itself does
    (its relation's `columns`), in either plan."""
    _write(core, _orders(30))
    assert core.flusher is not None
    flush_here(core.flusher)
    headers = _headers(core, "w")
    sql = ('SELECT city AS "c\u0000", sum(amount) AS "s\u0000um", '
           "{'k\u0000': min(amount)} AS s FROM orders GROUP BY 1 ORDER BY 1")
    for plan in ("single", "distributed"):
        body = clients["op"].post("/query/execute", headers=headers,
                                  json={"query": sql, "plan": plan}).json()
        assert [c["name"] for c in body["columns"]] == ["c\u0000", "s\u0000um", "s"], body
        assert body["rows"][0] == ["Lima", 155, {"k\u0000": 2}], (plan, body)
    result = f"/query/{body['query_id']}/result"
    lines = clients["op"].get(result, headers=headers, params={"format": "jsonl", "limit": 1})
    assert orjson.loads(lines.text) == {"c\u0000": "Lima", "s\u0000um": 155, "s": {"k\u0000": 2}}
    csv = clients["op"].get(result, headers=headers, params={"format": "csv", "limit": 1})
    assert csv.text.splitlines()[0] == '"c\u0000","s\u0000um","s"'
    arrow = clients["op"].post("/query/execute", headers=headers,
                               json={"query": sql, "format": "arrow"})
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.column_names == ["c\u0000", "s\u0000um", "s"]
    assert table.column("s").to_pylist()[0] == {"k\u0000": 2}
