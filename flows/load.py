"""The load flow: Parquet, CSV or NDJSON files become one snapshot of a tenant's table.

It runs in the process that asked for it (the Tenant Node, or `lakehouse load`), as the ingest
flow does. `start_load` creates the Prefect flow run first, so its id is known before any work
starts (an HTTP request answers it at once), then runs the flow on that run in a thread and
hands back a `LoadWatch`: it says when the plan is done (or why it failed: a bad source is a 4xx
for the request that started it), how many parts are done, and the result.

Progress is reported three ways: each part is a task run (GET /runs counts finished task runs),
a Prefect progress artifact of the run ("3/8 parts" in the UI), and the watch in this process.
If the Prefect API cannot be reached the same steps run without it under a `local-…` id.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.flow_engine import run_flow
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.states import Pending
from prefect.task_runners import ThreadPoolTaskRunner

from flows.progress import RunProgress
from flows.run_results import remember, tenant_tag
from lakehouse.load.loader import LoadRequest, run_parts
from tasks.load import commit_load, load_part_task, plan_load, registered_loader

log = logging.getLogger(__name__)

# Part tasks in flight at once. Locally tasks/load.py bounds the conversions to the cores; on
# Dask a task only waits for its worker, so more may wait at once.
PART_TASKS = 16
MAX_WATCHES = 1000


@dataclass
class LoadWatch:
    """One load as this process sees it: planned, parts done, finished."""

    run_id: str
    total: int | None = None  # parts, once planned
    done: int = 0
    result: dict[str, Any] | None = None
    error: BaseException | None = None
    finished: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def planned(self, total: int) -> None:
        with self._changed:
            self.total = total
            self._changed.notify_all()

    def step(self, done: int) -> None:
        with self._changed:
            self.done = done
            self._changed.notify_all()

    def finish(self, result: dict[str, Any] | None, error: BaseException | None = None) -> None:
        with self._changed:
            self.result, self.error, self.finished = result, error, True
            self._changed.notify_all()

    def wait_planned(self, timeout_s: float | None = None) -> bool:
        """True once the plan is done or the load is over (then `error` may say why)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.total is not None or self.finished,
                                          timeout_s)

    def wait(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The result once the load is over; its error raised if it failed."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.finished, timeout_s):
                raise TimeoutError(f"the load {self.run_id} is still running")
        if self.error is not None:
            raise self.error
        return self.result or {}


_watches: OrderedDict[str, LoadWatch] = OrderedDict()
_watches_lock = threading.Lock()


def watch(run_id: str) -> LoadWatch:
    """The watch of a run of this process (made on first use: a flow called directly has one
    too, so its progress can be asked for)."""
    with _watches_lock:
        found = _watches.get(run_id)
        if found is None:
            found = _watches[run_id] = LoadWatch(run_id)
            while len(_watches) > MAX_WATCHES:
                _watches.popitem(last=False)
        return found


def progress(run_id: str) -> tuple[int, int | None] | None:
    """(parts done, parts in all) of a load this process runs or ran; None if unknown."""
    with _watches_lock:
        found = _watches.get(run_id)
    return None if found is None else (found.done, found.total)


# (The ignore: Prefect's annotations cannot infer a fresh runner's future type.)
@flow(name="load", flow_run_name="load {tenant}/{table} from {source}", log_prints=False,
      task_runner=ThreadPoolTaskRunner(max_workers=PART_TASKS),  # type: ignore[arg-type]
      description="Bulk-load Parquet, CSV or NDJSON files into a table as one snapshot.")
def load(tenant: str, table: str, source: str, *, format: str | None = None,
         data_id_column: str | None = None, timestamp_column: str | None = None,
         loader: str = "default", dask_address: str = "") -> dict[str, Any]:
    run_id = str(flow_run.id)
    mine = watch(run_id)
    request = LoadRequest(tenant, table, source, format, data_id_column, timestamp_column)
    plan = plan_load(loader, request, tenant, table)
    total = len(plan.parts)
    mine.planned(total)
    progress = RunProgress.start(total, "parts loaded")
    futures = [load_part_task.submit(plan.spec, part, dask_address=dask_address, tenant=tenant,
                                     table=table, index=part.index) for part in plan.parts]
    for done, _ in enumerate(as_completed(futures), start=1):
        mine.step(done)
        progress.report(done)
    results = [future.result() for future in futures]  # the first failure fails the load
    committed = commit_load(loader, plan, results, tenant, table)
    summary = {"run_id": run_id, "flow": "load", "source": source, **committed.to_dict()}
    remember(run_id, summary)
    return summary


def start_load(request: LoadRequest, loader_name: str, dask_address: str = "") -> LoadWatch:
    """Start a load in a thread of this process and return its watch at once, its run id
    known: the Prefect flow run is created before the flow starts on it."""
    parameters: dict[str, Any] = {
        "tenant": request.tenant, "table": request.table, "source": request.source,
        "format": request.format, "data_id_column": request.data_id_column,
        "timestamp_column": request.timestamp_column, "loader": loader_name,
        "dask_address": dask_address}
    run: FlowRun | None = None
    try:
        with get_client(sync_client=True) as client:
            run = client.create_flow_run(
                load, name=f"load {request.tenant}/{request.table} from {request.source}",
                parameters=load.serialize_parameters(parameters),
                tags=[tenant_tag(request.tenant)], state=Pending())
    except Exception as exc:  # Prefect unreachable: load all the same, without it
        log.warning("the Prefect API cannot be reached; loading without it",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
    mine = watch(str(run.id) if run is not None else f"local-{uuid.uuid4().hex[:12]}")
    context = contextvars.copy_context()  # Prefect's settings (its API URL) go along
    threading.Thread(target=context.run, args=(_run, mine, run, parameters, request),
                     name=f"load-{mine.run_id[:13]}", daemon=True).start()
    return mine


def _run(mine: LoadWatch, run: FlowRun | None, parameters: dict[str, Any],
         request: LoadRequest) -> None:
    try:
        if run is not None:
            result: Any = run_flow(load, flow_run=run, parameters=parameters)
        else:
            result = _run_locally(mine, parameters["loader"], request)
        mine.finish(result)
    except BaseException as exc:  # the watch hands it to whoever waits
        if run is None:  # no Prefect run holds the error: this process tells it
            log.exception("the load failed", extra={"run_id": mine.run_id})
            remember(mine.run_id, {"run_id": mine.run_id, "flow": "load", "state": "FAILED",
                                   "error": f"{type(exc).__name__}: {exc}"[:500]})
        mine.finish(None, exc)


def _run_locally(mine: LoadWatch, loader_name: str, request: LoadRequest) -> dict[str, Any]:
    found = registered_loader(loader_name)
    plan = found.plan(request)
    mine.planned(len(plan.parts))
    results = run_parts(plan, progress=lambda done, _total: mine.step(done))
    summary = {"run_id": mine.run_id, "flow": "load", "source": request.source, "state":
               "COMPLETED", **found.commit(plan, results).to_dict()}
    remember(mine.run_id, summary)
    return summary
