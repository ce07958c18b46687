"""The steps of a flush: plan, write one table's files (on the Dask workers when asked), commit
and trim the log. flows/ingest.py declares them as the ingest job; the run shell runs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lakehouse.catalog.lake import DataFile
from lakehouse.cluster import Cluster
from lakehouse.faults import crash_point
from lakehouse.ingest.flush import Flusher, FlushPlan, TableFlush, WritePartitions, summarize
from lakehouse.ingest.keys import TableRef
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.parquet_files import write_file
from tasks.logs import step_log


def dask_writer(address: str) -> WritePartitions:
    """Writes the files of a table on the Dask workers (see lakehouse/cluster.py): they get the
    storage URI, the path and the rows, never a live handle, so any worker on any host can do
    it; with no cluster to be had, or one failing on the way, the same files are written here."""

    def write(root: StorageRoot, files: Sequence[tuple[str, pa.Table]]) -> list[int]:
        return Cluster(address, root.uri).run_all(
            _write_remote, [(root.uri, path, shipped(rows)) for path, rows in files],
            name="flush")

    return write


def shipped(rows: pa.Table) -> pa.Table:
    """The rows as they travel to a worker: one chunk a column. The unflushed rows come as many
    small chunks (a write's entries), and pickling each chunk is Python holding the interpreter
    lock: 33,000 rows in 1,650 chunks took 30 to 90 ms to pickle, a loop stall of hundreds of ms
    under load; combined (in Arrow, without the lock), 0.6 ms."""
    return rows.combine_chunks()


def _write_remote(root_uri: str, path: str, rows: pa.Table) -> int:
    return write_file(StorageRoot.parse(root_uri), path, rows)


def plan_flush(flusher: Flusher) -> FlushPlan | None:
    plan = flusher.plan()
    if plan is None:
        step_log().info("nothing to flush")
    else:
        step_log().info("flushing %d rows of %d tables through seq %d", plan.rows,
                        len(plan.tables), plan.through)
    return plan


def write_table(flusher: Flusher, write: WritePartitions,
                work: TableFlush) -> tuple[TableRef, tuple[DataFile, ...]]:
    files = flusher.write_table(work, write)
    step_log().info("%s/%s: %d rows in %d files", work.ref.tenant, work.ref.table, work.rows,
                    len(files))
    return work.ref, files


def commit_flush(flusher: Flusher, plan: FlushPlan,
                 written: list[tuple[TableRef, tuple[DataFile, ...]]]) -> dict[str, Any]:
    """One snapshot of every table's files and the watermark, then the log trimmed; the
    flush's summary."""
    files = dict(written)
    crash_point("flush:after_write")
    snapshot = flusher.commit(plan, files)
    crash_point("flush:after_commit")
    flusher.trim_log(plan)
    step_log().info("committed snapshot %d; log trimmed through seq %d", snapshot,
                    plan.through)
    result = summarize(plan, files, snapshot)
    return {"snapshot": result.snapshot, "rows": result.rows, "files": result.files,
            "bytes": result.bytes, "through_seq": result.through,
            "tables": list(result.tables),
            "by_table": [{"table": table, "rows": rows, "files": count, "bytes": size}
                         for table, rows, count, size in result.by_table]}
