"""Read-your-writes for queries: a table's rows still in the write-ahead log, as Arrow, and the
snapshot they complete.

A query pins a snapshot N and reads the log's entries above N's watermark (the highest sequence
number flushed at N): together they hold every acknowledged row once. Each entry's rows are
converted once and kept for the next query (lakehouse/ingest/tail.py). The pin reads the
snapshot and the watermark in one read of the catalog (a flush commits both at once), so no
commit can fall between them. The log is trimmed only after a flush commits, so entries above the
watermark of the newest snapshot are still there when read.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from lakehouse.catalog.lake import Catalog
from lakehouse.ingest.batch import RecordBatch
from lakehouse.ingest.flush import WAL_WRITER
from lakehouse.ingest.flush_rows import entries_table_sparing
from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.service import IngestService
from lakehouse.ingest.tail import Run

# Entries read one by one past which a query merges them into its table's run: below it,
# concatenating costs less than copying the run.
MERGE_AFTER = 8


@dataclass(frozen=True, slots=True)
class Pin:
    snapshot: int
    # The log's rows above this sequence complete the snapshot. None: the query was pinned to
    # a snapshot by its caller and reads exactly that, no rows from the log (they belong to
    # no snapshot, and an older snapshot's watermark would let rows flushed since in twice).
    watermark: int | None


def pin(catalog: Catalog) -> Pin:
    snapshot, watermark = catalog.pin_point(WAL_WRITER)
    return Pin(snapshot, watermark)


class UnflushedRows:
    """The rows of one table above a watermark, in the layout of its data files."""

    def __init__(self, service: IngestService, watermark: int) -> None:
        self._service = service
        self._watermark = watermark

    def __call__(self, tenant: str, table: str) -> pa.Table | None:
        ref = TableRef(tenant, table)
        tail = self._service.tail
        tail.forget_through(self._watermark)
        wanted = self._service.unflushed_entries_after(ref, self._watermark)
        if not wanted:
            return None
        schema = self._service.table_schema(ref)
        if schema is None:
            return None
        parts: list[pa.Table] = []
        included: list[int] = []
        starts: list[int] = []
        rows = 0
        run = tail.run(ref, schema)
        merged = run.from_entries(wanted) if run is not None else None
        if merged is not None:
            parts.append(merged.rows)
            included += merged.firsts
            starts += merged.starts
            rows = merged.rows.num_rows
            wanted = wanted[len(merged.firsts):]
        for first in wanted:
            kept = tail.get(first, ref, schema)
            if kept is None:
                entry = self._service.wal.entry_containing(first)
                if entry is None or entry.seq <= self._watermark:
                    continue  # flushed (and maybe trimmed) at or before the pinned snapshot
                batch = RecordBatch.decode(entry.payload)
                if batch.tenant != tenant or batch.table != table:
                    continue
                # A record the table's types can no longer take is left out: the next flush
                # keeps it in the tenant's _rejects table (see entries_table_sparing).
                kept, _refused = entries_table_sparing([(entry.seq, batch)], schema)
                tail.put(first, ref, schema, kept)
            parts.append(kept)
            included.append(first)
            starts.append(rows)
            rows += kept.num_rows
        if not parts:
            return None
        if len(parts) - (merged is not None) < MERGE_AFTER:
            return pa.concat_tables(parts) if len(parts) > 1 else parts[0]
        # Enough entries came since the run was merged: merge them in, so this query and the
        # next ones read few chunks (lakehouse/ingest/tail.py).
        together = pa.concat_tables(parts).combine_chunks()
        tail.put_run(ref, Run(schema, tuple(included), tuple(starts), together,
                              together.get_total_buffer_size()))
        return together
