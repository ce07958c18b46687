"""Prefect tasks of the ingest flow: plan, one coarse task per table, commit, trim.

The flow runs inside the process that owns the WAL, so the tasks find that process's Flusher by
name in a registry instead of receiving it as a (non-serialisable) parameter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lakehouse.catalog.lake import DataFile
from lakehouse.cluster import Cluster
from lakehouse.faults import crash_point
from lakehouse.ingest.flush import Flusher, FlushPlan, TableFlush, WritePartitions, write_locally
from lakehouse.ingest.keys import TableRef
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.parquet_files import write_file

log = logging.getLogger(__name__)

_FLUSHERS: dict[str, tuple[Flusher, WritePartitions]] = {}


def register_flusher(name: str, flusher: Flusher, write: WritePartitions = write_locally) -> None:
    _FLUSHERS[name] = (flusher, write)


def flusher(name: str) -> Flusher:
    return _FLUSHERS[name][0]


def dask_writer(address: str) -> WritePartitions:
    """Writes the files of a table on the Dask workers (see lakehouse/cluster.py): they get the
    storage URI, the path and the rows, never a live handle, so any worker on any host can do
    it; with no cluster to be had, or one failing on the way, the same files are written here."""
    cluster = Cluster(address)

    def write(root: StorageRoot, files: Sequence[tuple[str, pa.Table]]) -> list[int]:
        return cluster.run_all(_write_remote, [(root.uri, path, rows) for path, rows in files],
                               name="flush")

    return write


def _write_remote(root_uri: str, path: str, rows: pa.Table) -> int:
    return write_file(StorageRoot.parse(root_uri), path, rows)


@task(name="plan-flush", cache_policy=NO_CACHE)
def plan_flush(name: str) -> FlushPlan | None:
    plan = flusher(name).plan()
    logger = get_run_logger()
    if plan is None:
        logger.info("nothing to flush")
    else:
        logger.info("flushing %d rows of %d tables through seq %d", plan.rows,
                    len(plan.tables), plan.through)
    return plan


@task(name="flush-table", task_run_name="flush {tenant}/{table}", cache_policy=NO_CACHE,
      retries=2, retry_delay_seconds=1)
def flush_table(name: str, work: TableFlush, tenant: str, table: str) -> tuple[DataFile, ...]:
    found, write = _FLUSHERS[name]
    files = found.write_table(work, write)
    get_run_logger().info("%s/%s: %d rows in %d files", tenant, table, work.rows, len(files))
    return files


@task(name="commit-flush", cache_policy=NO_CACHE)
def commit_flush(name: str, plan: FlushPlan, files: dict[TableRef, tuple[DataFile, ...]]) -> int:
    found = flusher(name)
    crash_point("flush:after_write")
    snapshot = found.commit(plan, files)
    crash_point("flush:after_commit")
    found.finish(plan)
    get_run_logger().info("committed snapshot %d; log trimmed through seq %d", snapshot,
                          plan.through)
    return snapshot
