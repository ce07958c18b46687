"""Table options, the compaction backlog and the maintenance runs over HTTP (Metadata Catalog,
Monitoring). Prefect is not running here, so the last runs say it cannot be reached."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from tests.conftest import PASSWORD


def _headers(core: Core, user: str, tenant: str, role: Role) -> dict[str, str]:
    core.auth.create_user(user, PASSWORD, tenant, role)
    return {"Authorization": f"Bearer {core.auth.login(user, PASSWORD).access_token}"}


def test_table_options_round_trip_and_bad_input(ingest_core: Core) -> None:
    assert ingest_core.ingest is not None and ingest_core.flusher is not None
    ingest_core.ingest.write("acme", [{"data_id": "a", "payload": {"x": 1}}]).answer(10)
    flush_here(ingest_core.flusher)
    writer = _headers(ingest_core, "w", "acme", Role.WRITER)
    reader = _headers(ingest_core, "r", "acme", Role.READER)
    other = _headers(ingest_core, "o", "globex", Role.WRITER)
    with TestClient(create_app(Service.CATALOG, ingest_core),
                    raise_server_exceptions=False) as client:
        url = "/metadata/tables/records/options"
        assert client.get(url, headers=reader).json()["retention_days"] is None
        put = client.put(url, json={"retention_days": 30, "min_files": 8}, headers=writer)
        assert put.status_code == 200, put.text
        got = client.get(url, headers=reader).json()
        assert (got["retention_days"], got["min_files"], got["target_file_mb"]) == (30, 8, None)
        assert client.put(url, json={"retention_days": 1}, headers=reader).status_code == 403
        for body in ({"retention_days": -1}, {"min_files": 1}, {"target_file_mb": 0}):
            bad = client.put(url, json=body, headers=writer)
            # Out of the ranges the document states: refused by the schema itself.
            assert bad.status_code == 422 and bad.json()["error"] == "invalid_request", body
        assert client.put(url, json={"colour": 1}, headers=writer).status_code == 422
        # Another tenant has no such table: options never cross tenants.
        assert client.get(url, headers=other).status_code == 404
        assert client.put(url, json={"retention_days": 1}, headers=other).status_code == 404
        assert client.get(url, headers=reader).json()["retention_days"] == 30
        assert client.get("/metadata/tables/a%20b/options", headers=reader).status_code == 400


def test_backlog_and_last_runs_in_stats_and_metrics(ingest_core: Core) -> None:
    assert ingest_core.ingest is not None and ingest_core.flusher is not None
    for n in range(3):
        ingest_core.ingest.write("acme", [{"data_id": f"a{n}", "payload": {"x": n}}]).answer(10)
        flush_here(ingest_core.flusher)
    reader = _headers(ingest_core, "r", "acme", Role.READER)
    with TestClient(create_app(Service.CATALOG, ingest_core)) as catalog, \
            TestClient(create_app(Service.MONITORING, ingest_core)) as monitoring:
        stats = catalog.get("/metadata/stats", headers=reader).json()
        assert stats["compaction_backlog"]["acme"]["small_files"] == 3
        assert stats["compaction_backlog"]["acme"]["small_bytes"] > 0
        assert "error" in stats["maintenance_last_runs"]
        text = monitoring.get("/metrics").text
        # Scraped without credentials: platform totals, no tenant named.
        assert "lakehouse_compaction_backlog_files 3.0" in text and "acme" not in text
        assert monitoring.get("/metrics/tenants").status_code == 401
        assert monitoring.get("/metrics/tenants", headers=reader).status_code == 403
        admin = _headers(ingest_core, "ops", "ops", Role.ADMIN)
        per_tenant = monitoring.get("/metrics/tenants", headers=admin).text
    assert 'lakehouse_compaction_backlog_files{tenant="acme"} 3.0' in per_tenant
