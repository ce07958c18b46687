"""Start-up (lakehouse/ingest/recovery.py): the write path's per-table state, rebuilt from the
in-memory WAL alone."""

from __future__ import annotations

from typing import Any

import orjson

from lakehouse.ingest.admission import BacklogLimits, IngestLimits
from lakehouse.ingest.batch import RecordBatch
from lakehouse.ingest.keys import TableRef, stats_key
from lakehouse.ingest.recovery import recover
from lakehouse.ingest.service import IngestService
from lakehouse.wal.memory import MemoryWal
from lakehouse.wal.port import LogEntry

RECORDS = TableRef("acme", "records")
OTHER = TableRef("acme", "other")
FLUSHED = TableRef("globex", "records")  # counters persisted, every entry trimmed since
UNLIMITED = IngestLimits(BacklogLimits(1 << 30, 3600.0), 0.0, 0.0)


def _entry(ref: TableRef, data_ids: list[str], received_us: int) -> LogEntry:
    rows = tuple((data_id, received_us, {"n": 1}, False) for data_id in data_ids)
    return LogEntry(RecordBatch(ref.tenant, ref.table, None, received_us, rows).encode(),
                    len(rows))


def _counters(records: int, size: int, duplicates: int = 0, rejected: int = 0) -> bytes:
    return orjson.dumps({"records": records, "bytes": size, "duplicates": duplicates,
                         "rejected": rejected})


def test_counters_come_from_their_keys_and_unflushed_entries_from_the_log() -> None:
    wal = MemoryWal()
    flushed = _entry(FLUSHED, ["x"], 100)
    wal.append([flushed], {stats_key(FLUSHED): _counters(1, len(flushed.payload))})  # seq 1
    first = _entry(RECORDS, ["a", "b"], 200)
    wal.append([first], {stats_key(RECORDS): _counters(2, len(first.payload))})  # seqs 2-3
    other = _entry(OTHER, ["c"], 300)
    wal.append([other], {stats_key(OTHER): _counters(1, len(other.payload))})  # seq 4
    second = _entry(RECORDS, ["d"], 400)
    size = len(first.payload) + len(second.payload)
    wal.append([second], {stats_key(RECORDS): _counters(3, size, duplicates=2, rejected=1)})
    wal.trim(1)

    recovered = recover(wal)

    assert set(recovered.tables) == {RECORDS, OTHER, FLUSHED}
    records = recovered.tables[RECORDS]
    assert (records.records, records.size_bytes, records.duplicates, records.rejected) == (
        3, size, 2, 1)
    assert list(records.entry_seqs) == [2, 5]
    assert (records.unflushed_records, records.unflushed_bytes) == (3, size)
    assert records.oldest_unflushed_us() == 200
    assert list(recovered.tables[OTHER].entry_seqs) == [4]
    gone = recovered.tables[FLUSHED]
    assert (gone.records, gone.unflushed_records, list(gone.entry_seqs)) == (1, 0, [])
    for ref, state in recovered.tables.items():
        durable = recovered.durable_counts[ref]
        assert durable.counters() == state.counters()
        assert durable is not state and not durable.entry_seqs  # counters only, a copy


def test_an_entry_without_counters_still_makes_its_table_known() -> None:
    wal = MemoryWal()
    wal.append([_entry(OTHER, ["a"], 5)])
    recovered = recover(wal)
    assert list(recovered.tables[OTHER].entry_seqs) == [1]
    assert recovered.tables[OTHER].records == 0


def test_an_empty_log_recovers_nothing() -> None:
    recovered = recover(MemoryWal())
    assert recovered.tables == {}
    assert recovered.durable_counts == {}


def test_a_restarted_service_reports_what_the_one_before_it_had() -> None:
    def clock() -> float:
        return 1_000.0

    wal = MemoryWal()
    before = IngestService(wal, UNLIMITED, clock=clock)
    writes: list[list[Any]] = [
        [{"data_id": "a", "payload": {"n": 1}}, {"data_id": "b", "payload": {"n": 2}}],
        [{"data_id": "a", "payload": {"n": 1}}, {"data_id": "c", "table": "other",
                                                 "payload": {"s": "x"}}, "not a record"],
    ]
    for records in writes:
        before.write("acme", records).answer(timeout_s=10)
    stats = before.table_stats(None)
    before.close()
    after = IngestService(wal, UNLIMITED, clock=clock)
    try:
        assert after.table_stats(None) == stats
        assert after.unflushed_totals()[0] == 4  # a, b, c and the reject; not the duplicate
    finally:
        after.close()
