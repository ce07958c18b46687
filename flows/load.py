"""The load flow: Parquet, CSV or NDJSON files become one snapshot of a tenant's table.

It runs in the process that asked for it (the Tenant Node, or `lakehouse load`), as the ingest
flow does. Its steps (tasks/load.py) are declared once as a Job; `start_load` hands it to the
run shell (flows/runs.py), which creates the named run first (an HTTP request answers its id at
once), runs it in a thread and gives back the run's watch: it says when the plan is done (or why
it failed: a bad source is a 4xx for the request that started it), how many parts are done, and
the result. Progress is reported three ways: each part is a task run (GET /runs counts finished
task runs), a Prefect progress artifact ("3/8 parts loaded" in the UI), and the watch.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.run_results import tenant_tag
from flows.runs import Job, RunWatch, StepNames, filed, run_steps, start
from lakehouse.load.loader import Loader, LoadRequest
from tasks.load import commit_load, load_part_on, plan_load, retryable

# Part tasks in flight at once. Here load_part_here (lakehouse/load) bounds the conversions to
# the cores; on Dask a task only waits for its worker, so more may wait at once.
PART_TASKS = 16


def load_job(loader: Loader, request: LoadRequest, dask_address: str = "",
             ) -> Job[Any, Any, Any]:
    where = f"{request.tenant}/{request.table}"
    return Job(
        kind="load", names=StepNames("plan-load", "load-part", "commit-load",
                                     plan_run=f"plan {where}", finish_run=f"commit {where}"),
        plan=partial(plan_load, loader, request),
        parts=lambda plan: [(plan.spec, part) for part in plan.parts],
        run_part=lambda pair: load_part_on(dask_address, *pair),
        finish=lambda plan, results: commit_load(loader, plan, results),
        part_label=lambda pair: f"load {where} part {pair[1].index}",
        counted="parts loaded", parallel=PART_TASKS, retries=2, retry_if=retryable)


# (The ignore: Prefect's annotations cannot infer a fresh runner's future type.)
@flow(name="load", flow_run_name="load {tenant}/{table} from {source}", log_prints=False,
      task_runner=ThreadPoolTaskRunner(max_workers=PART_TASKS),  # type: ignore[arg-type]
      description="Bulk-load Parquet, CSV or NDJSON files into a table as one snapshot.")
def load(job: str, tenant: str, table: str, source: str) -> dict[str, Any]:
    found = filed(job)
    if found is None:
        raise LookupError(f"no load {job!r} in this process: the process that asked runs it")
    return run_steps(found)


def start_load(request: LoadRequest, loader: Loader, dask_address: str = "") -> RunWatch:
    """Start a load in a thread of this process; its watch at once, its run id known."""
    return start(load_job(loader, request, dask_address), load,
                 name=f"load {request.tenant}/{request.table} from {request.source}",
                 parameters={"tenant": request.tenant, "table": request.table,
                             "source": request.source}, tags=[tenant_tag(request.tenant)])
