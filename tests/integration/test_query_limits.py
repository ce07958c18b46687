"""A query's resources are bounded: its time by QUERY_TIMEOUT_S whatever it asks, its memory by
QUERY_MEMORY_LIMIT_MB (a query past it fails alone), and finished results by how many each
tenant keeps and by spilling large ones to files."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.errors import RateLimited, Unavailable
from lakehouse.executor import sandbox
from lakehouse.executor.queries import QueryRegistry, ResultLimits
from lakehouse.fair_share import PRESSING_S, LastTimes, Pace
from tests.conftest import logged_in
from tests.integration.test_query_api import _orders, _pages_and_formats, _write

SLOW = "SELECT count(*) FROM orders a, orders b, orders c WHERE a.amount + b.amount > c.amount"


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[Core, TestClient, dict[str, str]]]:
    core = build_core(Settings.for_tests(tmp_path, query_on_dask=False, query_timeout_s=1.0,
                                         query_memory_limit_mb=64), ingest=True)
    assert core.flusher is not None
    _write(core, _orders(2000))
    flush_here(core.flusher)
    headers = logged_in(core, {"acme": ("w", Role.WRITER)})["acme"]
    with TestClient(create_app(Service.OPERATION, core), raise_server_exceptions=False) as op:
        yield core, op, headers
    core.close()
    sandbox.set_memory_limit(0)  # the next tests' databases: DuckDB's default


def test_a_query_cannot_ask_for_more_time_than_the_platform_gives(
        limited: tuple[Core, TestClient, dict[str, str]]) -> None:
    _, op, headers = limited
    started = time.monotonic()
    answer = op.post("/query/execute", headers=headers, json={"query": SLOW, "timeout_s": 3600})
    assert answer.status_code == 408, answer.text
    assert time.monotonic() - started < 20
    body = answer.json()
    assert body["error"] == "query_timeout" and body["details"]["timeout_s"] == 1.0
    assert "QUERY_TIMEOUT_S" in body["message"]
    # Less than the platform's limit is the query's own.
    short = op.post("/query/execute", headers=headers, json={"query": SLOW, "timeout_s": 0.2})
    assert short.status_code == 408 and short.json()["details"]["timeout_s"] == 0.2


def test_a_query_past_its_memory_limit_fails_alone(
        limited: tuple[Core, TestClient, dict[str, str]]) -> None:
    _, op, headers = limited
    with sandbox.Sandbox({}) as box:
        setting = box.run("SELECT current_setting('memory_limit') AS m").to_pylist()[0]["m"]
    assert setting in ("61.0 MiB", "64.0 MiB"), setting
    # 4,000,000 values in one list cannot be spilled: past 64 MB the query fails, cleanly.
    greedy = "SELECT len(list(a.amount * 2000 + b.amount)) AS n FROM orders a, orders b"
    answer = op.post("/query/execute", headers=headers, json={"query": greedy})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "query_failed" and "memory" in answer.json()["message"].lower()
    fine = op.post("/query/execute", headers=headers,
                   json={"query": "SELECT count(*) AS n FROM orders"})
    assert fine.status_code == 200 and fine.json()["rows"] == [[2000]]


def _finished(registry: QueryRegistry, tenant: str, result: pa.Table) -> Any:
    run = registry.start(tenant, "SELECT …", "sync")
    registry.finish(run, result)
    return run


def test_a_light_tenant_keeps_its_least_share_of_queries_under_a_lowered_limit() -> None:
    """QUERY_MIN_CONCURRENT (2 here) is the floor the lagging loop lowers the queries limit to
    and each tenant's least share: the flood holds the 2, a light tenant asking often (quick
    queries, more than 2 a second, so not steady) still runs 2 of its own (not half of 2), then
    each is refused."""
    registry = QueryRegistry(4, 10, max_concurrent=8, least=2)
    now = _clocked(registry)
    registry.capacity = 2  # lowered while the loop lags (api/loop_watch.py)
    flood = _flooding(registry, "flood", 2)
    with pytest.raises(Unavailable):  # alone at the limit: the platform is full
        registry.start("flood", "SELECT 1", "sync")
    for _ in range(30):  # 10 a second for 3 s
        now[0] += 0.1
        registry.finish(registry.start("light", "SELECT 1", "sync"), pa.table({"x": [1]}))
    light = [registry.start("light", "SELECT 1", "sync") for _ in range(2)]
    for tenant in ("light", "flood"):
        with pytest.raises(RateLimited) as refused:
            registry.start(tenant, "SELECT 1", "sync")
        assert refused.value.details == {"held": 2, "fair_share": 2, "capacity": 2}
    assert len(flood) == len(light) == 2


def _clocked(registry: QueryRegistry) -> list[float]:
    """The registry's memories of refusals, limits met and asks on a clock the test moves: on
    a loaded machine seconds can pass between two asks, and a tenant would turn steady."""
    now = [0.0]
    registry.refusals = LastTimes(clock=lambda: now[0])
    registry.at_limit = LastTimes(clock=lambda: now[0])
    registry.asks = Pace(per_s=registry.least, room=registry.least * PRESSING_S,
                         clock=lambda: now[0])
    return now


def _flooding(registry: QueryRegistry, tenant: str, running: int) -> list[Any]:
    """`tenant` floods: it starts queries up to its own limit at once (a burst the registry
    lets in as it would a dashboard's refresh), is refused the next, and runs `running` of them
    still: refused lately, it is held to its share of the limit in force."""
    runs = []
    with contextlib.suppress(RateLimited, Unavailable):
        while True:
            runs.append(registry.start(tenant, "SELECT 1", "sync"))
    for run in runs[running:]:
        registry.finish(run, pa.table({"x": [1]}))
    return runs[:running]


def test_a_light_tenant_keeps_its_least_share_beside_a_first_burst() -> None:
    """Two flooding tenants run the configured 8 before the limit comes down to 2: a tenant
    not refused lately still runs its least share (2) beside them. Once refused it is held to
    its share of the lowered limit, until 10 s without a refusal."""
    registry = QueryRegistry(4, 10, max_concurrent=8, least=2)
    now = _clocked(registry)

    def start(tenant: str) -> Any:
        return registry.start(tenant, "SELECT 1", "sync")

    floods = [start(tenant) for tenant in ("flood", "other") for _ in range(4)]
    registry.capacity = 2
    light = [start("light") for _ in range(2)]
    with pytest.raises(RateLimited) as refused:
        start("light")
    assert refused.value.details == {"held": 2, "fair_share": 2, "capacity": 2}
    registry.finish(light.pop(), pa.table({"x": [1]}))
    with pytest.raises(RateLimited) as refused:  # refused lately: its share of the 2 now
        start("light")
    assert refused.value.details == {"held": 1, "fair_share": 1, "capacity": 2}
    now[0] = 10.0
    light.append(start("light"))
    assert len(floods) == 8 and len(light) == 2


def test_a_tenant_starting_queries_slowly_is_not_refused_for_the_lowered_limit() -> None:
    """A tenant starting no more than its least share of queries a second (2: one every half
    second) runs as many as the platform's latency makes it hold, up to its own limit (4),
    whatever the lowered limit. Having met its own limit, it is no longer steady."""
    registry = QueryRegistry(4, 10, max_concurrent=8, least=2)
    now = _clocked(registry)
    registry.capacity = 2

    def start(tenant: str) -> Any:
        return registry.start(tenant, "SELECT 1", "sync")

    flood = _flooding(registry, "flood", 2)
    with pytest.raises(Unavailable):
        start("flood")
    steady = []
    for _ in range(4):
        now[0] += 1.0
        steady.append(start("steady"))  # none has ended: the platform is slow
    now[0] += 1.0
    with pytest.raises(RateLimited) as refused:
        start("steady")
    assert refused.value.code == "too_many_queries"  # its own limit, not the lowered one
    with pytest.raises(RateLimited) as refused:  # refused 5 s ago: its least share, 2
        start("flood")
    assert refused.value.details == {"held": 2, "fair_share": 2, "capacity": 2}
    registry.finish(steady.pop(), pa.table({"x": [1]}))
    now[0] += 1.0
    with pytest.raises(RateLimited) as refused:  # at its own limit a second ago: not steady
        start("steady")
    assert refused.value.details == {"held": 3, "fair_share": 2, "capacity": 2}
    assert len(flood) == 2


def test_a_dashboard_refreshing_a_few_at_once_is_steady_beside_a_flood() -> None:
    """CI's run of the overload test, on a slow machine: the flood runs its own limit and is
    refused, the limit in force is down to 2, and a dashboard asking about once a second over
    4 connections, for queries that take seconds, sends two at once when answers come together
    (the client catches up). It asks no faster than its least share (2) a second over 10 s, so
    it is steady and runs up to its own limit (4), not only its least share. Having met its own
    limit, it is not steady for 10 s."""
    registry = QueryRegistry(4, 10, max_concurrent=8, least=2)
    now = _clocked(registry)
    flood = _flooding(registry, "flood", 4)
    registry.capacity = 2
    dashboard = [registry.start("dashboard", "SELECT 1", "sync") for _ in range(2)]
    now[0] += 3.0  # answers that took 3 s: the client sends the two it owes at once
    dashboard.extend(registry.start("dashboard", "SELECT 1", "sync") for _ in range(2))
    with pytest.raises(RateLimited) as refused:
        registry.start("dashboard", "SELECT 1", "sync")
    assert refused.value.code == "too_many_queries"
    for run in dashboard[2:]:
        registry.finish(run, pa.table({"x": [1]}))
    now[0] += 1.0
    with pytest.raises(RateLimited) as refused:  # at its own limit a second ago: not steady
        registry.start("dashboard", "SELECT 1", "sync")
    assert refused.value.details == {"held": 2, "fair_share": 2, "capacity": 2}
    assert len(flood) == 4


def test_a_dashboard_refused_while_catching_up_is_steady_again_once_it_asks_slowly() -> None:
    """A client that owed many queries sends them as fast as answers come back: faster than
    its least share (2) a second on average, it is not steady and is refused past its least
    share. Asking once a second again, it is steady within a second or two, not refused on for
    the 10 s a refusal is remembered."""
    registry = QueryRegistry(4, 10, max_concurrent=8, least=2)
    now = _clocked(registry)
    flood = _flooding(registry, "flood", 4)
    registry.capacity = 2
    for _ in range(25):  # 25 owed queries, answered at once
        now[0] += 0.05
        registry.finish(registry.start("dashboard", "SELECT 1", "sync"), pa.table({"x": [1]}))
    dashboard = [registry.start("dashboard", "SELECT 1", "sync") for _ in range(2)]
    with pytest.raises(RateLimited) as refused:
        registry.start("dashboard", "SELECT 1", "sync")
    assert refused.value.details == {"held": 2, "fair_share": 2, "capacity": 2}
    for _ in range(2):
        now[0] += 1.0
        dashboard.append(registry.start("dashboard", "SELECT 1", "sync"))
    assert len(dashboard) == 4 and len(flood) == 4


def test_a_tenant_asking_past_its_own_limit_stays_unsteady_while_refused() -> None:
    """A tenant asking slowly (once a second) for queries that take long, more than its own
    limit (4) at once: having met its limit it is held to its least share (2) of the lowered
    limit, and it stays unsteady while it keeps being refused, not steady again every 10 s and
    back at its own limit."""
    registry = QueryRegistry(4, 10, max_concurrent=8, least=2)
    now = _clocked(registry)
    _flooding(registry, "flood", 2)
    registry.capacity = 2
    slow = [registry.start("slow", "SELECT 1", "sync") for _ in range(4)]
    now[0] += 1.0
    with pytest.raises(RateLimited) as refused:
        registry.start("slow", "SELECT 1", "sync")
    assert refused.value.code == "too_many_queries"
    for run in slow[2:]:
        registry.finish(run, pa.table({"x": [1]}))
    for _ in range(30):  # once a second for 30 s: refused at its least share every time
        now[0] += 1.0
        with pytest.raises(RateLimited) as refused:
            registry.start("slow", "SELECT 1", "sync")
        assert refused.value.details == {"held": 2, "fair_share": 2, "capacity": 2}
    now[0] += 10.0  # 10 s without asking: steady again
    registry.start("slow", "SELECT 1", "sync")


def test_tenants_starting_slowly_fill_only_the_configured_limit() -> None:
    """Three tenants each starting a query a second, none ending, with the limit in force at
    2: past their least shares (2 each) they are let in as steady up to the configured 8 and no
    further, and a light tenant still runs its least share beside them."""
    registry = QueryRegistry(4, 10, max_concurrent=8, least=2)
    now = _clocked(registry)
    registry.capacity = 2
    tenants = [f"paced-{n}" for n in range(3)]
    refused = 0
    for _ in range(4):
        now[0] += 1.0
        for tenant in tenants:
            try:
                registry.start(tenant, "SELECT 1", "sync")
            except RateLimited:
                refused += 1
    assert sum(len(registry.runs(tenant)) for tenant in tenants) == 8 and refused == 4
    light = [registry.start("light", "SELECT 1", "sync") for _ in range(2)]
    with pytest.raises(RateLimited):
        registry.start("light", "SELECT 1", "sync")
    assert len(light) == 2


def test_results_are_kept_per_tenant_and_large_ones_in_files(tmp_path: Path) -> None:
    spill = tmp_path / "results"
    registry = QueryRegistry(10, ResultLimits(100, 2, spill_bytes=1000, spill_dir=spill))
    small = pa.table({"x": [1, 2, 3]})
    big = pa.table({"x": list(range(10_000))})
    theirs = _finished(registry, "globex", small)
    first = _finished(registry, "acme", big)
    assert first.result.equals(big) and (spill / f"{first.query_id}.arrow").exists()
    assert not (spill / f"{theirs.query_id}.arrow").exists()  # small: in memory
    _finished(registry, "acme", small)
    _finished(registry, "acme", small)  # a third of acme's: its oldest goes, with its file
    assert registry.find(first.query_id) is None
    assert not (spill / f"{first.query_id}.arrow").exists()
    assert registry.find(theirs.query_id) is theirs  # another tenant's stays
    assert len(registry.runs("acme")) == 2
    # A new process starts without the files of the old one's runs.
    (spill / "q-stale.arrow").write_bytes(b"x")
    QueryRegistry(10, ResultLimits(100, 2, spill_bytes=1000, spill_dir=spill))
    assert not (spill / "q-stale.arrow").exists()


def test_a_spilled_result_pages_and_comes_in_every_format(tmp_path: Path) -> None:
    core = build_core(Settings.for_tests(tmp_path, query_max_result_rows=7,
                                         query_result_spill_mb=0), ingest=True)
    try:
        with TestClient(create_app(Service.OPERATION, core),
                        raise_server_exceptions=False) as op:
            _pages_and_formats(core, {"op": op})
        assert list((core.settings.data_dir / "query-results").glob("q-*.arrow"))
    finally:
        core.close()
