"""The write-ahead log interface and the values that cross it.

Implementations: `lakehouse.wal.memory.MemoryWal` (in-memory, for tests and pure logic) and
`lakehouse.wal.rocks.RocksWal` (RocksDB, durable). One contract suite, tests/contract/test_wal.py,
runs against both.

Sequence numbers start at 1 and are never reused, so a sequence number names one record for the
life of the log: an entry that holds N records (a group-committed batch, say) takes N consecutive
numbers, and trimming or restarting never hands out a number twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

# The codec stores a width in 4 bytes.
MAX_WIDTH = 2**32 - 1


@dataclass(frozen=True, slots=True)
class LogEntry:
    payload: bytes
    width: int = 1  # how many sequence numbers it consumes (one per record it holds), >= 1

    def __post_init__(self) -> None:
        # A programming error, not bad client input: it must never reach the disk.
        if not 1 <= self.width <= MAX_WIDTH:
            raise ValueError(f"LogEntry.width must be in [1, {MAX_WIDTH}], got {self.width}")


@dataclass(frozen=True, slots=True)
class StoredEntry:
    seq: int  # first sequence number
    width: int
    payload: bytes

    @property
    def last_seq(self) -> int:
        return self.seq + self.width - 1


@dataclass(frozen=True, slots=True)
class WalStats:
    """Counters since the log was opened (not persisted)."""

    appends: int = 0  # append calls that wrote something
    entries: int = 0  # log entries written
    fsyncs: int = 0  # durable writes: one per append or trim, none when opened with sync=False
    bytes_appended: int = 0  # payload bytes of the entries written


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")


def check_index(index: Mapping[bytes, bytes | None] | None) -> None:
    """Refuse a malformed index before anything is written, so a bad batch changes nothing."""
    if not index:
        return
    # The common index holds only bytes: told by the types seen, at C speed, not per key.
    if set(map(type, index.keys())) == {bytes} and set(map(type, index.values())) <= {
            bytes, type(None)}:
        return
    for key, value in index.items():
        if not isinstance(key, bytes) or not (value is None or isinstance(value, bytes)):
            raise TypeError(f"index keys must be bytes and values bytes or None, got "
                            f"{type(key).__name__} -> {type(value).__name__}")


class WriteAheadLog(Protocol):
    def append(
        self, entries: Sequence[LogEntry], index: Mapping[bytes, bytes | None] | None = None
    ) -> int:
        """Write `entries` and the `index` side keys in ONE atomic, durable (synced, unless the
        log was opened with sync=False) write.

        Entry i gets sequence numbers [s_i, s_i + entries[i].width - 1], consecutive after
        last_seq(); returns the first sequence number of the first entry (last_seq()+1).
        An index value of None deletes that key. `entries` may be empty (index-only write;
        returns last_seq()+1 and does not advance last_seq).
        Raises StorageFull when the disk is full, and keeps raising it until reopened.
        """

    def read(self, after: int = 0, limit: int | None = None) -> Iterator[StoredEntry]:
        """Entries whose first seq > `after`, ascending.

        Not a snapshot: entries appended while iterating may appear, and entries trimmed while
        iterating may be skipped.
        """

    def read_reverse(
        self, before: int | None = None, limit: int | None = None
    ) -> Iterator[StoredEntry]:
        """Entries whose first seq < `before` (None: from the end), descending."""

    def entry_containing(self, seq: int) -> StoredEntry | None:
        """The entry whose seq range contains `seq`, if it is still in the log."""

    def trim(self, through: int) -> int:
        """Delete every entry whose LAST seq <= `through`; how many were deleted.

        Durable; an entry straddling `through` stays whole. last_seq() does not change.
        """

    def last_seq(self) -> int:
        """Highest sequence number ever assigned (0 for a new log); survives trim and restart."""

    def first_seq(self) -> int:
        """First seq of the oldest entry still present, or last_seq()+1 if the log is empty."""

    def index_get(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """One value (or None) per key, in order: a batched lookup."""

    def index_scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Index keys starting with `prefix` and their values, ascending by key."""

    def stats(self) -> WalStats: ...

    @property
    def degraded(self) -> str | None:
        """Why the log refuses writes (e.g. the disk filled up), or None while healthy."""

    def close(self) -> None:
        """Release the log; idempotent. Any other call afterwards raises WalUnavailable."""
