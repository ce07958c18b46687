"""The flush for real: RocksDB WAL → LZ4 Parquet under the storage root → SQLite catalog."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.ingest.flush import WAL_WRITER, FlushPlan
from tests.conftest import PASSWORD


def _client(core: Core) -> TestClient:
    if core.auth.store.get_user("writer") is None:
        core.auth.create_user("writer", PASSWORD, "acme", Role.WRITER)
    client = TestClient(create_app(Service.TENANT, core), raise_server_exceptions=False)
    token = core.auth.login("writer", PASSWORD).access_token
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def _write(client: TestClient) -> None:
    batch = [{"data_id": f"b{i}", "payload": {"n": i, "tags": [str(i)]},
              "timestamp": f"2026-11-2{i % 2 + 5}T10:00:00Z"} for i in range(20)]
    body = "\n".join(json.dumps(r) for r in batch) + '\n{"data_id": "bad", "payload": {"n": "x"}}'
    answer = client.post("/data/store", content=body,
                         headers={"Content-Type": "application/x-ndjson"}).json()
    assert answer["accepted"] == 20 and answer["rejected"] == 1
    for i in range(3):
        assert client.post("/data", json={"data_id": f"s{i}", "payload": {"n": 100 + i}},
                           headers={"Content-Type": "application/json"}).status_code == 201


def _all(client: TestClient) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 7}
        if after is not None:
            params["after"] = after
        page = client.get("/data", params=params).json()
        out.extend(page["records"])
        after = page["next_after"]
        if after is None:
            return out


def test_flush_writes_parquet_and_reads_stay_the_same(settings: Settings) -> None:
    core = build_core(settings, ingest=True)
    client = _client(core)
    _write(client)
    before = _all(client)
    assert len(before) == 23 and not any(r["flushed"] for r in before)

    flushed = client.post("/data/flush")
    assert flushed.status_code == 200, flushed.text
    result = flushed.json()
    assert result["rows"] == 24 and result["snapshot"] == 1  # 23 records and 1 reject
    assert set(result["tables"]) == {"acme/records", "acme/_rejects"}

    assert core.catalog is not None and core.ingest is not None
    files = core.catalog.files("acme", "records")
    assert {f.partition for f in files} >= {"day=2026-11-25", "day=2026-11-26"}
    assert sum(f.row_count for f in files) == 23
    for file in files:
        on_disk = settings.data_dir / "warehouse" / file.path
        assert on_disk.exists()
        assert pq.ParquetFile(on_disk).metadata.row_group(0).column(0).compression == "LZ4"
        stats = {s.column: s for s in file.stats}
        assert stats["_seq"].min == file.seq_min and stats["_seq"].max == file.seq_max
    assert core.catalog.watermark(WAL_WRITER) == result["through_seq"]
    assert core.ingest.wal.first_seq() > result["through_seq"]  # the log was trimmed
    stats = {t["table"]: t for t in client.get("/data/stats").json()["tables"]}
    assert stats["records"]["unflushed_records"] == 0 and stats["records"]["records"] == 23

    after = _all(client)
    assert [(r["data_id"], r["seq"], r["payload"]) for r in after] == [
        (r["data_id"], r["seq"], r["payload"]) for r in before]
    assert all(r["flushed"] for r in after)
    got = client.get("/data/retrieve", params={"data_id": "b3"}).json()
    assert got["payload"] == {"n": 3, "tags": ["3"]} and got["flushed"] is True

    # Idempotency still holds against flushed records.
    retry = client.post("/data", json={"data_id": "b3", "payload": {"n": 3, "tags": ["3"]}},
                        headers={"Content-Type": "application/json"})
    assert retry.json()["status"] == "duplicate"
    changed = client.post("/data", json={"data_id": "b3", "payload": {"n": 4}},
                          headers={"Content-Type": "application/json"})
    assert changed.status_code == 409
    assert client.post("/data/flush").json()["rows"] == 0
    client.close()
    core.close()

    # A restart reads the same.
    again = build_core(settings, ingest=True)
    client = _client(again)
    assert [r["data_id"] for r in _all(client)] == [r["data_id"] for r in before]
    client.close()
    again.close()


def _planned_flush(settings: Settings) -> tuple[Core, TestClient, FlushPlan]:
    """A core with the test's records written, and the plan of their flush."""
    core = build_core(settings, ingest=True)
    client = _client(core)
    _write(client)
    assert core.flusher is not None
    plan = core.flusher.plan()
    assert plan is not None
    return core, client, plan


