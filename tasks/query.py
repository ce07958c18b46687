"""Prefect tasks of the query flow: plan, stage (scans and fragments), merge.

The flow runs in the process that took the query; the tasks find its QueryService by name and
the query by id (live objects: an engine, Arrow tables, Dask futures are not parameters).
The tasks are async so the flow is (see flows/query.py); their work runs in a thread, off the
flow's event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lakehouse.executor.queries import QueryRun
from lakehouse.executor.run import Execution, Staged


class Service(Protocol):
    def plan_run(self, run: QueryRun) -> Execution:
        """Plan once; later calls for the same run give the same execution."""

    def finish_run(self, run: QueryRun, execution: Execution, staged: Staged) -> None: ...


_SERVICES: dict[str, Any] = {}


def register_service(name: str, service: Service) -> None:
    _SERVICES[name] = service


def _service(name: str) -> Service:
    found: Service = _SERVICES[name]
    return found


@task(name="plan-query", task_run_name="plan", cache_policy=NO_CACHE)
async def plan_task(service: str, run: QueryRun) -> dict[str, Any]:
    execution = await asyncio.to_thread(_service(service).plan_run, run)
    dist = execution.plan.distribution
    get_run_logger().info("%s plan, %d relations: %s", dist.strategy.value,
                          len(execution.plan.scans), dist.reason)
    return execution.plan.to_json()


@task(name="query-stage", task_run_name="{label}", cache_policy=NO_CACHE)
async def stage_task(service: str, run: QueryRun, label: str) -> Staged:
    execution = await asyncio.to_thread(_service(service).plan_run, run)
    staged = await asyncio.to_thread(lambda: execution.stage(execution.prepare()))
    get_run_logger().info("%d fragments done, %d bytes scanned", run.progress.fragments_done,
                          run.progress.bytes_scanned)
    return staged


@task(name="query-merge", task_run_name="merge", cache_policy=NO_CACHE)
async def merge_task(service: str, run: QueryRun, staged: Staged) -> int:
    found = _service(service)
    await asyncio.to_thread(lambda: found.finish_run(run, found.plan_run(run), staged))
    rows = run.result.num_rows if run.result is not None else 0
    get_run_logger().info("%d rows in %.3f s", rows, run.elapsed_s)
    return rows

