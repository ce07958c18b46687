"""Group commit over the in-memory WAL: grouping, ordering, and failures kept apart."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import pytest

from lakehouse.errors import StorageFull
from lakehouse.ingest.group_commit import GroupCommitter, Prepared
from lakehouse.wal.memory import MemoryWal
from lakehouse.wal.port import LogEntry


def _prepare(tag: bytes, width: int = 1):  # type: ignore[no-untyped-def]
    def build(first_seq: int) -> Prepared:
        return Prepared([LogEntry(tag, width)], {b"k" + tag: first_seq.to_bytes(8, "big")})
    return build


def test_a_lone_write_is_committed_without_waiting_for_company() -> None:
    wal = MemoryWal()
    committer = GroupCommitter(wal)
    assert committer.submit(3, _prepare(b"a", 3)).result(timeout=5) == 1
    assert committer.submit(1, _prepare(b"b")).result(timeout=5) == 4
    assert wal.last_seq() == 4
    assert wal.index_get([b"kb"]) == [(4).to_bytes(8, "big")]
    committer.close()


class SlowWal(MemoryWal):
    """Holds the first append until released, so later submissions pile up into one group."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()
        self.appends: list[int] = []

    def append(self, entries: Sequence[LogEntry],
               index: Mapping[bytes, bytes | None] | None = None) -> int:
        self.entered.set()
        self.release.wait(5)
        self.appends.append(len(entries))
        return super().append(entries, index)


def test_concurrent_writes_share_one_append_in_order() -> None:
    wal = SlowWal()
    committer = GroupCommitter(wal)
    first = committer.submit(1, _prepare(b"first"))
    assert wal.entered.wait(5)  # the first write is inside its append
    rest = [committer.submit(2, _prepare(bytes([65 + i]), 2)) for i in range(10)]
    wal.release.set()
    assert first.result(5) == 1
    assert [f.result(5) for f in rest] == [2 + 2 * i for i in range(10)]
    assert wal.appends == [1, 10]  # the ten that waited went together
    stats = committer.stats()
    assert (stats.commits, stats.requests, stats.records, stats.largest_group) == (2, 11, 21, 10)
    committer.close()


def test_a_bad_request_fails_alone_and_a_failed_append_fails_its_group() -> None:
    wal = SlowWal()
    committer = GroupCommitter(wal)
    blocker = committer.submit(1, _prepare(b"x"))
    assert wal.entered.wait(5)

    def broken(_first: int) -> Prepared:
        raise ValueError("cannot encode")

    bad = committer.submit(1, broken)
    good = committer.submit(1, _prepare(b"y"))
    wal.release.set()
    blocker.result(5)
    with pytest.raises(ValueError):
        bad.result(5)
    assert good.result(5) == 2  # the broken request took no sequence number

    def full(entries: Sequence[LogEntry], index: object = None) -> int:
        raise StorageFull("disk full")

    wal.append = full  # type: ignore[method-assign,assignment]
    doomed = [committer.submit(1, _prepare(bytes([70 + i]))) for i in range(3)]
    for future in doomed:
        with pytest.raises(StorageFull):
            future.result(5)
    committer.close()
