"""Tracked queries as Prefect flow runs named `query` (plan, stage, merge tasks and the plan as
an artifact), on Prefect's test harness: async ones, `"track": true` ones, and sync ones the
optimizer expects to run longer than the threshold."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prefect.settings import PREFECT_API_URL

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(Settings.for_tests(tmp_path, prefect_api_url=PREFECT_API_URL.value(),
                                          query_on_dask=False), ingest=True)
    assert built.ingest is not None and built.flusher is not None
    built.ingest.write("acme", [{"data_id": f"r{i}", "payload": {"i": i}}
                                for i in range(100)]).answer(timeout_s=10)
    flush_here(built.flusher)
    yield built
    built.close()


def _client(core: Core) -> tuple[TestClient, dict[str, str]]:
    user = f"u{uuid.uuid4().hex[:6]}"
    core.auth.create_user(user, PASSWORD, "acme", Role.READER)
    headers = {"Authorization": f"Bearer {core.auth.login(user, PASSWORD).access_token}"}
    return TestClient(create_app(Service.OPERATION, core)), headers


def _flow_run(run_id: str) -> dict[str, Any]:
    api = PREFECT_API_URL.value()
    run: dict[str, Any] = httpx.get(f"{api}/flow_runs/{run_id}").json()
    tasks = httpx.post(f"{api}/task_runs/filter", json={
        "flow_runs": {"id": {"any_": [run_id]}}}).json()
    artifacts = httpx.post(f"{api}/artifacts/filter", json={
        "artifacts": {"flow_run_id": {"any_": [run_id]}}}).json()
    return {"run": run, "tasks": sorted(t["name"] for t in tasks), "artifacts": artifacts}


def test_an_async_query_is_a_prefect_run(core: Core) -> None:
    client, headers = _client(core)
    started = client.post("/query/execute", headers=headers, json={
        "query": "SELECT sum(i) AS total FROM records", "mode": "async"})
    assert started.status_code == 202, started.text
    query_id = started.json()["query_id"]
    deadline = time.monotonic() + 60
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.get(f"/query/{query_id}", headers=headers).json()
        if status["state"] in ("finished", "failed"):
            break
        time.sleep(0.2)
    assert status["state"] == "finished", status
    page = client.get(f"/query/{query_id}/result", headers=headers).json()
    assert page["rows"] == [[sum(range(100))]]
    found = _completed(status["flow_run_id"])
    assert found["run"]["name"] == f"query {query_id}"
    assert [t.split("-")[0] for t in found["tasks"]] == ["merge", "plan", "scan"]
    assert any(a["description"] == "query plan" for a in found["artifacts"])


def test_tracked_and_long_sync_queries_run_as_flows(core: Core) -> None:
    client, headers = _client(core)
    tracked = client.post("/query/execute", headers=headers, json={
        "query": "SELECT count(*) FROM records", "track": True}).json()
    assert tracked["rows"] == [[100]]
    assert client.get(f"/query/{tracked['query_id']}",
                      headers=headers).json()["flow_run_id"] is not None
    untracked = client.post("/query/execute", headers=headers, json={
        "query": "SELECT count(*) FROM records"}).json()
    assert client.get(f"/query/{untracked['query_id']}",
                      headers=headers).json()["flow_run_id"] is None
    assert core.queries is not None
    core.queries.track_threshold_s = 0.0  # every query is now expected to be "long"
    long = client.post("/query/execute", headers=headers, json={
        "query": "SELECT count(*) FROM records"}).json()
    run_id = client.get(f"/query/{long['query_id']}", headers=headers).json()["flow_run_id"]
    assert run_id is not None
    _completed(run_id)


def _completed(run_id: str) -> dict[str, Any]:
    """The run once COMPLETED: the answer comes at the merge, the run ends just after."""
    deadline = time.monotonic() + 30
    while True:
        found = _flow_run(run_id)
        # Task runs are recorded from events, a moment after the flow run's own state.
        if found["run"]["state_type"] == "COMPLETED" and len(found["tasks"]) >= 3:
            return found
        assert time.monotonic() < deadline, found["run"]["state_type"]
        time.sleep(0.2)


def test_a_tracked_query_that_fails_fails_its_flow_run(core: Core) -> None:
    client, headers = _client(core)
    failed = client.post("/query/execute", headers=headers, json={
        "query": "SELECT CAST('x' || i AS INTEGER) FROM records", "track": True})
    assert 400 <= failed.status_code < 500, failed.text
    assert set(failed.json()) == {"error", "message", "details"}
    query_id = failed.json()["details"]["query_id"]
    status = client.get(f"/query/{query_id}", headers=headers).json()
    assert status["state"] == "failed" and status["flow_run_id"] is not None
    deadline = time.monotonic() + 30
    while (state := _flow_run(status["flow_run_id"])["run"]["state_type"]) != "FAILED":
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
