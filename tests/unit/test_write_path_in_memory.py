"""The write path, the flush and the query engine on the in-memory WAL and catalog (the same
implementations the contract suites hold to the RocksDB and SQL ones); files go to a temporary
folder, queries run on DuckDB. No process, no Prefect: the flush runs the shell's plain loop."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from flows.ingest import flush_here
from lakehouse.catalog.declarations import MemoryDeclarations
from lakehouse.catalog.lake_memory import MemoryCatalog
from lakehouse.catalog.table_options import MemoryTableOptions
from lakehouse.executor.engine import QueryEngine
from lakehouse.ingest.admission import BacklogLimits
from lakehouse.ingest.flush import WAL_WRITER, Flusher, write_locally
from lakehouse.ingest.flushed_records import ParquetRecords
from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.service import IngestLimits, IngestService
from lakehouse.optimizer.cost_model import CostModel
from lakehouse.schema import FieldType
from lakehouse.storage.location import StorageRoot
from lakehouse.wal.memory import MemoryWal


@dataclass
class Platform:
    wal: MemoryWal
    catalog: MemoryCatalog
    storage: StorageRoot
    ingest: IngestService
    flusher: Flusher
    engine: QueryEngine

    def write(self, records: list[dict[str, Any]], tenant: str = "acme") -> dict[str, Any]:
        answer: dict[str, Any] = self.ingest.write(tenant, records).answer(timeout_s=10)
        return answer

    def query(self, sql: str, tenant: str = "acme") -> list[tuple[Any, ...]]:
        table = self.engine.run(self.engine.plan(tenant, sql, None, CostModel()))
        return [tuple(row.values()) for row in table.to_pylist()]


def _platform(wal: MemoryWal, catalog: MemoryCatalog, root: Path) -> Platform:
    ingest = IngestService(wal, IngestLimits(BacklogLimits(1 << 30, 3600.0), 0.0, 0.0),
                           declarations=MemoryDeclarations())

    def schema(ref: TableRef) -> FieldType | None:
        found = catalog.table(ref.tenant, ref.table)
        return FieldType.from_json(found.schema) if found is not None else None

    ingest.catalog_schema = schema
    storage = StorageRoot.parse(str(root))
    ingest.flushed_source = ParquetRecords(catalog, storage)  # where flushed records are read
    flusher = Flusher(ingest, catalog, storage)
    flusher.recover()
    return Platform(wal, catalog, storage, ingest, flusher,
                    QueryEngine(catalog, storage, MemoryTableOptions(), ingest))


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    (tmp_path / "warehouse").mkdir()
    built = _platform(MemoryWal(), MemoryCatalog(), tmp_path / "warehouse")
    yield built
    built.ingest.close()


def test_records_are_read_before_and_after_the_flush_alike(platform: Platform) -> None:
    answer = platform.write([{"data_id": f"r{i}", "payload": {"n": i}} for i in range(5)])
    assert (answer["status"], answer["accepted"]) == ("durable", 5)
    assert platform.write([{"data_id": "r1", "payload": {"n": 1}}])["duplicate"] == 1
    before = platform.query("SELECT count(*), sum(n) FROM records")
    assert before == [(5, 10)]

    summary = flush_here(platform.flusher)
    assert (summary["rows"], summary["snapshot"], summary["state"]) == (5, 1, "COMPLETED")
    assert platform.catalog.watermark(WAL_WRITER) == summary["through_seq"]
    assert platform.ingest.unflushed_totals()[0] == 0  # the log was trimmed
    assert platform.query("SELECT count(*), sum(n) FROM records") == before
    assert flush_here(platform.flusher)["rows"] == 0


def test_an_upsert_shows_its_newest_version_only(platform: Platform) -> None:
    platform.write([{"data_id": "a", "payload": {"n": 1}}])
    flush_here(platform.flusher)
    assert platform.write([{"data_id": "a", "payload": {"n": 2}, "upsert": True}])[
        "accepted"] == 1
    assert platform.query("SELECT data_id, n FROM records") == [("a", 2)]
    flush_here(platform.flusher)
    assert platform.query("SELECT data_id, n FROM records") == [("a", 2)]


def test_a_crash_between_commit_and_trim_is_trimmed_at_the_next_start(
        platform: Platform, tmp_path: Path) -> None:
    platform.write([{"data_id": f"r{i}", "payload": {"n": i}} for i in range(3)])
    plan = platform.flusher.plan()
    assert plan is not None
    files = {work.ref: platform.flusher.write_table(work, write_locally) for work in plan.tables}
    platform.flusher.commit(plan, files)  # ... and the process dies before trim_log
    platform.ingest.close()
    again = _platform(platform.wal, platform.catalog, tmp_path / "warehouse")
    try:
        assert again.ingest.unflushed_totals()[0] == 0  # recover() trimmed the log
        assert again.query("SELECT count(*) FROM records") == [(3,)]  # not counted twice
        assert flush_here(again.flusher)["rows"] == 0
    finally:
        again.ingest.close()
