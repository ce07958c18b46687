"""Compaction on the real catalog (SQLite), disk and write path: rows, versions, statistics,
conflicts and read-your-writes hold across it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow.compute as pc
import pytest

from api.core import Core
from flows.ingest import flush_here
from lakehouse.catalog.lake import Commit, RemoveFiles
from lakehouse.catalog.options import TableOptions
from lakehouse.catalog.table_options import SqlTableOptions
from lakehouse.compaction.planner import CompactionPlan, plan_compaction
from lakehouse.compaction.policy import CompactionPolicy
from lakehouse.ingest.keys import TableRef
from lakehouse.storage.cleanup import delete_dead_files, delete_orphans
from lakehouse.storage.maintenance import compact_group, table_files
from lakehouse.storage.rewrite import RewriteResult, rewrite_group
from tests.snapshot_scan import scan_table

# Every partition counts as settled: the tests decide what to merge, not the clock.
POLICY = CompactionPolicy(target_file_bytes=64 * 1024 * 1024, min_files=2,
                          active_window_s=0)


def _flush(core: Core, records: list[dict[str, Any]], tenant: str = "acme") -> None:
    assert core.ingest is not None and core.flusher is not None
    core.ingest.write(tenant, records).answer(timeout_s=10)
    flush_here(core.flusher)


def _flushes(core: Core, count: int, per: int = 20, tenant: str = "acme",
             table: str = "records") -> None:
    for n in range(count):
        _flush(core, [{"data_id": f"{table}-{n}-{i}", "table": table,
                       "payload": {"n": n, "i": i, "name": f"r{n}-{i}"}}
                      for i in range(per)], tenant)


def _plan(core: Core, policy: CompactionPolicy = POLICY) -> CompactionPlan:
    assert core.catalog is not None
    return plan_compaction(table_files(core.catalog, SqlTableOptions(core.engine)), policy,
                           time.time())


def _compact(core: Core, policy: CompactionPolicy = POLICY) -> list[Any]:
    assert core.catalog is not None and core.storage is not None
    groups = _plan(core, policy).groups
    return [compact_group(core.catalog, core.storage, g, policy) for g in groups]


def _visible(core: Core, table: str = "records", snapshot: int | None = None) -> list[Any]:
    assert core.catalog is not None and core.storage is not None
    rows = scan_table(core.catalog, core.storage, "acme", table, snapshot=snapshot).rows
    return sorted(rows.drop_columns(["_seq"]).to_pylist(), key=lambda r: r["data_id"])


def test_compaction_merges_files_and_keeps_every_row(ingest_core: Core) -> None:
    catalog = ingest_core.catalog
    assert catalog is not None
    _flushes(ingest_core, 6)
    before_files = catalog.files("acme", "records")
    before = _visible(ingest_core)
    assert len(before_files) == 6 and len(before) == 120

    [result] = _compact(ingest_core)

    after_files = catalog.files("acme", "records")
    assert len(after_files) == 1 and result.files_before == 6 and result.files_after == 1
    assert _visible(ingest_core) == before
    snapshot = catalog.snapshot(catalog.current_snapshot())
    assert snapshot is not None and snapshot.kind == "compaction" and not snapshot.data_change
    [merged] = after_files
    assert (merged.seq_min, merged.seq_max) == (min(f.seq_min or 0 for f in before_files),
                                                max(f.seq_max or 0 for f in before_files))
    stats = {s.column: s for s in merged.stats}
    assert (stats["n"].min, stats["n"].max) == (0, 5) and stats["data_id"].null_count == 0
    # The snapshot before the compaction still reads its six files (time travel, until cleanup).
    assert _visible(ingest_core, snapshot=catalog.current_snapshot() - 1) == before


def test_records_still_read_back_one_by_one_after_compaction(
        ingest_core: Core) -> None:
    _flushes(ingest_core, 3)
    _compact(ingest_core)
    assert ingest_core.reader is not None
    ref = TableRef("acme", "records")
    found = ingest_core.reader.get(ref, "records-1-7")
    assert found["payload"]["name"] == "r1-7" and found["flushed"]
    page = ingest_core.reader.newest(ref, limit=25)
    assert [r["data_id"] for r in page.records] == (
        [f"records-2-{i}" for i in range(19, -1, -1)]
        + [f"records-1-{i}" for i in range(19, 14, -1)])


def test_compaction_keeps_only_the_newest_version_of_each_data_id(ingest_core: Core) -> None:
    catalog, storage = ingest_core.catalog, ingest_core.storage
    assert catalog is not None and storage is not None
    _flush(ingest_core, [{"data_id": f"u{i}", "payload": {"v": 1}} for i in range(10)])
    _flush(ingest_core, [{"data_id": "u3", "payload": {"v": 2}, "upsert": True}])
    _flush(ingest_core, [{"data_id": "u3", "payload": {"v": 3}, "upsert": True},
                         {"data_id": "u5", "payload": {"v": 2}, "upsert": True}])
    raw_before = sum(f.row_count for f in catalog.files("acme", "records"))
    visible_before = _visible(ingest_core)

    [result] = _compact(ingest_core)

    assert raw_before == 13 and result.rows_before == 13 and result.rows_after == 10
    assert _visible(ingest_core) == visible_before
    rows = scan_table(catalog, storage, "acme", "records").rows
    assert {r["data_id"]: r["v"] for r in rows.to_pylist()}["u3"] == 3
    assert ingest_core.reader is not None
    assert ingest_core.reader.get(TableRef("acme", "records"), "u3")["payload"] == {"v": 3}


def test_outputs_are_sorted_by_the_tables_sort_key(ingest_core: Core) -> None:
    catalog, storage = ingest_core.catalog, ingest_core.storage
    assert catalog is not None and storage is not None and ingest_core.declarations is not None
    from lakehouse.schema.declared import parse_declaration

    ingest_core.declarations.declare("acme", parse_declaration(
        {"table": "events", "columns": {"score": "int64", "name": "string"},
         "sort_key": ["score"]}))
    for n in range(3):
        _flush(ingest_core, [{"data_id": f"e{n}-{i}", "table": "events",
                              "payload": {"score": (i * 7 + n) % 50, "name": "x"}}
                             for i in range(30)])
    [_] = _compact(ingest_core)
    [merged] = catalog.files("acme", "events")
    scores = scan_table(catalog, storage, "acme", "events").rows.column("score").to_pylist()
    assert scores == sorted(scores) and merged.row_count == 90


def test_a_concurrent_flush_into_the_same_partition_never_conflicts(ingest_core: Core) -> None:
    catalog, storage = ingest_core.catalog, ingest_core.storage
    assert catalog is not None and storage is not None
    _flushes(ingest_core, 4)
    [group] = _plan(ingest_core).groups

    def rewrite_then_flush(root: str, g: Any) -> RewriteResult:
        result = rewrite_group(root, g)
        _flush(ingest_core, [{"data_id": "late", "payload": {"n": 99, "i": 0, "name": "z"}}])
        return result

    result = compact_group(catalog, storage, group, POLICY, rewrite_then_flush)
    assert result.attempts == 1 and result.snapshot is not None
    assert len(catalog.files("acme", "records")) == 2
    assert len(_visible(ingest_core)) == 81


def test_a_real_conflict_replans_the_group_from_fresh_metadata(ingest_core: Core) -> None:
    catalog, storage = ingest_core.catalog, ingest_core.storage
    assert catalog is not None and storage is not None
    _flushes(ingest_core, 5)
    [group] = _plan(ingest_core).groups
    stolen = group.inputs[0]
    assert stolen.file_id is not None
    attempts: list[int] = []

    def rewrite_racing_a_removal(root: str, g: Any) -> RewriteResult:
        attempts.append(len(g.inputs))
        if len(attempts) == 1:  # meanwhile another writer removes one input
            catalog.commit(Commit("retention", (RemoveFiles("acme", "records",
                                                            (stolen.file_id,)),)))
        return rewrite_group(root, g)

    result = compact_group(catalog, storage, group, POLICY, rewrite_racing_a_removal)
    assert attempts == [5, 4] and result.attempts == 2 and result.files_before == 4
    [merged] = [f for f in catalog.files("acme", "records")]
    assert merged.row_count == 80
    # The first attempt's outputs never reached a snapshot and were removed at once.
    on_disk = list((ingest_core.settings.data_dir / "warehouse").rglob("compacted-*.parquet"))
    assert [p.name for p in on_disk] == [merged.path.rsplit("/", 1)[-1]]


def test_cleanup_removes_what_compaction_replaced_and_never_committed(ingest_core: Core) -> None:
    catalog, storage = ingest_core.catalog, ingest_core.storage
    assert catalog is not None and storage is not None
    _flushes(ingest_core, 3)
    [group] = _plan(ingest_core).groups
    stray = rewrite_group(storage.uri, group)  # a rewrite whose process died before commit
    _compact(ingest_core)
    warehouse = ingest_core.settings.data_dir / "warehouse"
    assert len(list(warehouse.rglob("*.parquet"))) == 3 + 1 + 1
    young = delete_orphans(catalog, storage, grace_s=3600, now=time.time())
    assert young.files_deleted == 0
    orphans = delete_orphans(catalog, storage, grace_s=0, now=time.time() + 1)
    dead = delete_dead_files(catalog, storage, grace_s=0, now=time.time() + 1)
    assert (orphans.files_deleted, dead.files_deleted) == (1, 3)
    left = list(warehouse.rglob("*.parquet"))
    assert [p.name for p in left] == [catalog.files("acme", "records")[0].path.rsplit("/")[-1]]
    assert stray.outputs[0].path not in {f.path for f in catalog.files("acme", "records")}
    assert len(_visible(ingest_core)) == 60


def test_retention_hides_old_rows_at_once_and_drops_old_partitions(ingest_core: Core) -> None:
    catalog, storage = ingest_core.catalog, ingest_core.storage
    assert catalog is not None and storage is not None
    old = "2020-01-01T00:00:00Z"
    _flush(ingest_core, [{"data_id": f"old{i}", "timestamp": old, "payload": {"i": i}}
                         for i in range(5)])
    _flush(ingest_core, [{"data_id": f"new{i}", "payload": {"i": i}} for i in range(5)])
    options = SqlTableOptions(ingest_core.engine)
    assert len(scan_table(catalog, storage, "acme", "records").rows) == 10
    options.put("acme", "records", TableOptions(retention_s=30 * 86_400))
    hidden = scan_table(catalog, storage, "acme", "records",
                        options=options.get("acme", "records"))
    assert sorted(hidden.rows.column("data_id").to_pylist()) == [f"new{i}" for i in range(5)]
    assert hidden.files == 2  # hidden by the scan before any file is dropped

    from lakehouse.compaction.retention import plan_retention
    from lakehouse.storage.maintenance import apply_retention

    [drop] = plan_retention(table_files(catalog, options), time.time())
    assert drop.partitions == ("day=2020-01-01",) and drop.rows == 5
    apply_retention(catalog, drop)
    assert [f.partition for f in catalog.files("acme", "records")] != ["day=2020-01-01"]
    assert len(catalog.files("acme", "records")) == 1
    assert pc.sum(scan_table(catalog, storage, "acme", "records").rows.column("i")).as_py() == 10


@pytest.mark.parametrize("rounds", [3])
def test_queries_during_compaction_cleanup_and_writes_see_their_snapshot(
        ingest_core: Core, rounds: int) -> None:
    """The snapshot-read contract: a query pinned to snapshot N answers as N, whatever commits
    while it runs. Writers flush, compactions and cleanups run; readers record (snapshot,
    answer); every answer must equal the rows of its snapshot, which only data changes make."""
    catalog, storage = ingest_core.catalog, ingest_core.storage
    assert catalog is not None and storage is not None
    expected: dict[int, tuple[int, int]] = {0: (0, 0)}  # data snapshot → (rows, sum of i)
    stop = threading.Event()
    answers: list[tuple[int, tuple[int, int]]] = []
    errors: list[BaseException] = []
    written = [0, 0]
    deleted: list[int] = []
    through_sql: list[int] = []

    def writer() -> None:
        for n in range(rounds * 8):
            _flush(ingest_core, [{"data_id": f"w{n}-{i}", "payload": {"i": i}}
                                 for i in range(25)])
            written[0] += 25
            written[1] += sum(range(25))
            expected[catalog.current_snapshot()] = (written[0], written[1])
            time.sleep(0.1)

    def reader() -> None:
        while not stop.is_set():
            try:
                snapshot = catalog.current_snapshot()
                rows = scan_table(catalog, storage, "acme", "records", snapshot=snapshot).rows
                total = pc.sum(rows.column("i")).as_py() if rows.num_rows else 0
                answers.append((snapshot, (rows.num_rows, total or 0)))
            except BaseException as exc:  # collected: a reader must never fail
                errors.append(exc)

    def maintainer() -> None:
        while not stop.is_set():
            _compact(ingest_core)
            # Cleanup with a grace period far longer than any query here takes.
            deleted.append(delete_dead_files(catalog, storage, grace_s=1.0,
                                             now=time.time()).files_deleted)
            time.sleep(0.05)

    from lakehouse.executor.engine import QueryEngine
    from lakehouse.optimizer.cost_model import CostModel

    engine = QueryEngine(catalog, storage, SqlTableOptions(ingest_core.engine))

    def sql_reader() -> None:
        """The same check through the query engine: a query pins a snapshot and plans on it
        (the log is left out here, so the answer is the snapshot's alone)."""
        while not stop.is_set():
            try:
                planned = engine.plan("acme", "SELECT count(*), coalesce(sum(i), 0) "
                                      "FROM records", None, CostModel())
                [row] = engine.run(planned).to_pylist()
                count, total = row.values()
                answers.append((planned.pin.snapshot, (int(count), int(total))))
                through_sql.append(planned.pin.snapshot)
            except BaseException as exc:  # collected: a reader must never fail
                if "no table" not in str(exc) and "unknown_table" not in str(exc):
                    errors.append(exc)

    threads = [threading.Thread(target=f) for f in (reader, sql_reader, maintainer)]
    for thread in threads:
        thread.start()
    writer()
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert errors == []
    kinds = {s.snapshot_id: s for s in catalog.snapshots(limit=10_000)}
    assert any(not s.data_change for s in kinds.values()), "no compaction ran"
    assert sum(deleted) > 0, "cleanup deleted nothing while queries ran"

    def truth(snapshot: int) -> tuple[int, int]:
        data = max((s for s in expected if s <= snapshot), default=0)
        return expected[data]

    assert len(answers) > 20 and len(set(through_sql)) > 3
    wrong = [(s, a, truth(s)) for s, a in answers if a != truth(s)]
    assert wrong == []
