"""The Tenant Node's write and read paths over HTTP, on a real RocksDB WAL (fsync on)."""

from __future__ import annotations

import concurrent.futures
import errno
import json
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.core import Core

SEED = {"data_id": "user-001",
        "payload": {"name": "John Doe", "age": 30, "profile": {"skills": ["Go"]}}}
ERROR_KEYS = {"error", "message", "details"}


def post(client: TestClient, record: Any, **headers: str) -> Any:
    return client.post("/data", content=json.dumps(record),
                       headers={"Content-Type": "application/json", **headers})


def store_ndjson(client: TestClient, records: list[Any], **headers: str) -> Any:
    body = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records)
    return client.post("/data/store", content=body,
                       headers={"Content-Type": "application/x-ndjson", **headers})


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == ERROR_KEYS, body
    if code is not None:
        assert body["error"] == code, body
    return body


def _nest(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def test_seed_record_is_durable_then_duplicate(tenant_client: TestClient) -> None:
    first = post(tenant_client, SEED)
    assert first.status_code == 201
    assert first.json() == {"data_id": "user-001", "table": "records", "seq": 1,
                            "status": "durable"}
    again = post(tenant_client, SEED)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate" and again.json()["seq"] == 1

    changed = post(tenant_client, {**SEED, "payload": {"name": "Jane"}})
    assert_error(changed, 409, "data_id_conflict")
    upserted = post(tenant_client, {**SEED, "payload": {"name": "Jane", "age": 31},
                                    "upsert": True})
    assert upserted.status_code == 201
    assert upserted.json()["seq"] == 2
    got = tenant_client.get("/data/retrieve", params={"data_id": "user-001"}).json()
    assert got["payload"] == {"name": "Jane", "age": 31} and got["seq"] == 2
    listed = tenant_client.get("/data").json()
    assert [r["seq"] for r in listed["records"]] == [2]  # the replaced version is gone


def test_read_your_writes_and_paging(tenant_client: TestClient) -> None:
    for i in range(25):
        assert post(tenant_client, {"data_id": f"r{i}", "payload": {"n": i},
                                    "table": "events"}).status_code == 201
        got = tenant_client.get("/data/retrieve", params={"data_id": f"r{i}", "table": "events"})
        assert got.status_code == 200 and got.json()["payload"] == {"n": i}
    seen: list[int] = []
    after = None
    while True:
        params: dict[str, Any] = {"table": "events", "limit": 10}
        if after is not None:
            params["after"] = after
        page = tenant_client.get("/data", params=params).json()
        seen.extend(r["payload"]["n"] for r in page["records"])
        after = page["next_after"]
        if after is None:
            break
    assert seen == list(range(24, -1, -1))


def test_batch_keeps_good_records_and_reports_bad_ones(tenant_client: TestClient) -> None:
    response = store_ndjson(tenant_client, [
        {"data_id": "a", "payload": {"x": 1, "tags": ["t"]}},
        "{not json",
        {"data_id": "b", "payload": {"x": "text"}},  # conflicts with x: int64
        {"payload": {"x": 2}},  # no data_id
        {"data_id": "c", "payload": {"x": 2.5, "y": {"deep": True}}},  # promotes x, adds y
        {"data_id": "a", "payload": {"x": 1, "tags": ["t"]}},  # same record twice: duplicate
        [1, 2],
    ])
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 1, 4)
    by_index = {r["index"]: r for r in body["records"]}
    assert by_index[1]["error"] == "malformed_json"
    assert by_index[2]["error"] == "type_conflict"
    assert "payload.x" in by_index[2]["reason"] and "int64" in by_index[2]["reason"]
    assert by_index[3]["error"] == "invalid_data_id"
    assert by_index[6]["error"] == "record_not_object"
    assert 0 not in by_index and 4 not in by_index  # accepted records are counted in ranges
    [written] = body["tables"]
    assert written == {"table": "records", "count": 2, "first_seq": written["first_seq"],
                       "last_seq": written["first_seq"] + 1}
    assert by_index[5]["status"] == "duplicate" and by_index[5]["seq"] == written["first_seq"]

    rejects = tenant_client.get("/data", params={"table": "_rejects"}).json()["records"]
    assert len(rejects) == 4
    reasons = {r["payload"]["error"] for r in rejects}
    assert reasons == {"malformed_json", "type_conflict", "invalid_data_id", "record_not_object"}
    assert all(r["payload"]["request_id"] for r in rejects)
    assert any(r["payload"]["raw"] == "{not json" for r in rejects)

    stats = {t["table"]: t for t in tenant_client.get("/data/stats").json()["tables"]}
    assert stats["records"]["records"] == 2
    assert stats["records"]["rejected"] == 4
    assert stats["records"]["duplicates_refused"] == 1
    assert stats["records"]["unflushed_records"] == 2
    assert stats["records"]["oldest_unflushed_age_s"] is not None


