"""No answer names another tenant: shared runs (the flush of the shared log, a compaction of
every table) show each tenant its own part, on POST /data/flush, GET /runs, GET /runs/{id} and
GET /metadata/stats; another tenant's runs are not listed. Real Prefect (the test harness)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from prefect import tags

from api.app import create_app
from api.core import Core
from api.services import Service
from flows import run_results
from flows.compaction import compaction, compaction_job
from flows.ingest import flush_here
from flows.run_results import SHARED_TAG, tenant_tag
from flows.runs import file
from lakehouse.auth.identity import Role
from tasks.maintenance import maintenance_context_of
from tests.conftest import logged_in


@pytest.fixture
def core(maintained_core: Core) -> Core:
    return maintained_core


def _write(core: Core, tenant: str, table: str, rows: int, tag: str = "") -> None:
    assert core.ingest is not None
    core.ingest.write(tenant, [{"data_id": f"{tag}{i}", "table": table, "payload": {"i": i}}
                               for i in range(rows)]).answer(timeout_s=10)


def _users(core: Core) -> dict[str, dict[str, str]]:
    return logged_in(core, {"acme": ("writer", Role.WRITER), "globex": ("spy", Role.WRITER),
                            "ops": ("root", Role.ADMIN)})


def test_the_flush_of_the_shared_log_shows_each_tenant_its_own_tables(core: Core) -> None:
    _write(core, "acme", "orders", 5)
    _write(core, "globex", "secret_plans", 7)
    headers = _users(core)
    with TestClient(create_app(Service.TENANT, core)) as tenant, \
            TestClient(create_app(Service.OPERATION, core)) as operation:
        answer = tenant.post("/data/flush", headers=headers["acme"])
        assert answer.status_code == 200, answer.text
        mine = answer.json()
        assert "globex" not in answer.text and "secret_plans" not in answer.text
        assert mine["tables"] == ["acme/orders"] and mine["rows"] == 5 and mine["files"] == 1
        assert not mine["run_id"].startswith("local-")  # a real Prefect run

        run = operation.get(f"/runs/{mine['run_id']}", headers=headers["acme"])
        assert run.status_code == 200 and run.json()["result"]["rows"] == 5
        assert "globex" not in run.text and "secret_plans" not in run.text
        listed = operation.get("/runs", headers=headers["acme"])
        assert mine["run_id"] in listed.text and "secret_plans" not in listed.text
        theirs = operation.get(f"/runs/{mine['run_id']}", headers=headers["globex"]).json()
        assert theirs["result"]["tables"] == ["globex/secret_plans"]
        assert theirs["result"]["rows"] == 7
        everything = operation.get(f"/runs/{mine['run_id']}", headers=headers["ops"]).json()
        assert everything["result"]["rows"] == 12
        assert sorted(everything["result"]["tables"]) == ["acme/orders", "globex/secret_plans"]


def test_a_compaction_of_every_table_shows_each_tenant_its_own_groups(core: Core) -> None:
    assert core.catalog and core.storage and core.table_options and core.flusher
    for n in range(3):
        _write(core, "acme", "orders", 4, f"a{n}-")
        _write(core, "globex", "secret_plans", 6, f"g{n}-")
        flush_here(core.flusher)
    context = maintenance_context_of(core.settings, core.catalog, core.storage,
                                     core.table_options)
    with tags(SHARED_TAG):  # as the deployment's runs are tagged (prefect.yaml)
        result = compaction(job=file(compaction_job(context), "test"))
    assert result["rows_before"] == 30
    run_results._results.clear()  # read back from Prefect, as another process would
    headers = _users(core)
    with TestClient(create_app(Service.OPERATION, core)) as operation, \
            TestClient(create_app(Service.CATALOG, core)) as catalog:
        run = operation.get(f"/runs/{result['run_id']}", headers=headers["acme"])
        assert "globex" not in run.text and "secret_plans" not in run.text, run.text
        mine = run.json()["result"]
        assert (mine["rows_before"], mine["files_before"], mine["groups"]) == (12, 3, 1)
        assert [g["table"] for g in mine["plan"]["groups"]] == ["orders"]
        stats = catalog.get("/metadata/stats", headers=headers["acme"])
        assert stats.status_code == 200 and "secret_plans" not in stats.text, stats.text
        assert stats.json()["maintenance_last_runs"]["compaction"]["result"]["rows_before"] == 12


def test_another_tenants_own_runs_are_not_named(core: Core) -> None:
    assert core.catalog and core.storage and core.table_options and core.flusher
    for n in range(2):
        _write(core, "globex", "secret_plans", 3, f"g{n}-")
        flush_here(core.flusher)
    context = maintenance_context_of(core.settings, core.catalog, core.storage,
                                     core.table_options)
    with tags(tenant_tag("globex")):  # as POST /optimize/compact by a globex writer tags it
        theirs = compaction(tenant="globex",
                            job=file(compaction_job(context, tenant="globex"), "test"))
    headers = _users(core)
    with TestClient(create_app(Service.OPERATION, core)) as operation, \
            TestClient(create_app(Service.CATALOG, core)) as catalog, \
            TestClient(create_app(Service.MONITORING, core)) as monitoring:
        for path, client in (("/runs", operation), ("/metadata/stats", catalog),
                             ("/dashboard/data", monitoring)):
            answer = client.get(path, headers=headers["acme"])
            assert answer.status_code == 200
            assert "globex" not in answer.text and "secret_plans" not in answer.text, answer.text
        assert "globex" in operation.get("/runs", headers=headers["globex"]).text

        def dashboard_runs(who: str) -> list[str]:
            found = monitoring.get("/dashboard/data", headers=headers[who]).json()
            return [r["id"] for r in found["runs"] if r["flow"] == "compaction"]
        assert theirs["run_id"] not in dashboard_runs("acme")
        assert theirs["run_id"] in dashboard_runs("globex")
        assert theirs["run_id"] in dashboard_runs("ops")


def test_runs_without_prefect_are_seen_by_whom_they_concern(core: Core) -> None:
    """Runs of this process that Prefect never saw (it was down) keep their tags here."""
    run_results.remember("local-theirs", {"run_id": "local-theirs", "flow": "load",
                                          "table": "secret_plans", "rows": 3})
    run_results.remember_tags("local-theirs", (tenant_tag("globex"),))
    run_results.remember("local-shared", {
        "run_id": "local-shared", "flow": "ingest", "rows": 9, "files": 2, "bytes": 20,
        "tables": ["acme/orders", "globex/secret_plans"],
        "by_table": [{"table": "acme/orders", "rows": 4, "files": 1, "bytes": 10},
                     {"table": "globex/secret_plans", "rows": 5, "files": 1, "bytes": 10}]})
    run_results.remember_tags("local-shared", (SHARED_TAG,))
    run_results.remember("local-untagged", {"run_id": "local-untagged", "flow": "compaction"})
    headers = _users(core)
    with TestClient(create_app(Service.OPERATION, core)) as operation:
        assert operation.get("/runs/local-theirs", headers=headers["acme"]).status_code == 404
        assert operation.get("/runs/local-theirs", headers=headers["globex"]).status_code == 200
        assert operation.get("/runs/local-untagged", headers=headers["acme"]).status_code == 404
        assert operation.get("/runs/local-untagged", headers=headers["ops"]).status_code == 200
        shared = operation.get("/runs/local-shared", headers=headers["acme"]).json()
        assert "secret_plans" not in json.dumps(shared)
        assert (shared["result"]["rows"], shared["result"]["tables"]) == (4, ["acme/orders"])
