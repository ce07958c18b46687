"""The Metadata Catalog over HTTP, answering from a real SQLite catalog after real flushes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[Core, dict[str, dict[str, str]]]]:
    core = build_core(settings, ingest=True)
    users = {"acme": ("writer", Role.WRITER), "globex": ("other", Role.WRITER),
             "ops": ("root", Role.ADMIN)}
    headers = {}
    for tenant, (name, role) in users.items():
        core.auth.create_user(name, PASSWORD, tenant, role)
        headers[tenant] = {"Authorization":
                           f"Bearer {core.auth.login(name, PASSWORD).access_token}"}
    yield core, headers
    core.close()


def _write_and_flush(core: Core, tenant: str, table: str, rows: list[dict[str, object]]) -> None:
    assert core.ingest is not None and core.flusher is not None
    records = [{"data_id": f"{table}-{i}-{core.ingest.wal.last_seq()}", "table": table,
                "payload": row, "timestamp": row.pop("ts", None)} for i, row in enumerate(rows)]
    for record in records:
        if record["timestamp"] is None:
            del record["timestamp"]
    core.ingest.write(tenant, records).answer(timeout_s=10)
    core.flusher.flush()


def test_tables_partitions_indexes_stats(world: tuple[Core, dict[str, dict[str, str]]]) -> None:
    core, headers = world
    _write_and_flush(core, "acme", "people", [
        {"age": a, "city": c, "ts": f"2026-11-{d}T10:00:00Z"}
        for a, c, d in ((20, "Oslo", 24), (30, "Rome", 24), (40, "Oslo", 25), (50, "Kyiv", 26))])
    _write_and_flush(core, "globex", "secret", [{"x": 1}])
    _write_and_flush(core, "acme", "people", [{"age": 60, "city": "Lima",
                                                "ts": "2026-11-26T11:00:00Z"}])
    catalog = TestClient(create_app(Service.CATALOG, core), raise_server_exceptions=False)

    tables = catalog.get("/metadata/tables", headers=headers["acme"]).json()
    assert tables["current_snapshot"] == 3
    [people] = tables["tables"]
    assert (people["tenant"], people["table"], people["rows"], people["files"]) == (
        "acme", "people", 5, 4)
    assert people["schema"]["type"] == "struct" and people["partitioning"] == "day(_timestamp)"
    as_of_1 = catalog.get("/metadata/tables", params={"snapshot": 1},
                          headers=headers["acme"]).json()
    assert as_of_1["tables"][0]["rows"] == 4  # time travel: before the second flush
    assert catalog.get("/metadata/tables", params={"snapshot": 99},
                       headers=headers["acme"]).status_code == 404
    everyone = catalog.get("/metadata/tables", headers=headers["ops"]).json()["tables"]
    assert {(t["tenant"], t["table"]) for t in everyone} == {("acme", "people"),
                                                             ("globex", "secret")}

    parts = catalog.post("/metadata/partitions", json={"table": "people"},
                         headers=headers["acme"]).json()
    assert [p["partition"] for p in parts["partitions"]] == [
        "day=2026-11-24", "day=2026-11-25", "day=2026-11-26"]
    first = parts["partitions"][0]
    assert first["rows"] == 2 and first["columns"]["age"] == {"min": 20, "max": 30, "nulls": 0}
    pruned = catalog.post("/metadata/partitions", json={"table": "people", "filter": "age > 45"},
                          headers=headers["acme"]).json()
    assert pruned["files_total"] == 4 and pruned["files_pruned"] == 2
    assert [p["partition"] for p in pruned["partitions"]] == ["day=2026-11-26"]
    assert pruned["partitions_pruned"] == 2
    bad = catalog.post("/metadata/partitions", json={"table": "people", "filter": "age >"},
                       headers=headers["acme"])
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_filter"
    assert "near line 1, column 5" in bad.json()["details"]["problem"]
    assert "<class" not in bad.text
    hidden = catalog.post("/metadata/partitions", json={"table": "secret"},
                          headers=headers["acme"])
    assert hidden.status_code == 404  # another tenant's table does not exist for acme

    [index] = catalog.get("/metadata/indexes", headers=headers["acme"]).json()["tables"]
    assert index["partition_columns"] == ["_timestamp"]
    assert index["column_ranges"]["age"]["min"] == 20 and index["column_ranges"]["age"][
        "max"] == 60
    assert index["column_ranges"]["city"]["distinct_estimate"] >= 2

    mine = catalog.get("/metadata/stats", headers=headers["acme"]).json()
    assert (mine["tenant"], mine["tables"], mine["live_files"]) == ("acme", 1, 4)
    assert mine["last_flush_at"] is not None and mine["unflushed"]["rows"] == 0
    overall = catalog.get("/metadata/stats", headers=headers["ops"]).json()
    assert (overall["tenants"], overall["tables"], overall["snapshots"]) == (2, 2, 3)
    catalog.close()