def test_json_array_and_idempotency_key(tenant_client: TestClient) -> None:
    records = [{"data_id": f"k{i}", "payload": {"i": i}} for i in range(50)]
    first = tenant_client.post("/data/store", json=records, headers={"Idempotency-Key": "load-1"})
    assert first.status_code == 200 and first.json()["accepted"] == 50
    again = tenant_client.post("/data/store", json=records, headers={"Idempotency-Key": "load-1"})
    assert again.json()["status"] == "duplicate" and again.json()["replayed"] is True
    assert again.json()["tables"] == first.json()["tables"]
    assert first.json()["tables"][0]["count"] == 50
    # Without the key, the same records are duplicates one by one; nothing is stored twice.
    third = tenant_client.post("/data/store", json=records)
    assert third.json()["duplicate"] == 50
    assert tenant_client.get("/data/stats").json()["tables"][0]["records"] == 50


def test_concurrent_retries_store_once(tenant_client: TestClient, ingest_core: Core) -> None:
    record = {"data_id": "retry-me", "payload": {"v": 1}}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: post(tenant_client, record), range(64)))
    statuses = [a.json()["status"] for a in answers]
    assert statuses.count("durable") == 1
    assert statuses.count("duplicate") == 63
    assert {a.json()["seq"] for a in answers} == {answers[0].json()["seq"]}
    page = tenant_client.get("/data").json()
    assert [r["data_id"] for r in page["records"]] == ["retry-me"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"[1, 2]", "application/json", 400, "record_not_object"),
        (b'{"payload": {"a": 1}}', "application/json", 400, "invalid_data_id"),
        (b'{"data_id": "", "payload": {"a": 1}}', "application/json", 400, "invalid_data_id"),
        (json.dumps({"data_id": "x" * 257, "payload": {}}).encode(), "application/json", 400,
         "invalid_data_id"),
        (b'{"data_id": "a", "payload": {"a": 1}, "table": "bad-name"}', "application/json",
         400, "invalid_table_name"),
        (b'{"data_id": "a", "payload": {"a": 1}, "table": "_private"}', "application/json",
         400, "invalid_table_name"),
        (b'{"data_id": "a", "payload": {"bad field": 1}}', "application/json", 400,
         "invalid_field_name"),
        (b'{"data_id": "a", "payload": {"_hidden": 1}}', "application/json", 400,
         "invalid_field_name"),
        (json.dumps({"data_id": "a", "payload": _nest(33)}).encode(), "application/json", 400,
         "too_deep"),
        (b'{"data_id": "a", "payload": "text"}', "application/json", 400, "invalid_payload"),
        (b'{"data_id": "a", "payload": {}, "extra": 1}', "application/json", 400,
         "unknown_keys"),
        (b'{"data_id": "a", "payload": {}}', "text/plain", 415, "unsupported_media_type"),
        (b'{"data_id": "a", "payload": {}, "timestamp": "yesterday"}', "application/json", 400,
         "invalid_timestamp"),
    ],
)
def test_bad_single_records_store_nothing(tenant_client: TestClient, body: bytes,
                                          content_type: str, status: int, code: str) -> None:
    before = tenant_client.get("/data/stats").json()
    response = tenant_client.post("/data", content=body, headers={"Content-Type": content_type})
    assert_error(response, status, code)
    after = tenant_client.get("/data/stats").json()
    assert after["wal"]["last_seq"] == before["wal"]["last_seq"]


