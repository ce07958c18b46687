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

A table's entries are also kept merged, as one run of consecutive entries in one chunk per
column (`Run`). A write of twenty records is an entry of twenty rows, and a table of thousands
of such chunks costs a query thirty times what the same rows in one chunk do (every kernel,
every cast and every free is per chunk, mostly with the interpreter lock held: under a write
flood, queries spent most of their time freeing chunks). A query takes the run's entries that
are still unflushed as a slice and merges what came since into the next run.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace

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


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive entries of one table, merged: `rows[starts[i]:]` begins entry `firsts[i]`."""

    schema: FieldType
    firsts: tuple[int, ...]
    starts: tuple[int, ...]
    rows: pa.Table
    size: int  # the bytes its buffers hold (a slice holds all of them)

    def from_entries(self, wanted: list[int]) -> Run | None:
        """The part of the run that holds `wanted`'s first entries: None unless the run's
        entries from `wanted[0]` on are exactly `wanted`'s first ones (in order; anything else
        — an entry flushed, one the run lacks — is merged again)."""
        part = self.after(wanted[0] - 1) if wanted else None
        if part is None or tuple(wanted[:len(part.firsts)]) != part.firsts:
            return None
        return part

    def after(self, seq: int) -> Run | None:
        """The run without its entries at or below `seq`; None when none is left."""
        k = bisect_right(self.firsts, seq)
        if k == 0:
            return self
        if k == len(self.firsts):
            return None
        offset = self.starts[k]
        return replace(self, firsts=self.firsts[k:],
                       starts=tuple(s - offset for s in self.starts[k:]),
                       rows=self.rows.slice(offset))


def _holds(firsts: tuple[int, ...], first: int) -> bool:
    at = bisect_left(firsts, first)
    return at < len(firsts) and firsts[at] == first


class ArrowTail:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._kept: dict[int, _Kept] = {}
        self._runs: dict[TableRef, Run] = {}
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

    def run(self, ref: TableRef, schema: FieldType) -> Run | None:
        """The table's merged run, if it was merged at this schema."""
        with self._lock:
            run = self._runs.get(ref)
        if run is None or (run.schema is not schema and run.schema != schema):
            return None
        return run

    def put_run(self, ref: TableRef, run: Run) -> None:
        """Keep `run` as the table's, in place of its entries kept one by one and its earlier
        run (whose rows it holds), if it fits."""
        with self._lock:
            # Usually the entries kept one by one are few (a query merges them past a
            # handful) and the run holds tens of thousands: whichever is fewer is walked.
            if len(self._kept) <= len(run.firsts):
                freed = [first for first, kept in self._kept.items()
                         if kept.ref == ref and _holds(run.firsts, first)]
            else:
                freed = [first for first in run.firsts
                         if (kept := self._kept.get(first)) is not None and kept.ref == ref]
            old = self._runs.get(ref)
            room = self._max_bytes - self._bytes + (old.size if old is not None else 0) + sum(
                self._kept[first].size for first in freed)
            if run.size > room:
                return  # full: what is kept stays
            for first in freed:
                self._bytes -= self._kept.pop(first).size
            if old is not None:
                self._bytes -= old.size
            self._runs[ref] = run
            self._bytes += run.size
            self._lowest = min(self._lowest if self._lowest is not None else run.firsts[0],
                               run.firsts[0])

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
            for table in [r for r in self._runs if ref is None or r == ref]:
                run = self._runs[table]
                left = run.after(seq)
                if left is None:
                    self._bytes -= run.size
                    del self._runs[table]
                else:
                    self._runs[table] = left
            self._lowest = min([*self._kept, *(r.firsts[0] for r in self._runs.values())],
                               default=None)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def entries(self) -> int:
        """Entries kept, merged or one by one (read at each metrics scrape, while queries and
        flushes change the runs: under the lock)."""
        with self._lock:
            return len(self._kept) + sum(len(r.firsts) for r in self._runs.values())
