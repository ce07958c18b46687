"""The log's unflushed entries as Arrow, kept between queries.

Every query of a table with unflushed rows reads them (read-your-writes). Decoding an entry
and converting its records to the table's columns cost far more than the query's own work on
them once a write flood has left thousands of entries waiting for the flush, and the same
entries were converted for the query before. So each entry's rows are kept here, converted,
keyed by its first sequence number and the table's schema they were converted to (a schema
that changes makes them convert again), until the flush has taken them or the tail is full
(the least recently read go first).

An entry's rows are what converting all of a table's entries at once gives for it
(lakehouse/ingest/flush_rows.py `entries_table_sparing` converts entry by entry too when one
fails): the tail changes what a query costs, never what it answers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import pyarrow as pa

from lakehouse.ingest.keys import TableRef
from lakehouse.schema import FieldType

MAX_ROWS = 1_000_000  # rows kept at most (a flush takes them sooner as a rule)


@dataclass(frozen=True, slots=True)
class _Kept:
    ref: TableRef
    schema: FieldType
    rows: pa.Table


class ArrowTail:
    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self._max_rows = max_rows
        self._lock = threading.Lock()
        self._kept: OrderedDict[int, _Kept] = OrderedDict()
        self._rows = 0
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
            self._kept.move_to_end(first_seq)
            self.hits += 1
            return kept.rows

    def put(self, first_seq: int, ref: TableRef, schema: FieldType, rows: pa.Table) -> None:
        if rows.num_rows > self._max_rows:
            return
        with self._lock:
            old = self._kept.pop(first_seq, None)
            if old is not None:
                self._rows -= old.rows.num_rows
            self._kept[first_seq] = _Kept(ref, schema, rows)
            self._rows += rows.num_rows
            while self._rows > self._max_rows:
                _, gone = self._kept.popitem(last=False)
                self._rows -= gone.rows.num_rows

    def forget_through(self, seq: int) -> None:
        """Entries a flush has taken (first sequence number at or below `seq`, a watermark):
        no query pinned at that watermark or a later one reads them (one pinned before reads
        them from the log again)."""
        with self._lock:
            for first in [s for s in self._kept if s <= seq]:
                self._rows -= self._kept.pop(first).rows.num_rows

    @property
    def rows(self) -> int:
        return self._rows