def test_bad_batches_store_nothing(tenant_client: TestClient, ingest_core: Core) -> None:
    limit = ingest_core.settings.ingest_max_body_bytes
    huge = b"[" + b" " * limit + b"]"
    assert_error(tenant_client.post("/data/store", content=huge,
                                    headers={"Content-Type": "application/json"}),
                 413, "payload_too_large")
    too_many = [{"data_id": str(i), "payload": {}}
                for i in range(ingest_core.settings.ingest_max_records + 1)]
    assert_error(tenant_client.post("/data/store", json=too_many), 413, "payload_too_large")
    assert_error(tenant_client.post("/data/store", content=b"{}",
                                    headers={"Content-Type": "application/json"}),
                 400, "not_an_array")
    assert_error(tenant_client.post("/data/store", content=b"[",
                                    headers={"Content-Type": "application/json"}),
                 400, "malformed_json")
    assert_error(tenant_client.post("/data/store", content=b"a,b",
                                    headers={"Content-Type": "text/csv"}),
                 415, "unsupported_media_type")
    assert_error(tenant_client.post("/data/store", json=[]), 400, "no_records")
    assert tenant_client.get("/data/stats").json()["wal"]["last_seq"] == 0


def test_auth_and_tenant_rules(tenant_client: TestClient, ingest_core: Core) -> None:
    from lakehouse.auth.identity import Role
    from tests.conftest import PASSWORD

    assert post(tenant_client, SEED).status_code == 201
    ingest_core.auth.create_user("other", PASSWORD, "globex", Role.WRITER)
    ingest_core.auth.create_user("reader", PASSWORD, "acme", Role.READER)
    other = ingest_core.auth.login("other", PASSWORD).access_token
    reader = ingest_core.auth.login("reader", PASSWORD).access_token
    # Another tenant sees nothing of acme's, even naming the same data_id.
    seen = tenant_client.get("/data/retrieve", params={"data_id": "user-001"},
                             headers={"Authorization": f"Bearer {other}"})
    assert_error(seen, 404, "not_found")
    assert tenant_client.get("/data", headers={"Authorization": f"Bearer {other}"}
                             ).json()["records"] == []
    assert_error(post(tenant_client, SEED, **{"X-Tenant-Id": "globex"}), 403, "forbidden")
    assert_error(post(tenant_client, SEED, Authorization=f"Bearer {reader}"), 403, "forbidden")
    assert tenant_client.get("/data", headers={"Authorization": f"Bearer {reader}"}
                             ).status_code == 200
    assert_error(tenant_client.post("/data", json=SEED, headers={"Authorization": ""}), 401)


