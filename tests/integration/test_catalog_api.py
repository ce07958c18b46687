"""The Metadata Catalog over HTTP, answering from a real SQLite catalog after real flushes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.catalog.declarations import MemoryDeclarations
from lakehouse.catalog.declare import declare_table
from lakehouse.config import Settings
from lakehouse.errors import Conflict
from lakehouse.schema.declared import parse_declaration
from tests.conftest import logged_in


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[Core, dict[str, dict[str, str]]]]:
    core = build_core(settings, ingest=True)
    users = {"acme": ("writer", Role.WRITER), "globex": ("other", Role.WRITER),
             "ops": ("root", Role.ADMIN)}
    headers = logged_in(core, users)
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
    flush_here(core.flusher)


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


def test_a_declared_table_is_a_table_with_no_rows(
        world: tuple[Core, dict[str, dict[str, str]]]) -> None:
    """Declared, it is listed at once (its columns, no rows, no files) from the snapshot that
    declared it on; a flush later adds rows to the same table."""
    core, headers = world
    _write_and_flush(core, "acme", "people", [{"age": 1}])
    catalog = TestClient(create_app(Service.CATALOG, core), raise_server_exceptions=False)
    declared = catalog.post("/metadata/tables", headers=headers["acme"], json={
        "table": "events", "columns": {"kind": "string", "n": "int64"}, "required": ["kind"],
        "partition_by": "kind", "sort_key": ["n"]})
    assert declared.status_code == 201, declared.text
    assert declared.json()["snapshot"] == 2

    listed = catalog.get("/metadata/tables", headers=headers["acme"]).json()
    assert listed["current_snapshot"] == 2
    [events] = [t for t in listed["tables"] if t["table"] == "events"]
    assert (events["rows"], events["files"], events["bytes"]) == (0, 0, 0)
    assert [f["name"] for f in events["schema"]["fields"]] == ["kind", "n"]
    assert events["partitioning"] == "identity(kind)" and events["sort_key"] == ["n"]
    assert events["created_snapshot"] == 2
    before = catalog.get("/metadata/tables", params={"snapshot": 1},
                         headers=headers["acme"]).json()
    assert [t["table"] for t in before["tables"]] == ["people"]
    other = catalog.get("/metadata/tables", headers=headers["globex"]).json()
    assert other["tables"] == []  # another tenant's declaration is not theirs
    empty = catalog.post("/metadata/partitions", json={"table": "events"},
                         headers=headers["acme"]).json()
    assert (empty["files_total"], empty["partitions"]) == (0, [])

    assert core.ingest is not None and core.flusher is not None
    core.ingest.write("acme", [{"data_id": "e1", "table": "events",
                                "payload": {"kind": "click", "n": 3}}]).answer(timeout_s=10)
    flush_here(core.flusher)
    [events] = [t for t in catalog.get("/metadata/tables", headers=headers["acme"]).json()[
        "tables"] if t["table"] == "events"]
    assert (events["rows"], events["files"], events["created_snapshot"]) == (1, 1, 2)
    # A table with data is not declared after the fact, whoever knows of its data.
    taken = catalog.post("/metadata/tables", headers=headers["acme"],
                         json={"table": "people", "columns": {"age": "int64"}})
    assert taken.status_code == 409 and taken.json()["error"] == "table_has_records"
    assert core.catalog is not None
    with pytest.raises(Conflict) as refused:  # a table only the catalog knows (a bulk load)
        declare_table(MemoryDeclarations(), core.catalog, "acme", parse_declaration(
            {"table": "people", "columns": {"age": "int64"}}))
    assert refused.value.code == "table_has_records"
    catalog.close()


def test_unknown_fields_are_refused_by_name(
        world: tuple[Core, dict[str, dict[str, str]]]) -> None:
    core, headers = world
    _write_and_flush(core, "acme", "people", [{"age": 1}])
    catalog = TestClient(create_app(Service.CATALOG, core), raise_server_exceptions=False)

    def refused(path: str, body: dict[str, object], *named: str) -> str:
        response = catalog.post(path, json=body, headers=headers["acme"])
        assert response.status_code == 422, response.text
        answer = response.json()
        assert set(answer) == {"error", "message", "details"}
        assert answer["error"] == "invalid_request", answer
        assert {p["type"] for p in answer["details"]["problems"]} == {"unknown_field"}
        for name in named:
            assert f"`{name}`" in answer["message"], answer
        message: str = answer["message"]
        return message

    refused("/metadata/partitions", {"table_name": "people"}, "table_name", "table")
    refused("/metadata/partitions", {"table": "people", "where": "age > 1"}, "where", "filter")
    refused("/metadata/partitions", {"table": "people", "snapshot_id": 1}, "snapshot_id",
            "snapshot")
    refused("/metadata/partitions", {"table": "people", "fliter": "age > 1"}, "fliter",
            "filter")
    message = refused("/metadata/partitions", {"table": "people", "colour": 1}, "colour")
    assert "table, filter, snapshot" in message  # no close name: the fields it has
    declaration = {"table": "t2", "columns": {"a": "int64"}}
    refused("/metadata/tables", {**declaration, "schema": {"a": "int64"}}, "schema", "columns")
    refused("/metadata/tables", {**declaration, "checks": [
        {"column": "a", "op": "ge", "value": 0}]}, "op", "check")
    # Nothing was declared by the refused requests; the documented fields still work.
    assert catalog.post("/metadata/tables", json={**declaration, "required": ["a"],
                                                  "checks": [{"column": "a", "check": "ge",
                                                              "value": 0}]},
                        headers=headers["acme"]).status_code == 201
    catalog.close()
