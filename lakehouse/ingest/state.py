"""Per-table state of the write path: counters and where the unflushed records sit in the log.

Only numbers live here (arrays, not objects): the records themselves stay in the WAL, so memory
does not grow with the backlog.
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass, field
from typing import Any

import orjson

from lakehouse.ingest.keys import TableRef
from lakehouse.schema import FieldType


@dataclass
class TableState:
    ref: TableRef
    # The write path's cache of the table's schema; filled by `lakehouse.ingest.schemas`.
    schema: FieldType | None = None
    schema_loaded: bool = False
    records: int = 0  # live records (an upsert replaces, it does not add)
    size_bytes: int = 0  # bytes of the encoded entries written for this table
    duplicates: int = 0
    rejected: int = 0
    # One element per unflushed WAL entry, in sequence order.
    entry_seqs: array[int] = field(default_factory=lambda: array("q"))
    entry_widths: array[int] = field(default_factory=lambda: array("q"))
    entry_bytes: array[int] = field(default_factory=lambda: array("q"))
    entry_times_us: array[int] = field(default_factory=lambda: array("q"))
    # Running totals of the arrays above: admission asks for them on every write.
    unflushed_records: int = 0
    unflushed_bytes: int = 0

    def add_entry(self, first_seq: int, width: int, size: int, received_us: int) -> None:
        if self.entry_seqs and first_seq <= self.entry_seqs[-1]:
            # Out of order only on recovery replays of an entry already known: ignore it.
            return
        self.entry_seqs.append(first_seq)
        self.entry_widths.append(width)
        self.entry_bytes.append(size)
        self.entry_times_us.append(received_us)
        self.unflushed_records += width
        self.unflushed_bytes += size

    def drop_through(self, seq: int) -> None:
        """Forget entries whose records are all at or below `seq` (they were flushed)."""
        cut = 0
        while cut < len(self.entry_seqs) and (
                self.entry_seqs[cut] + self.entry_widths[cut] - 1 <= seq):
            cut += 1
        self.unflushed_records -= sum(self.entry_widths[:cut])
        self.unflushed_bytes -= sum(self.entry_bytes[:cut])
        for arr in (self.entry_seqs, self.entry_widths, self.entry_bytes, self.entry_times_us):
            del arr[:cut]

    def oldest_unflushed_us(self) -> int | None:
        return self.entry_times_us[0] if self.entry_times_us else None

    def entries_before(self, seq: int | None) -> list[int]:
        """First sequence numbers of unflushed entries holding records below `seq`, newest first."""
        end = len(self.entry_seqs) if seq is None else bisect.bisect_left(self.entry_seqs, seq)
        # Sliced and listed by the array itself: every query asks, and under a write flood
        # the log holds tens of thousands of entries (a loop in Python took milliseconds).
        return self.entry_seqs[end - 1::-1].tolist() if end else []

    def entries_after(self, seq: int) -> list[int]:
        """First sequence numbers of unflushed entries above `seq`, oldest first (an entry is
        flushed whole, so one whose first record is above `seq` has none at or below it)."""
        return self.entry_seqs[bisect.bisect_right(self.entry_seqs, seq):].tolist()

    def counters(self) -> bytes:
        return orjson.dumps({"records": self.records, "bytes": self.size_bytes,
                             "duplicates": self.duplicates, "rejected": self.rejected})

    def load_counters(self, data: bytes) -> None:
        values: dict[str, Any] = orjson.loads(data)
        self.records = int(values.get("records", 0))
        self.size_bytes = int(values.get("bytes", 0))
        self.duplicates = int(values.get("duplicates", 0))
        self.rejected = int(values.get("rejected", 0))


def table_state(tables: dict[TableRef, TableState], ref: TableRef) -> TableState:
    """The state of `ref` in `tables`, begun empty the first time the table is seen."""
    state = tables.get(ref)
    if state is None:
        state = tables[ref] = TableState(ref)
    return state
