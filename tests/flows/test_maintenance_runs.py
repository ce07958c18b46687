"""The last maintenance runs (GET /metadata/stats) and GET /runs show runs that ran, not the
future runs a deployment's schedule has already created (they have no start time yet)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL
from prefect.states import Scheduled
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.core import build_core
from api.services import Service
from flows.cleanup import cleanup
from flows.housekeeping import housekeeping
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD


def _schedule(flow: object, hours: int) -> str:
    """A future run, as Prefect's scheduler creates them for a deployment's schedule."""
    async def create() -> str:
        async with get_client() as client:
            run = await client.create_flow_run(flow, state=Scheduled(  # type: ignore[arg-type]
                scheduled_time=dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)))
        return str(run.id)

    return asyncio.run(create())


def test_last_runs_and_run_list_skip_future_scheduled_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "worker"))  # the deployment's settings
    monkeypatch.setenv("ENVIRONMENT", "test")
    ran = cleanup(grace_s=0, return_state=True)
    kept = housekeeping(catalog_url=f"sqlite:///{tmp_path / 'tokens.db'}", return_state=True)
    assert ran.is_completed() and kept.is_completed()
    cleanup_id = ran.result()["run_id"]
    future = [_schedule(cleanup, hours) for hours in (1, 2)] + [_schedule(housekeeping, 1)]

    settings = Settings.for_tests(tmp_path / "api", prefect_api_url=PREFECT_API_URL.value())
    core = build_core(settings)
    core.auth.create_user("root", PASSWORD, "acme", Role.ADMIN)
    headers = {"Authorization": f"Bearer {core.auth.login('root', PASSWORD).access_token}"}
    with TestClient(create_app(Service.CATALOG, core)) as catalog, \
            TestClient(create_app(Service.OPERATION, core)) as operation, \
            TestClient(create_app(Service.MONITORING, core)) as monitoring:
        last = catalog.get("/metadata/stats", headers=headers).json()["maintenance_last_runs"]
        assert last["cleanup"]["id"] == cleanup_id
        assert last["cleanup"]["state"] == "COMPLETED"
        assert last["cleanup"]["started"] and last["cleanup"]["ended"]
        assert last["cleanup"]["result"]["files_deleted"] == 0
        assert last["housekeeping"]["state"] == "COMPLETED"
        assert last["housekeeping"]["result"]["expired_tokens_purged"] == 0
        assert last["cleanup"]["succeeded_at"] == last["cleanup"]["ended_at"]
        metrics = {(s.name, s.labels.get("flow"), s.labels.get("state")): s.value
                   for family in text_string_to_metric_families(monitoring.get("/metrics").text)
                   for s in family.samples}
        assert metrics["lakehouse_maintenance_run_duration_seconds_count", "cleanup",
                       "completed"] == 1
        assert metrics["lakehouse_maintenance_last_success_timestamp_seconds", "cleanup",
                       None] == pytest.approx(last["cleanup"]["succeeded_at"])

        listed = operation.get("/runs", params={"flow": "cleanup"}, headers=headers).json()
        ids = [r["id"] for r in listed["runs"]]
        assert ids[0] == cleanup_id and not set(future) & set(ids)
        assert all(r["started"] for r in listed["runs"])
        started = [r["started"] for r in listed["runs"]]
        assert started == sorted(started, reverse=True)  # newest first

        upcoming = operation.get("/runs", params={"flow": "cleanup", "state": "scheduled"},
                                 headers=headers).json()
        assert [r["id"] for r in upcoming["runs"]][:2] == future[:2]  # soonest first
        assert {r["state"] for r in upcoming["runs"]} == {"SCHEDULED"}
        bad = operation.get("/runs", params={"state": "later"}, headers=headers)
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_state"
        assert "scheduled" in bad.json()["message"]
    core.close()