def test_declared_table_with_checks(tenant_client: TestClient, ingest_core: Core) -> None:
    from api.app import create_app
    from api.services import Service

    catalog = TestClient(create_app(Service.CATALOG, ingest_core), raise_server_exceptions=False)
    catalog.headers.update(tenant_client.headers)
    declaration = {"table": "people", "columns": {"name": "string", "age": "int64",
                                                   "tags": {"list": "string"}},
                   "required": ["name"],
                   "checks": [{"column": "age", "check": "ge", "value": 0},
                              {"column": "age", "check": "le", "value": 150}]}
    created = catalog.post("/metadata/tables", json=declaration)
    assert created.status_code == 201, created.text
    assert_error(catalog.post("/metadata/tables", json=declaration), 409, "table_declared")
    assert_error(catalog.post("/metadata/tables", json={**declaration, "table": "x",
                                                         "columns": {"a": "decimal"}}),
                 400, "invalid_declaration")
    assert_error(catalog.post("/metadata/tables", json={**declaration, "table": "y",
                                                         "required": ["nope"]}),
                 400, "invalid_declaration")

    rows = [
        {"data_id": "ok", "table": "people", "payload": {"name": "Ann", "age": 30, "tags": []}},
        {"data_id": "old", "table": "people", "payload": {"name": "Bob", "age": 200}},
        {"data_id": "anon", "table": "people", "payload": {"age": 5}},
        {"data_id": "extra", "table": "people", "payload": {"name": "Cy", "email": "c@x"}},
        {"data_id": "text", "table": "people", "payload": {"name": "Di", "age": "ten"}},
        {"data_id": "ok2", "table": "people", "payload": {"name": "Ed"}},
    ]
    answer = tenant_client.post("/data/store", json=rows).json()
    assert (answer["accepted"], answer["rejected"]) == (2, 4)
    errors = {r["data_id"]: (r["error"], r["reason"]) for r in answer["records"]}
    assert errors["old"][0] == "check_failed" and "payload.age: 200" in errors["old"][1]
    assert errors["anon"][0] == "missing_required"
    assert errors["extra"][0] == "schema_mismatch" and "payload.email" in errors["extra"][1]
    assert errors["text"][0] == "schema_mismatch" and "int64" in errors["text"][1]
    single = post(tenant_client, {"data_id": "neg", "table": "people",
                                  "payload": {"name": "Fay", "age": -1}})
    assert_error(single, 400, "check_failed")
    # A table that already has records cannot be declared after the fact.
    assert post(tenant_client, {"data_id": "r1", "payload": {"v": 1}}).status_code == 201
    assert_error(catalog.post("/metadata/tables", json={**declaration, "table": "records"}),
                 409, "table_has_records")
    catalog.close()


def test_batched_records_read_back_as_written(tenant_client: TestClient) -> None:
    """Batches typed at once are stored as Arrow; what is read back is what was sent."""
    records = [{"data_id": "n1", "payload": {"a": 1, "nested": {"x": [1, 2]}}},
               {"data_id": "n2", "payload": {"b": "text", "nested": {"y": True}}},
               {"data_id": "n3", "payload": {"a": 2.5}}]
    answer = store_ndjson(tenant_client, records).json()
    assert answer["accepted"] == 3
    for record in records:
        got = tenant_client.get("/data/retrieve", params={"data_id": record["data_id"]}).json()
        assert got["payload"] == record["payload"]
    listed = tenant_client.get("/data").json()["records"]
    assert [r["payload"] for r in listed] == [r["payload"] for r in reversed(records)]
    # A retry is a duplicate, a changed payload a conflict, an upsert replaces.
    again = store_ndjson(tenant_client, [records[1],
                                         {"data_id": "n3", "payload": {"a": 3}},
                                         {"data_id": "n1", "payload": {"a": 9}, "upsert": True}])
    statuses = {r["data_id"]: r["status"] for r in again.json()["records"]}
    assert statuses == {"n2": "duplicate", "n3": "conflict"}
    assert again.json()["accepted"] == 1
    assert tenant_client.get("/data/retrieve", params={"data_id": "n1"}).json()["payload"] == {
        "a": 9}


class _SyncFails:
    """The real RocksDB handle, except that syncing its log fails as a dying disk's fsync does.
    (An fsync error cannot be produced on demand here; everything else is the real database.)"""

    def __init__(self, db: Any) -> None:
        self._db = db

    def flush_wal(self, sync: bool) -> None:
        raise OSError(errno.EIO, "Input/output error")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_after_a_failed_sync_nothing_is_acknowledged_or_read(
        tenant_client: TestClient, ingest_core: Core) -> None:
    """The batch whose sync failed is in RocksDB but maybe not on disk: no answer may come from
    it, neither a retry's "duplicate" nor a read; the service says to restart."""
    assert post(tenant_client, {"data_id": "ok", "payload": {"n": 1}}).status_code == 201
    assert ingest_core.ingest is not None
    wal = ingest_core.ingest.wal
    real = wal._db  # type: ignore[attr-defined]
    wal._db = _SyncFails(real)  # type: ignore[attr-defined]
    try:
        record = {"data_id": "lost", "payload": {"n": 2}}
        failed = post(tenant_client, record)
        assert_error(failed, 503, "wal_unavailable")
        for retry in (post(tenant_client, record),
                      store_ndjson(tenant_client, [record], **{"Idempotency-Key": "k1"}),
                      tenant_client.get("/data/retrieve", params={"data_id": "lost"}),
                      tenant_client.get("/data/retrieve", params={"data_id": "ok"}),
                      tenant_client.get("/data")):
            assert_error(retry, 503, "wal_unavailable")
        health = tenant_client.get("/health").json()
        assert health["checks"]["wal"]["ok"] is False
    finally:
        wal._db = real  # type: ignore[attr-defined]


