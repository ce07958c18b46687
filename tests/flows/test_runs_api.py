"""GET /runs on the Operation Node, reading real flow runs from Prefect's test harness."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from prefect.settings import PREFECT_API_URL

from api.app import create_app
from api.core import build_core
from api.services import Service
from flows.ingest import flush
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD


def test_a_flush_run_is_visible_with_progress_and_result(tmp_path: Path) -> None:
    settings = Settings.for_tests(tmp_path, prefect_api_url=PREFECT_API_URL.value())
    core = build_core(settings, ingest=True)
    assert core.ingest is not None and core.flusher is not None
    core.ingest.write("acme", [{"data_id": f"r{i}", "payload": {"i": i}} for i in range(5)]
                      ).answer(timeout_s=10)
    result = flush(core.flusher, reason="test")
    assert not result["run_id"].startswith("local-")

    headers = {}
    for user, tenant in (("w", "acme"), ("g", "globex")):
        core.auth.create_user(user, PASSWORD, tenant, Role.READER)
        headers[tenant] = {"Authorization":
                           f"Bearer {core.auth.login(user, PASSWORD).access_token}"}
    client = TestClient(create_app(Service.OPERATION, core), raise_server_exceptions=False)
    run = client.get(f"/runs/{result['run_id']}", headers=headers["acme"]).json()
    assert (run["flow"], run["state"], run["name"]) == ("ingest", "COMPLETED", "ingest (test)")
    assert run["progress"]["done"] == run["progress"]["total"] >= 3
    assert run["result"]["rows"] == 5 and run["started"] and run["ended"]
    # The shared log's flush is every tenant's to see.
    assert client.get(f"/runs/{result['run_id']}", headers=headers["globex"]).status_code == 200
    listed = client.get("/runs", params={"flow": "ingest"}, headers=headers["acme"]).json()
    assert result["run_id"] in [r["id"] for r in listed["runs"]]
    assert client.get(f"/runs/{uuid.uuid4()}", headers=headers["acme"]).status_code == 404
    assert client.get("/runs/not-a-run", headers=headers["acme"]).status_code == 404
    client.close()
    core.close()
