"""Reading RocksDB by key order for RocksWal.

rocksdict keeps the database (and its LOCK) open while any iterator lives, so every iterator
here lives only inside one plain function call, and `scan` hands out pairs a chunk at a time:
a consumer that stops half-way through a read must not stop close() from releasing the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from rocksdict import Rdict, RdictIter

from lakehouse.wal.codec import LOG_FIRST_KEY, decode_entry, is_log_key, seq_of
from lakehouse.wal.port import StoredEntry

# A read holds at most about this much in memory between yields.
CHUNK_ITEMS = 256
CHUNK_BYTES = 4 * 2**20

Pairs = list[tuple[bytes, bytes]]


def scan(
    reading: Callable[[], AbstractContextManager[Rdict]],
    start: bytes,
    *,
    forward: bool,
    accept: Callable[[bytes], bool],
    limit: int | None,
) -> Iterator[tuple[bytes, bytes]]:
    """Raw (key, value) pairs from `start` on while `accept(key)`, at most `limit` of them.

    Each chunk comes from a fresh iterator positioned just past the last key handed out, so
    keys deleted or added between chunks are simply skipped or included.
    """
    key, inclusive, remaining = start, True, limit
    while remaining is None or remaining > 0:
        want = CHUNK_ITEMS if remaining is None else min(CHUNK_ITEMS, remaining)
        with reading() as db:
            pairs, more = collect(db, key, inclusive=inclusive, forward=forward, accept=accept,
                                  want=want)
        yield from pairs
        if not more:
            return
        if remaining is not None:
            remaining -= len(pairs)
        key, inclusive = pairs[-1][0], False


def collect(db: Rdict, key: bytes, *, inclusive: bool, forward: bool,
            accept: Callable[[bytes], bool], want: int) -> tuple[Pairs, bool]:
    """Up to `want` accepted pairs from `key` on (about CHUNK_BYTES at most), and whether more
    accepted pairs follow."""
    it = db.iter()
    if forward:
        it.seek(key)
    else:
        it.seek_for_prev(key)
    if not inclusive and it.valid() and it.key() == key:
        _step(it, forward)
    pairs: Pairs = []
    size = 0
    while it.valid():
        found: bytes = it.key()
        if not accept(found):
            return pairs, False
        if len(pairs) >= want or size >= CHUNK_BYTES:
            return pairs, True
        value: bytes = it.value()
        pairs.append((found, value))
        size += len(found) + len(value)
        _step(it, forward)
    it.status()  # raises if the iteration stopped on an error rather than at the end
    return pairs, False


def entry_at_or_before(db: Rdict, key: bytes) -> StoredEntry | None:
    pairs, _ = collect(db, key, inclusive=True, forward=False, accept=is_log_key, want=1)
    return decode_entry(seq_of(pairs[0][0]), pairs[0][1]) if pairs else None


def first_log_seq(db: Rdict) -> int | None:
    it = db.iter()
    it.seek(LOG_FIRST_KEY)
    if it.valid() and is_log_key(it.key()):
        return seq_of(it.key())
    it.status()
    return None


def count_log_keys_before(db: Rdict, stop: bytes) -> int:
    """How many log entries have keys below `stop`; walks only those keys."""
    it = db.iter()
    it.seek(LOG_FIRST_KEY)
    count = 0
    while it.valid() and it.key() < stop:
        count += 1
        it.next()
    it.status()
    return count


def _step(it: RdictIter, forward: bool) -> None:
    if forward:
        it.next()
    else:
        it.prev()
