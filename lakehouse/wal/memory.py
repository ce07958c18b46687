"""A real, thread-safe WriteAheadLog kept in lists and a dictionary (nothing survives the process).

It counts `fsyncs` as the durable log would (one per append or trim that writes), so tests of
group commit can check batching against it as well as against RocksDB.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

from lakehouse.errors import WalUnavailable
from lakehouse.wal.port import LogEntry, StoredEntry, WalStats, check_index, check_limit


class MemoryWal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Ascending by seq; `_seqs` mirrors it so lookups can bisect.
        self._entries: list[StoredEntry] = []
        self._seqs: list[int] = []
        self._index: dict[bytes, bytes] = {}
        self._last_seq = 0
        self._stats = WalStats()
        self._closed = False

    def append(
        self, entries: Sequence[LogEntry], index: Mapping[bytes, bytes | None] | None = None
    ) -> int:
        check_index(index)
        with self._lock:
            self._check_open()
            first = self._last_seq + 1
            if not entries and not index:
                return first
            seq = first
            stored: list[StoredEntry] = []
            for entry in entries:
                stored.append(StoredEntry(seq, entry.width, entry.payload))
                seq += entry.width
            # Everything above cannot fail, so the write below is all-or-nothing.
            self._entries.extend(stored)
            self._seqs.extend(e.seq for e in stored)
            for key, value in (index or {}).items():
                if value is None:
                    self._index.pop(key, None)
                else:
                    self._index[key] = value
            self._last_seq = seq - 1
            self._stats = replace(
                self._stats,
                appends=self._stats.appends + 1,
                entries=self._stats.entries + len(stored),
                fsyncs=self._stats.fsyncs + 1,
                bytes_appended=self._stats.bytes_appended + sum(len(e.payload) for e in stored),
            )
            return first

    def read(self, after: int = 0, limit: int | None = None) -> Iterator[StoredEntry]:
        check_limit(limit)
        with self._lock:
            self._check_open()
            start = bisect.bisect_right(self._seqs, after)
            end = len(self._entries) if limit is None else start + limit
            chosen = self._entries[start:end]
        return iter(chosen)

    def read_reverse(
        self, before: int | None = None, limit: int | None = None
    ) -> Iterator[StoredEntry]:
        check_limit(limit)
        with self._lock:
            self._check_open()
            stop = len(self._entries) if before is None else bisect.bisect_left(self._seqs, before)
            start = 0 if limit is None else max(0, stop - limit)
            chosen = self._entries[start:stop]
        return reversed(chosen)

    def entry_containing(self, seq: int) -> StoredEntry | None:
        with self._lock:
            self._check_open()
            pos = bisect.bisect_right(self._seqs, seq) - 1
            if pos < 0:
                return None
            entry = self._entries[pos]
            return entry if seq <= entry.last_seq else None

    def trim(self, through: int) -> int:
        with self._lock:
            self._check_open()
            # Entries are ascending and do not overlap, so the deleted ones are a prefix.
            count = 0
            while count < len(self._entries) and self._entries[count].last_seq <= through:
                count += 1
            if count:
                del self._entries[:count]
                del self._seqs[:count]
                self._stats = replace(self._stats, fsyncs=self._stats.fsyncs + 1)
            return count

    def last_seq(self) -> int:
        with self._lock:
            self._check_open()
            return self._last_seq

    def first_seq(self) -> int:
        with self._lock:
            self._check_open()
            return self._seqs[0] if self._seqs else self._last_seq + 1

    def index_get(self, keys: Sequence[bytes]) -> list[bytes | None]:
        with self._lock:
            self._check_open()
            return [self._index.get(key) for key in keys]

    def index_scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            self._check_open()
            found = sorted((k, v) for k, v in self._index.items() if k.startswith(prefix))
        return iter(found)

    def stats(self) -> WalStats:
        with self._lock:
            return self._stats

    @property
    def degraded(self) -> str | None:
        return None

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise WalUnavailable("the in-memory WAL is closed")
