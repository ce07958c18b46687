"""A record written again after its first version was flushed, in a table with exact columns.

Found by the differential suite (tests/differential): the write path compares a repeated
data_id's payload with the stored version, and a flushed version is read back from Parquet with
its exact values typed (Decimal, datetime, date). Comparing those with the JSON of the new
record raised TypeError (Decimal is no JSON) — a 500 for an upsert or a plain retry — and a
timestamp written as `…Z` never equalled its flushed `…+00:00`, so an exact retry was a 409.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core import Core
from flows.ingest import flush_here

DECLARATION = {"table": "prices", "columns": {
    "price": "decimal(10, 2)", "at": "timestamptz", "seen": "timestamp", "day": "date",
    "n": "int64", "x": "float64"}}
RECORD: dict[str, Any] = {"data_id": "p1", "table": "prices", "payload": {
    "price": "1.50", "at": "2026-01-02T10:00:00Z", "seen": "2026-01-02T10:00:00",
    "day": "2026-01-02", "n": 3, "x": 1.0}}


@pytest.fixture
def flushed(tenant_client: TestClient, ingest_core: Core) -> TestClient:
    from api.app import create_app
    from api.services import Service

    with TestClient(create_app(Service.CATALOG, ingest_core),
                    raise_server_exceptions=False) as catalog:
        catalog.headers.update(tenant_client.headers)
        declared = catalog.post("/metadata/tables", json=DECLARATION)
        assert declared.status_code in (200, 201), declared.text
    first = tenant_client.post("/data", json=RECORD)
    assert first.status_code == 201, first.text
    assert ingest_core.flusher is not None
    flush_here(ingest_core.flusher)
    return tenant_client


def test_an_exact_retry_of_a_flushed_record_is_a_duplicate(flushed: TestClient) -> None:
    again = flushed.post("/data", json=RECORD)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"


def test_the_same_values_in_other_json_forms_are_a_duplicate(flushed: TestClient) -> None:
    same = {**RECORD, "payload": {**RECORD["payload"], "price": 1.5,
                                  "at": "2026-01-02T12:00:00+02:00", "x": 1}}
    again = flushed.post("/data", json=same)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"


def test_a_changed_record_is_a_conflict_and_an_upsert_replaces_it(flushed: TestClient) -> None:
    changed = {**RECORD, "payload": {**RECORD["payload"], "price": "1.51"}}
    conflict = flushed.post("/data", json=changed)
    assert conflict.status_code == 409, conflict.text
    upsert = flushed.post("/data", json={**changed, "upsert": True})
    assert upsert.status_code == 201, upsert.text
    read = flushed.get("/data/retrieve", params={"data_id": "p1", "table": "prices"})
    assert read.status_code == 200, read.text
    assert "1.51" in read.text
