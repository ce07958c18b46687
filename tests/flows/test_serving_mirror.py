"""A table's ClickHouse mirror (the real engine, embedded through chDB) kept in step with its
snapshots: after flushes, an upsert, a catch-up that crashed before its watermark, and a
compaction, the mirror read as a query sees it (the live files' rows, replaced versions left
out) answers what the platform's own query answers, no row is lost or doubled, and the keeper
deletes the replaced files' rows once their grace has passed. Prefect is the test harness's
(the compaction runs as a flow)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlglot import exp

from api.app import create_app
from api.core import Core
from api.services import Service
from flows.compaction import compaction, compaction_job
from flows.ingest import flush_here
from flows.runs import file
from lakehouse.auth.identity import Role
from lakehouse.catalog.options import TableOptions
from lakehouse.serving.dialect import MirrorView, visible
from lakehouse.serving.keeper import SERVED_BY, MirrorKeeper
from lakehouse.serving.mirror import catch_up, lacking, mirrored, view_of
from lakehouse.storage.parquet_files import read_file
from tasks.maintenance import maintenance_context_of
from tests.conftest import logged_in

SQL = "SELECT data_id, amount, note FROM events ORDER BY data_id"


def _write(core: Core, tenant: str, rows: list[tuple[str, float, str]],
           upsert: bool = False) -> None:
    assert core.ingest is not None and core.flusher is not None
    core.ingest.write(tenant, [{"data_id": i, "table": "events", "upsert": upsert,
                                "payload": {"amount": a, "note": n}} for i, a, n in rows]
                      ).answer(timeout_s=10)
    flush_here(core.flusher)


def test_the_mirror_answers_as_the_platform_through_upserts_crashes_and_compaction(
        maintained_core: Core, embedded_clickhouse: Any) -> None:
    core, store = maintained_core, embedded_clickhouse
    assert core.catalog and core.storage and core.table_options
    tenant = "mirrored"
    headers = logged_in(core, {tenant: ("ada", Role.READER)})[tenant]

    def ours() -> list[list[Any]]:
        with TestClient(create_app(Service.OPERATION, core)) as operation:
            answer = operation.post("/query/execute", json={"query": SQL}, headers=headers)
        assert answer.status_code == 200, answer.text
        rows: list[list[Any]] = answer.json()["rows"]
        return [[r[0], float(r[1]), r[2]] for r in rows]

    def seen() -> MirrorView:
        assert core.catalog
        return view_of(core.catalog.files(tenant, "events"))

    def mirror() -> list[list[Any]]:
        view = seen()
        rows = visible(store.database(tenant), "events", view).subquery("v")
        table = store.read(exp.select("data_id", "amount", "note").from_(rows)
                           .order_by("data_id").sql(dialect="clickhouse"),
                           parameters={"files": list(view.files)})
        return [list(r.values()) for r in table.to_pylist()]

    def raw() -> int:
        found = store.read(f"SELECT count() AS n FROM {store.database(tenant)}.events")  # noqa: S608
        return int(found.column("n")[0].as_py())

    _write(core, tenant, [("a", 1.0, "x"), ("b", 2.0, "y"), ("c", 3.0, "z")])
    first = catch_up(core.catalog, core.storage, store, tenant, "events")
    assert (first.files, first.rows) == (1, 3)
    assert mirror() == ours() == [["a", 1.0, "x"], ["b", 2.0, "y"], ["c", 3.0, "z"]]
    assert catch_up(core.catalog, core.storage, store, tenant, "events").files == 0
    snapshot = core.catalog.current_snapshot()
    assert catch_up(core.catalog, core.storage, store, tenant, "events").files == 0
    assert core.catalog.current_snapshot() == snapshot  # nothing to copy: no snapshot made

    _write(core, tenant, [("a", 10.0, "x2"), ("d", 4.0, "w")], upsert=True)
    # A catch-up that crashed after its inserts, before its watermark moved:
    [pending] = lacking(core.catalog, tenant, "events")
    assert pending.file_id is not None
    store.insert(tenant, "events", mirrored(read_file(core.storage, pending.path),
                                            pending.file_id), token=f"file-{pending.file_id}")
    again = catch_up(core.catalog, core.storage, store, tenant, "events")
    assert again.files == 1
    assert store.count(tenant, "events", seen()) == 4
    assert mirror() == ours() == [["a", 10.0, "x2"], ["b", 2.0, "y"], ["c", 3.0, "z"],
                                  ["d", 4.0, "w"]]
    assert raw() == 5  # the repeated insert was dropped, not kept

    context = maintenance_context_of(core.settings, core.catalog, core.storage,
                                     core.table_options)
    compacted = compaction(tenant=tenant, job=file(compaction_job(context, tenant=tenant),
                                                   "test"))
    assert compacted["files_before"] >= 2, compacted
    core.table_options.put(tenant, "events", TableOptions(serving=SERVED_BY))
    keeper = MirrorKeeper(core.catalog, core.storage, core.table_options, lambda: store, 60,
                          prune_after_s=0)
    after = keeper.catch_up_one(tenant, "events")
    assert after is not None and after.files == 1  # the merged file: rows the mirror holds
    # The replaced files' rows are gone (no grace here), and the mirror holds each row once.
    assert store.held_files(tenant, "events") == after.live
    assert store.count(tenant, "events", seen()) == 4
    assert mirror() == ours()
    assert raw() == 4

    # A mirror of the layout before rows carried their file (one row per key) is made afresh.
    store.drop_table(tenant, "events")
    store._client.command(f"CREATE TABLE {store.database(tenant)}.events (data_id String, "
                          "_seq UInt64) ENGINE = ReplacingMergeTree(_seq) ORDER BY data_id")
    renewed = keeper.catch_up_one(tenant, "events")
    assert renewed is not None and renewed.files == len(after.live)
    assert mirror() == ours() and raw() == 4