class _SlowSync:
    """The real RocksDB handle with a slow log sync (a slow disk), which says when it starts."""

    def __init__(self, db: Any, seconds: float) -> None:
        self._db, self._seconds = db, seconds
        self.syncing = threading.Event()

    def flush_wal(self, sync: bool) -> None:
        self.syncing.set()
        time.sleep(self._seconds)
        self._db.flush_wal(sync)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def test_reads_during_a_sync_see_the_durable_state_or_wait_for_it(
        tenant_client: TestClient, ingest_core: Core) -> None:
    """While an upsert of `a` and a new `b` are being synced, the listing still shows `a`'s
    durable version, and a lookup of either waits for the write instead of failing."""
    assert post(tenant_client, {"data_id": "a", "payload": {"v": 1}}).status_code == 201
    assert ingest_core.ingest is not None
    wal = ingest_core.ingest.wal
    real = wal._db  # type: ignore[attr-defined]
    slow = _SlowSync(real, 0.5)
    wal._db = slow  # type: ignore[attr-defined]
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            upsert = pool.submit(store_ndjson, tenant_client, [
                {"data_id": "a", "payload": {"v": 2}, "upsert": True},
                {"data_id": "b", "payload": {"v": 1}}])
            assert slow.syncing.wait(10)
            listed = tenant_client.get("/data").json()["records"]
            assert [(r["data_id"], r["payload"]) for r in listed] == [("a", {"v": 1})]
            got_a = tenant_client.get("/data/retrieve", params={"data_id": "a"})
            got_b = tenant_client.get("/data/retrieve", params={"data_id": "b"})
            assert upsert.result().status_code == 200
        assert (got_a.status_code, got_a.json()["payload"]) == (200, {"v": 2})
        assert (got_b.status_code, got_b.json()["payload"]) == (200, {"v": 1})
    finally:
        wal._db = real  # type: ignore[attr-defined]


def test_the_documented_write_bodies_and_their_examples_work(tenant_client: TestClient) -> None:
    """POST /data and /data/store declare their bodies (api/record_bodies.py) although the write
    path reads them itself; each documented example, sent as it is, is stored."""
    doc = tenant_client.get("/openapi.json").json()
    one = doc["paths"]["/data"]["post"]
    many = doc["paths"]["/data/store"]["post"]
    assert set(one["responses"]) >= {"200", "201", "400", "409", "413", "415"}
    record = one["requestBody"]["content"]["application/json"]
    assert record["schema"]["properties"]["table"]["pattern"] == "^[A-Za-z][A-Za-z0-9_]{0,62}$"
    assert record["schema"]["additionalProperties"] is False
    answer = tenant_client.post("/data", json=record["example"])
    assert answer.status_code == 201, answer.text
    assert tenant_client.post("/data", json=record["example"]).json()["status"] == "duplicate"

    content = many["requestBody"]["content"]
    batch = tenant_client.post("/data/store", json=content["application/json"]["example"])
    assert batch.status_code == 200, batch.text
    ndjson = tenant_client.post("/data/store", content=content["application/x-ndjson"]["example"],
                                headers={"Content-Type": "application/x-ndjson"})
    assert ndjson.status_code == 200, ndjson.text
    for body in (batch.json(), ndjson.json()):
        assert body["rejected"] == 0 and body["accepted"] == 2, body
