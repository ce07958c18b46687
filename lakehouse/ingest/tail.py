"""The log's unflushed entries as Arrow, kept between queries.

Every query of a table with unflushed rows reads them (read-your-writes). Decoding an entry
and converting its records to the table's columns cost far more than the query's own work on
them once a write flood has left thousands of entries waiting for the flush, and the same
entries were converted for the query before. So each entry's rows are kept here, converted,
keyed by its first sequence number and the table's schema they were converted to (a schema
that changes makes them convert again), until the flush has taken them.

Bounded by bytes (QUERY_UNFLUSHED_TAIL_MB): once full, newer entries are not kept, while the
older ones stay. Queries read a table's entries oldest first and the flush takes the oldest
first, so evicting the least recently read would throw out, entry by entry, what the same
query reads next, and the tail would never be read at all once the backlog outgrew it.

An entry's rows are what converting all of a table's entries at once gives for it
(lakehouse/ingest/flush_rows.py `entries_table_sparing` converts entry by entry too when one
fails): the tail changes what a query costs, never what it answers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pyarrow as pa

from lakehouse.ingest.keys import TableRef
from lakehouse.schema import FieldType

MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Kept:
    ref: TableRef
    schema: FieldType
    rows: pa.Table
    size: int


class ArrowTail:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._kept: dict[int, _Kept] = {}
        self._bytes = 0
        self._lowest: int | None = None  # the smallest first sequence number kept
        self.hits = 0
        self.misses = 0

    def get(self, first_seq: int, ref: TableRef, schema: FieldType) -> pa.Table | None:
        """The entry's rows, if kept for this table and schema."""
        with self._lock:
            kept = self._kept.get(first_seq)
            if kept is None or kept.ref != ref or (kept.schema is not schema
                                                   and kept.schema != schema):
                self.misses += 1
                return None
            self.hits += 1
            return kept.rows

    def put(self, first_seq: int, ref: TableRef, schema: FieldType, rows: pa.Table) -> None:
        size = rows.nbytes
        with self._lock:
            old = self._kept.pop(first_seq, None)
            if old is not None:
                self._bytes -= old.size
            if self._bytes + size > self._max_bytes:
                return  # full: the older entries stay
            self._kept[first_seq] = _Kept(ref, schema, rows, size)
            self._bytes += size
            self._lowest = first_seq if self._lowest is None else min(self._lowest, first_seq)

    def forget_through(self, seq: int, ref: TableRef | None = None) -> None:
        """Entries flushed: those of `ref` (None: of every table) whose first sequence number
        is at or below `seq`. No query pinned at that watermark or a later one reads them (one
        pinned before reads them from the log again)."""
        with self._lock:
            if self._lowest is None or seq < self._lowest:
                return  # nothing that old is kept: the usual case, at no cost
            for first in [s for s, k in self._kept.items()
                          if s <= seq and (ref is None or k.ref == ref)]:
                self._bytes -= self._kept.pop(first).size
            self._lowest = min(self._kept, default=None)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def entries(self) -> int:
        return len(self._kept)
