"""Start-up: the write path's per-table state, rebuilt from the log alone.

The counters come from their index keys, which every write persists atomically with its records;
the unflushed entries come from the log itself. Nothing else is read, so the write path starts
(and acknowledges) even while the catalog is down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lakehouse.ingest.batch import RecordBatch
from lakehouse.ingest.entries import copy_counts
from lakehouse.ingest.keys import STATS_PREFIX, TableRef, table_from_key
from lakehouse.ingest.state import TableState, table_state
from lakehouse.wal.port import WriteAheadLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recovered:
    tables: dict[TableRef, TableState]  # counters and where the unflushed records sit
    # The counters as persisted: what the next write moves and persists with its records.
    durable_counts: dict[TableRef, TableState]


def recover(wal: WriteAheadLog) -> Recovered:
    """Per-table state: counters from their keys, unflushed entries from the log."""
    tables: dict[TableRef, TableState] = {}
    for key, value in wal.index_scan(STATS_PREFIX):
        table_state(tables, table_from_key(key)).load_counters(value)
    for entry in wal.read():
        batch = RecordBatch.decode(entry.payload)
        table_state(tables, TableRef(batch.tenant, batch.table)).add_entry(
            entry.seq, entry.width, len(entry.payload), batch.received_us)
    durable_counts = {ref: copy_counts(state) for ref, state in tables.items()}
    log.info("ingest state recovered", extra={"tables": len(tables), "last_seq": wal.last_seq()})
    return Recovered(tables, durable_counts)