def test_crash_between_commit_and_trim_loses_and_duplicates_nothing(settings: Settings) -> None:
    core, client, plan = _planned_flush(settings)
    assert core.flusher is not None
    files = {work.ref: core.flusher.write_table(work) for work in plan.tables}
    core.flusher.commit(plan, files)  # ... and the process dies before trimming the log
    client.close()
    core.close()

    restarted = build_core(settings, ingest=True)
    client = _client(restarted)
    records = _all(client)
    assert len(records) == 23 and len({r["data_id"] for r in records}) == 23
    assert all(r["flushed"] for r in records)
    assert client.post("/data/flush").json()["rows"] == 0  # nothing is flushed twice
    assert restarted.catalog is not None
    assert sum(f.row_count for f in restarted.catalog.files("acme", "records")) == 23
    client.close()
    restarted.close()


def test_crash_between_writing_and_committing_loses_and_duplicates_nothing(
        settings: Settings) -> None:
    core, client, plan = _planned_flush(settings)
    assert core.flusher is not None
    for work in plan.tables:
        core.flusher.write_table(work)  # files on disk, no snapshot: then the crash
    client.close()
    core.close()

    restarted = build_core(settings, ingest=True)
    client = _client(restarted)
    assert not any(r["flushed"] for r in _all(client))
    assert client.post("/data/flush").json()["rows"] == 24
    assert restarted.catalog is not None
    files = restarted.catalog.files("acme", "records")
    assert sum(f.row_count for f in files) == 23
    written = list(Path(settings.data_dir / "warehouse" / "acme" / "records").rglob("*.parquet"))
    assert len(written) == len(files)  # the replay rewrote the same names, no strays
    assert len(_all(client)) == 23
    client.close()
    restarted.close()


def test_a_record_of_the_far_future_flushes_and_reads_back(settings: Settings) -> None:
    """Timestamps up to the year 3000 are taken; one past 2255 (2**53 microseconds) once made
    every flush fail with the write acknowledged, so nothing more reached storage."""
    core = build_core(settings, ingest=True)
    with _client(core) as client:
        for data_id, stamp in (("far", 21509216562.437416), ("last", "2999-12-31T23:59:59Z"),
                               ("now", "2026-12-05T07:00:00Z")):
            written = client.post("/data/store", json=[
                {"data_id": data_id, "table": "events", "payload": {"n": 1},
                 "timestamp": stamp}])
            assert written.json()["accepted"] == 1, written.text
        flushed = client.post("/data/flush")
        assert flushed.status_code == 200, flushed.text
        assert flushed.json()["rows"] == 3
        assert core.catalog is not None
        days = sorted(f.partition for f in core.catalog.files("acme", "events"))
        assert days == ["day=2026-12-05", "day=2651-08-08", "day=2999-12-31"]
        assert {r["data_id"] for r in client.get("/data", params={"table": "events"}).json()[
            "records"]} == {"far", "last", "now"}
    core.close()


def test_records_with_empty_objects_flush_and_read_back(settings: Settings) -> None:
    """`{}` has no Parquet form (a group without fields): one such record once failed every
    flush. Its other fields are kept; the empty object reads back as null once flushed, and a
    later record giving the object fields widens the column."""
    core = build_core(settings, ingest=True)
    with _client(core) as client, TestClient(create_app(Service.OPERATION, core)) as op:
        op.headers["Authorization"] = client.headers["Authorization"]
        for data_id, payload in (("a", {"x": 1, "e": {}, "l": [{}, {}], "s": {"t": {}}}),
                                 ("b", {"x": 2, "e": {}})):
            assert client.post("/data", json={"data_id": data_id, "table": "odd",
                                              "payload": payload}).status_code == 201
        assert client.post("/data/flush").status_code == 200
        assert client.post("/data", json={"data_id": "c", "table": "odd",
                                          "payload": {"x": 3, "e": {"f": 5}}}).status_code == 201
        assert client.post("/data/flush").status_code == 200
        answer = op.post("/query/execute", json={
            "query": "SELECT data_id, x, e, len(l) AS n FROM odd ORDER BY x"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"] == [["a", 1, None, 2], ["b", 2, None, None],
                                         ["c", 3, {"f": 5}, None]]
    core.close()
