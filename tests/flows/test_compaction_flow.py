"""Compaction, retention and cleanup as Prefect flows on the test harness, started on demand
over HTTP and reported by GET /runs/{id}, as the CBO Engine and Operation Node serve them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prefect import tags
from prefect.settings import PREFECT_API_URL

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows import run_results
from flows.cleanup import cleanup
from flows.compaction import compaction, compaction_job
from flows.ingest import flush_here
from flows.retention import retention
from flows.run_results import SHARED_TAG
from flows.runs import file
from lakehouse.auth.identity import Role
from lakehouse.catalog.options import DAY_S, TableOptions
from lakehouse.config import Settings
from tasks.maintenance import MaintenanceContext, maintenance_context_of, plan_compaction_step
from tests.conftest import PASSWORD


@pytest.fixture
def core(maintained_core: Core) -> Core:
    return maintained_core


def _flushes(core: Core, count: int, tenant: str = "acme", **extra: Any) -> None:
    assert core.ingest is not None and core.flusher is not None
    for n in range(count):
        core.ingest.write(tenant, [{"data_id": f"r{n}-{i}", "payload": {"n": n}, **extra}
                                   for i in range(10)]).answer(timeout_s=10)
        flush_here(core.flusher)


def _context(core: Core) -> MaintenanceContext:
    assert core.catalog and core.storage and core.table_options
    return maintenance_context_of(core.settings, core.catalog, core.storage,
                                  core.table_options)


def _token(core: Core, user: str, tenant: str, role: Role) -> dict[str, str]:
    core.auth.create_user(user, PASSWORD, tenant, role)
    return {"Authorization": f"Bearer {core.auth.login(user, PASSWORD).access_token}"}


def test_compaction_run_merges_and_reports_before_and_after(core: Core) -> None:
    assert core.catalog is not None
    _flushes(core, 4)
    context = _context(core)
    # The flow finds what a process files for it (see flows/runs.py).
    dry = compaction(dry_run=True, job=file(compaction_job(context, dry_run=True), "test"))
    assert dry["plan"]["files"] == 4 and len(core.catalog.files("acme", "records")) == 4

    with tags(SHARED_TAG):  # as the deployment's runs are tagged (prefect.yaml)
        result = compaction(job=file(compaction_job(context), "test"))
    assert (result["files_before"], result["files_after"]) == (4, 1)
    assert result["rows_before"] == result["rows_after"] == 40
    assert result["bytes_before"] > 0 and result["bytes_after"] > 0
    assert len(core.catalog.files("acme", "records")) == 1

    # The result is attached to the run, so another process (the API of a scheduled run)
    # reads it from Prefect: forget it here first.
    run_results._results.clear()
    headers = _token(core, "reader", "acme", Role.READER)
    with TestClient(create_app(Service.OPERATION, core)) as client:
        run = client.get(f"/runs/{result['run_id']}", headers=headers).json()
    assert run.get("flow") == "compaction" and run["state"] == "COMPLETED", run
    assert run["name"] == "compaction of all tables"
    assert run["result"]["files_after"] == 1 and run["progress"]["done"] >= 2


def test_compaction_on_demand_over_http(core: Core) -> None:
    assert core.catalog is not None
    _flushes(core, 3)
    _flushes(core, 3, tenant="globex")
    writer = _token(core, "writer", "acme", Role.WRITER)
    reader = _token(core, "reader", "acme", Role.READER)
    with TestClient(create_app(Service.CBO, core), raise_server_exceptions=False) as cbo, \
            TestClient(create_app(Service.OPERATION, core)) as operation:
        assert cbo.post("/optimize/compact", json={}, headers=reader).status_code == 403
        missing = cbo.post("/optimize/compact", json={"table": "nope"}, headers=writer)
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        bad = cbo.post("/optimize/compact", json={"table": "a b"}, headers=writer)
        assert bad.status_code == 400 and set(bad.json()) == {"error", "message", "details"}
        assert cbo.post("/optimize/compact", json={"dry": 1}, headers=writer).status_code == 422

        started = cbo.post("/optimize/compact", json={"table": "records"}, headers=writer)
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        assert started.headers["location"].endswith(
            f":{core.settings.operation_port}/runs/{run_id}")
        assert operation.get(started.headers["location"], headers=writer).status_code == 200
        run = _wait(operation, run_id, writer)
    assert run["state"] == "COMPLETED", run
    assert run["name"] == "compaction of acme/records"
    assert (run["result"]["files_before"], run["result"]["files_after"]) == (3, 1)
    # Only the caller's tenant was compacted.
    assert len(core.catalog.files("acme", "records")) == 1
    assert len(core.catalog.files("globex", "records")) == 3


def _wait(client: TestClient, run_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run: dict[str, Any] = client.get(f"/runs/{run_id}", headers=headers).json()
        if run.get("state") in ("COMPLETED", "FAILED", "CRASHED") and run.get("result"):
            return run
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not finish: {run}")


def test_retention_and_cleanup_flows(core: Core) -> None:
    assert core.catalog is not None and core.table_options is not None
    _flushes(core, 2, timestamp="2020-01-01T00:00:00Z")
    _flushes(core, 1)
    core.table_options.put("acme", "records", TableOptions(retention_s=30 * DAY_S))
    name = file(_context(core), "test")
    result = retention(context=name)
    assert (result["files_removed"], result["rows_removed"]) == (2, 20)
    assert [f.partition for f in core.catalog.files("acme", "records")] != ["day=2020-01-01"]
    swept = cleanup(grace_s=0, orphan_age_s=0, context=name)
    assert swept["files_deleted"] == 2 and swept["orphans_deleted"] == 0


def test_an_explicit_compaction_merges_the_partition_still_receiving_flushes(
        tmp_path: Path) -> None:
    """The schedule spares today's partition while flushes land in it (COMPACTION_ACTIVE_
    WINDOW_S); someone asking for a table's compaction gets every partition merged."""
    settings = Settings.for_tests(tmp_path, prefect_api_url=PREFECT_API_URL.value(),
                                  compaction_min_files=2, compaction_on_dask=False)
    assert settings.compaction_active_window_s > 60  # the default: today's partition is active
    core = build_core(settings, ingest=True)
    try:
        assert core.catalog is not None
        _flushes(core, 3)
        context = _context(core)
        scheduled = plan_compaction_step(context, "acme", "records")
        assert not scheduled.groups and [s.reason for s in scheduled.skipped] == ["active"]
        writer = _token(core, "writer", "acme", Role.WRITER)
        with TestClient(create_app(Service.CBO, core)) as cbo, \
                TestClient(create_app(Service.OPERATION, core)) as operation:
            started = cbo.post("/optimize/compact", json={"table": "records"}, headers=writer)
            assert started.status_code == 202, started.text
            run = _wait(operation, started.json()["run_id"], writer)
        assert run["state"] == "COMPLETED", run
        assert (run["result"]["files_before"], run["result"]["files_after"]) == (3, 1)
        assert len(core.catalog.files("acme", "records")) == 1
    finally:
        core.close()
