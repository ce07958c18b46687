"""Prefect tasks of the load flow: plan, one coarse task per part (a text file, or a run of a
Parquet file's row groups), commit.

The flow runs in the process that asked for the load, so the tasks find that process's Loader
(a catalog and a storage root: live handles, not parameters) by name in a registry. A part is
converted and written on a Dask worker when the flow has a scheduler address: the worker gets
the LoadSpec and the LoadPart (URIs, paths, names and types, never a live handle) and returns the
DataFiles it wrote. With no scheduler to be had the part runs here instead.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from prefect import Task, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRun

from lakehouse.cluster import Cluster
from lakehouse.errors import LakehouseError
from lakehouse.load.convert import LoadPart, LoadSpec, PartResult, load_part
from lakehouse.load.loader import Loader, LoadPlan, LoadRequest, LoadResult

log = logging.getLogger(__name__)

_LOADERS: dict[str, Loader] = {}
# Parts converted in this process at once: each holds a chunk in memory, and pyarrow already
# spreads one part's decoding over the cores.
_local_slots = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


def register_loader(name: str, loader: Loader) -> None:
    _LOADERS[name] = loader


def registered_loader(name: str) -> Loader:
    return _LOADERS[name]


@task(name="plan-load", task_run_name="plan {tenant}/{table}", cache_policy=NO_CACHE)
def plan_load(loader_name: str, request: LoadRequest, tenant: str, table: str) -> LoadPlan:
    plan = registered_loader(loader_name).plan(request)
    get_run_logger().info("loading %d source files into %s/%s in %d parts",
                          plan.source_files, tenant, table, len(plan.parts))
    return plan


def _retryable(_task: Task[..., Any], _run: TaskRun, state: State) -> bool:
    """A bad source stays bad; only what may pass (I/O, a lost worker) is tried again."""
    try:
        state.result()
    except LakehouseError as exc:
        return exc.retryable
    except Exception:
        return True
    return False


@task(name="load-part", task_run_name="load {tenant}/{table} part {index}",
      cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1, retry_condition_fn=_retryable)
def load_part_task(spec: LoadSpec, part: LoadPart, *, dask_address: str, tenant: str,
                   table: str, index: int) -> PartResult:
    """Convert and write one part, on the cluster or here; a retry writes the same file names
    again."""
    return Cluster(dask_address).run(load_part_here, spec, part,
                                     name=f"load-{spec.load_id}-{index:05d}")


def load_part_here(spec: LoadSpec, part: LoadPart) -> PartResult:
    """One part, with at most one part per core at once in this process."""
    with _local_slots:
        return load_part(spec, part)


@task(name="commit-load", task_run_name="commit {tenant}/{table}", cache_policy=NO_CACHE)
def commit_load(loader_name: str, plan: LoadPlan, results: list[PartResult], tenant: str,
                table: str) -> LoadResult:
    result = registered_loader(loader_name).commit(plan, results)
    get_run_logger().info("committed snapshot %d: %d rows in %d files into %s/%s",
                          result.snapshot, result.rows, result.files, tenant, table)
    return result
