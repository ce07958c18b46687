"""One contract, every WriteAheadLog implementation: in-memory and RocksDB (synced, in tmp_path).

Behaviour that needs a restart, another process or a full disk is RocksDB-only and lives in
tests/integration/test_wal_rocks.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.errors import WalUnavailable
from lakehouse.wal.codec import log_key
from lakehouse.wal.memory import MemoryWal
from lakehouse.wal.port import LogEntry, StoredEntry, WalStats, WriteAheadLog
from lakehouse.wal.rocks import RocksWal


@pytest.fixture(params=["memory", "rocksdb"])
def wal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WriteAheadLog]:
    log: WriteAheadLog = MemoryWal() if request.param == "memory" else RocksWal.open(
        tmp_path / "wal")
    yield log
    log.close()


def _e(payload: bytes, width: int = 1) -> LogEntry:
    return LogEntry(payload, width)


def _seqs(entries: Iterator[StoredEntry]) -> list[int]:
    return [entry.seq for entry in entries]


@pytest.fixture
def five(wal: WriteAheadLog) -> WriteAheadLog:
    """Entries at seqs 1, 2-3, 4, 5-7, 8."""
    assert wal.append([_e(b"a"), _e(b"bb", 2), _e(b"c")]) == 1
    assert wal.append([_e(b"ddd", 3), _e(b"")]) == 5
    return wal


def test_a_new_log_is_empty(wal: WriteAheadLog) -> None:
    assert wal.last_seq() == 0
    assert wal.first_seq() == 1
    assert list(wal.read()) == []
    assert list(wal.read_reverse()) == []
    assert wal.entry_containing(1) is None
    assert wal.index_get([b"k"]) == [None]
    assert list(wal.index_scan(b"")) == []
    assert wal.stats() == WalStats()
    assert wal.degraded is None


def test_entries_take_consecutive_sequence_numbers_by_width(wal: WriteAheadLog) -> None:
    assert wal.append([_e(b"a"), _e(b"bbb", 3), _e(b"cc", 2)]) == 1
    assert list(wal.read()) == [StoredEntry(1, 1, b"a"), StoredEntry(2, 3, b"bbb"),
                                StoredEntry(5, 2, b"cc")]
    assert [e.last_seq for e in wal.read()] == [1, 4, 6]
    assert wal.last_seq() == 6
    assert wal.append([_e(b"d", 1000)]) == 7
    assert wal.last_seq() == 1006
    assert wal.first_seq() == 1


def test_width_must_be_positive() -> None:
    with pytest.raises(ValueError, match="width"):
        LogEntry(b"x", 0)


def test_index_is_written_with_the_entries_and_none_deletes(wal: WriteAheadLog) -> None:
    wal.append([_e(b"r1")], {b"acme/id-1": b"1", b"acme/id-2": b"1"})
    assert wal.index_get([b"acme/id-1", b"acme/id-2", b"acme/id-3"]) == [b"1", b"1", None]
    wal.append([_e(b"r2")], {b"acme/id-1": None, b"acme/id-3": b"2"})
    assert wal.index_get([b"acme/id-3", b"acme/id-1", b"acme/id-2"]) == [b"2", None, b"1"]
    assert wal.index_get([]) == []


def test_an_index_only_append_does_not_advance_the_log(wal: WriteAheadLog) -> None:
    wal.append([_e(b"x", 2)])
    assert wal.append([], {b"k": b"v"}) == 3
    assert wal.last_seq() == 2
    assert wal.index_get([b"k"]) == [b"v"]
    assert wal.append([]) == 3  # nothing at all: a no-op
    assert wal.append([_e(b"y")]) == 3


def test_a_rejected_append_changes_nothing(wal: WriteAheadLog) -> None:
    wal.append([_e(b"kept")], {b"k": b"old"})
    with pytest.raises(TypeError):
        wal.append([_e(b"lost")], {b"k": b"new", "not-bytes": b"v"})  # type: ignore[dict-item]
    assert wal.last_seq() == 1
    assert _seqs(wal.read()) == [1]
    assert wal.index_get([b"k"]) == [b"old"]
    assert wal.stats().appends == 1


def test_read_after_and_limit(five: WriteAheadLog) -> None:
    assert _seqs(five.read()) == [1, 2, 4, 5, 8]
    assert _seqs(five.read(after=-5)) == [1, 2, 4, 5, 8]
    # `after` compares with an entry's FIRST seq: the entry 2-3 is not "after 2".
    assert _seqs(five.read(after=2)) == [4, 5, 8]
    assert _seqs(five.read(after=3)) == [4, 5, 8]
    assert _seqs(five.read(after=1, limit=2)) == [2, 4]
    assert _seqs(five.read(limit=0)) == []
    assert _seqs(five.read(after=8)) == []
    assert _seqs(five.read(after=2**70)) == []
    with pytest.raises(ValueError, match="limit"):
        five.read(limit=-1)


def test_read_reverse_before_and_limit(five: WriteAheadLog) -> None:
    assert _seqs(five.read_reverse()) == [8, 5, 4, 2, 1]
    assert _seqs(five.read_reverse(before=5)) == [4, 2, 1]
    assert _seqs(five.read_reverse(before=3)) == [2, 1]
    assert _seqs(five.read_reverse(before=5, limit=2)) == [4, 2]
    assert _seqs(five.read_reverse(before=1)) == []
    assert _seqs(five.read_reverse(before=2**70, limit=1)) == [8]
    assert list(five.read_reverse(limit=1)) == [StoredEntry(8, 1, b"")]


def test_reads_longer_than_one_chunk(wal: WriteAheadLog) -> None:
    wal.append([_e(i.to_bytes(2, "big"), 2) for i in range(700)])
    assert _seqs(wal.read()) == list(range(1, 1400, 2))
    assert _seqs(wal.read(after=100, limit=300)) == list(range(101, 701, 2))
    assert _seqs(wal.read_reverse()) == list(range(1399, 0, -2))
    assert _seqs(wal.read_reverse(before=1300, limit=400)) == list(range(1299, 499, -2))
    assert [e.payload for e in wal.read(after=1397)] == [(699).to_bytes(2, "big")]


def test_entry_containing(five: WriteAheadLog) -> None:
    expected = {1: 1, 2: 2, 3: 2, 4: 4, 5: 5, 6: 5, 7: 5, 8: 8}
    for seq, first in expected.items():
        found = five.entry_containing(seq)
        assert found is not None and found.seq == first, seq
    assert five.entry_containing(0) is None
    assert five.entry_containing(-1) is None
    assert five.entry_containing(9) is None
    assert five.entry_containing(2**70) is None


def test_trim_removes_only_whole_entries(five: WriteAheadLog) -> None:
    assert five.trim(0) == 0
    assert five.trim(1) == 1
    assert five.first_seq() == 2
    assert five.trim(2) == 0  # 2-3 is not fully covered by 2
    assert five.entry_containing(2) is not None
    assert five.trim(3) == 1
    assert five.trim(6) == 1  # removes 4; 5-7 stays whole
    assert five.first_seq() == 5
    assert five.entry_containing(4) is None
    assert _seqs(five.read()) == [5, 8]
    assert five.trim(6) == 0
    assert five.trim(2**70) == 2
    assert list(five.read()) == []
    assert list(five.read_reverse()) == []
    # last_seq is history, not content: it survives trimming everything.
    assert five.last_seq() == 8
    assert five.first_seq() == 9
    assert five.append([_e(b"next")]) == 9
    assert five.first_seq() == 9


def test_index_scan_is_ascending_and_isolated_by_prefix(wal: WriteAheadLog) -> None:
    wal.append([_e(b"rec")], {b"t1/b": b"2", b"t10/x": b"3", b"t1/a": b"1", b"t2/a": b"4",
                              b"t1": b"5"})
    assert list(wal.index_scan(b"t1/")) == [(b"t1/a", b"1"), (b"t1/b", b"2")]
    assert [k for k, _ in wal.index_scan(b"t1")] == [b"t1", b"t1/a", b"t1/b", b"t10/x"]
    assert list(wal.index_scan(b"t3")) == []
    assert [k for k, _ in wal.index_scan(b"")] == [b"t1", b"t1/a", b"t1/b", b"t10/x", b"t2/a"]


def test_index_keys_never_collide_with_log_entries(wal: WriteAheadLog) -> None:
    lookalike = log_key(1)  # a caller's key that happens to spell a log key
    wal.append([_e(b"real")], {lookalike: b"index value", b"M" + b"last_seq": b"x"})
    assert list(wal.read()) == [StoredEntry(1, 1, b"real")]
    assert wal.trim(100) == 1
    assert wal.index_get([lookalike, b"Mlast_seq"]) == [b"index value", b"x"]
    assert wal.last_seq() == 1
    assert wal.append([_e(b"after")]) == 2


def test_stats_count_one_durable_write_per_append_or_trim(wal: WriteAheadLog) -> None:
    wal.append([_e(b"abc"), _e(b"de", 5)], {b"k": b"v"})
    wal.append([_e(b"f")])
    wal.append([], {b"k": None})
    wal.append([])  # a no-op writes nothing
    wal.trim(0)  # nothing to trim writes nothing
    wal.trim(1)
    assert wal.stats() == WalStats(appends=3, entries=3, fsyncs=4, bytes_appended=6)


def test_concurrent_appends_get_distinct_consecutive_seqs(wal: WriteAheadLog) -> None:
    firsts: list[int] = []
    guard = threading.Lock()

    def writer(n: int) -> None:
        for i in range(25):
            first = wal.append([_e(f"{n}-{i}".encode(), 2)], {f"{n}-{i}".encode(): b"1"})
            with guard:
                firsts.append(first)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(firsts) == list(range(1, 200, 2))
    assert _seqs(wal.read()) == list(range(1, 200, 2))
    assert wal.last_seq() == 200


def test_reads_run_alongside_a_writer_and_a_trimmer(wal: WriteAheadLog) -> None:
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                forward = _seqs(wal.read())
                assert forward == sorted(forward)
                backward = _seqs(wal.read_reverse(limit=50))
                assert backward == sorted(backward, reverse=True)
                first, last = wal.first_seq(), wal.last_seq()
                assert first <= last + 1
                wal.entry_containing(last)
                list(wal.index_scan(b"k"))
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    for i in range(300):
        wal.append([_e(b"x" * 100, 3)], {b"k%d" % i: b"v"})
        if i % 50 == 49:
            wal.trim(wal.last_seq() - 30)
    done.set()
    for thread in readers:
        thread.join()
    assert errors == []
    assert wal.last_seq() == 900
    assert _seqs(wal.read()) == list(range(871, 901, 3))


def test_a_closed_log_refuses_every_call(wal: WriteAheadLog) -> None:
    wal.append([_e(b"x")])
    wal.close()
    wal.close()  # idempotent
    with pytest.raises(WalUnavailable):
        wal.append([_e(b"y")])
    with pytest.raises(WalUnavailable):
        wal.read()
    with pytest.raises(WalUnavailable):
        wal.read_reverse()
    with pytest.raises(WalUnavailable):
        wal.index_scan(b"")
    for call in (wal.last_seq, wal.first_seq, lambda: wal.trim(1),
                 lambda: wal.entry_containing(1), lambda: wal.index_get([b"k"])):
        with pytest.raises(WalUnavailable):
            call()
