"""The run shell: every run of the platform (a flush, a load, a compaction, a tracked query) is
started, run, watched and ended here, and nowhere else.

A job declares its steps once (`Job`: plan, the parts, one part, finish). `run_steps` runs them
as Prefect tasks inside a flow run (a task per step and per part: the Prefect UI shows each, and
a progress artifact counts the parts), or as a plain loop with the same retries outside one.
`start` creates the named flow run first, so its id is known before any work starts (a request
answers it at once), then runs the flow on it in a thread of this process and hands back a
`RunWatch`: planned, parts done, the result or the error.

When the Prefect API cannot be reached, one policy per kind of run:

| run        | Prefect unreachable            | why                                            |
|------------|--------------------------------|------------------------------------------------|
| ingest     | runs here, id `local-…`        | acknowledged records must reach Parquet; the   |
|            |                                | log must not grow because the orchestrator is  |
|            |                                | down                                           |
| load       | runs here, id `local-…`        | the user asked and waits; the data matter more |
|            |                                | than the run's record                          |
| query      | runs here, untracked           | an answer matters more than its record         |
| compaction | refused: 503 prefect_unavailable | it changes no answer and can wait: the       |
|            |                                | schedule runs it again, and a rewrite nobody   |
|            |                                | can follow or list is worse than a late one    |
| mirror     | runs here, id `local-…`        | a table marked for serving must reach its      |
|            |                                | mirror; the keeper copies the rest anyway      |

Live objects (a flusher, a loader, a query service) reach a flow run through the one registry
here: `start` files the job under a key the flow gets as its `job` parameter, and takes it back
when the run ends. A flow run that finds no job (a scheduled deployment's run, in a Prefect
worker's process) builds its job from the settings.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any, Generic, TypeVar

from prefect import Flow, Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, State, TaskRun
from prefect.context import FlowRunContext
from prefect.flow_engine import run_flow
from prefect.futures import as_completed
from prefect.states import Pending
from prefect.utilities.annotations import opaque

from flows.progress import RunProgress
from flows.run_results import publish, remember, remember_tags
from lakehouse.errors import LakehouseError, Unavailable

log = logging.getLogger(__name__)

P = TypeVar("P")  # a job's plan
T = TypeVar("T")  # one part of it
R = TypeVar("R")  # what a part gives


class WhenPrefectIsDown(StrEnum):
    RUN_HERE = "run here"
    REFUSE = "refuse"


POLICY: dict[str, WhenPrefectIsDown] = {
    "ingest": WhenPrefectIsDown.RUN_HERE,
    "load": WhenPrefectIsDown.RUN_HERE,
    "query": WhenPrefectIsDown.RUN_HERE,
    "compaction": WhenPrefectIsDown.REFUSE,
    "mirror": WhenPrefectIsDown.RUN_HERE,
}

MAX_WATCHES = 1000
RETRY_DELAY_S = 1.0  # between a part's attempts, as the Prefect tasks wait


@dataclass(frozen=True)
class StepNames:
    """The Prefect task names of a job's steps; `finish` None: the finish is no task of its
    own (a summary of what the parts did). The plan's and the finish's task runs are named
    `plan_run` and `finish_run` (default: the task's name)."""

    plan: str
    part: str
    finish: str | None
    plan_run: str = ""
    finish_run: str = ""


def _always(_exc: BaseException) -> bool:
    return True


@dataclass(frozen=True)
class Job(Generic[P, T, R]):
    """A run's steps, declared once: plan (None: nothing to do), the plan's parts, one part
    (retried `retries` times when `retry_if` says the error may pass), finish (the summary)."""

    kind: str  # a row of POLICY
    names: StepNames
    plan: Callable[[], P | None]
    parts: Callable[[P], Sequence[T]]
    run_part: Callable[[T], R]
    finish: Callable[[P, list[R]], dict[str, Any]]
    nothing: Callable[[], dict[str, Any]] = dict  # the summary when there is nothing to do
    part_label: Callable[[T], str] = str  # a part's task run name
    counted: str = "parts done"  # what the progress counts
    parallel: int = 1  # parts at once outside Prefect (a flow's task runner bounds them inside)
    retries: int = 0
    retry_if: Callable[[BaseException], bool] = _always
    attach_result: bool = False  # the summary attached to the run (read by other processes)


@dataclass
class RunWatch:
    """One run as this process sees it: planned, parts done, finished."""

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
        """True once the plan is done or the run is over (then `error` may say why)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.total is not None or self.finished,
                                          timeout_s)

    def wait(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The result once the run is over; its error raised if it failed."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.finished, timeout_s):
                raise TimeoutError(f"the run {self.run_id} is still going")
        if self.error is not None:
            raise self.error
        return self.result or {}


_lock = threading.Lock()
_watches: OrderedDict[str, RunWatch] = OrderedDict()
_live: dict[str, Any] = {}  # the one registry of live objects (jobs, contexts): key → object
RunObserver = Callable[[str, str, float], None]  # kind, "completed" | "failed", seconds
_observers: list[RunObserver] = []


def observe_runs(observer: RunObserver) -> Callable[[], None]:
    """Have `observer` told of each run `start` ran here once it ends; what stops that."""
    with _lock:
        _observers.append(observer)

    def stop() -> None:
        with _lock:
            if observer in _observers:
                _observers.remove(observer)
    return stop


def _ended(kind: str, outcome: str, seconds: float) -> None:
    with _lock:
        observers = list(_observers)
    for observer in observers:
        try:
            observer(kind, outcome, seconds)
        except Exception:  # a meter's fault is not the run's
            log.exception("a run observer failed")


def watch(run_id: str) -> RunWatch:
    """The watch of a run of this process (made on first use: a flow called directly has one
    too, so its progress can be asked for)."""
    with _lock:
        found = _watches.get(run_id)
        if found is None:
            found = _watches[run_id] = RunWatch(run_id)
            while len(_watches) > MAX_WATCHES:
                _watches.popitem(last=False)
        return found


def file(live: Any, kind: str) -> str:
    """File a live object for the flow runs of this process; the key that finds it."""
    key = f"{kind}-{uuid.uuid4().hex[:12]}"
    with _lock:
        _live[key] = live
    return key


def filed(key: str) -> Any:
    """What `file` filed under `key` (None: nothing, or nothing in this process)."""
    with _lock:
        return _live.get(key) if key else None


def take_back(key: str) -> None:
    with _lock:
        _live.pop(key, None)


# Running the steps ------------------------------------------------------------------------------

def run_steps(job: Job[P, T, R], mine: RunWatch | None = None) -> dict[str, Any]:
    """The job's steps: as Prefect tasks inside a flow run, else as a plain loop here."""
    context = FlowRunContext.get()
    tracked = context is not None and context.flow_run is not None
    if mine is None:
        mine = watch(str(context.flow_run.id)) if tracked and context and context.flow_run \
            else RunWatch(f"local-{uuid.uuid4().hex[:12]}")
    names = job.names
    plan = _as_task(job.plan, names.plan, names.plan_run)() if tracked else job.plan()
    if plan is None:
        summary = job.nothing()
        mine.planned(0)
    else:
        parts = list(job.parts(plan))
        mine.planned(len(parts))
        results = (_parts_in_flow(job, parts, mine) if tracked
                   else _parts_here(job, parts, mine))
        if tracked and names.finish is not None:
            finishing = _as_task(job.finish, names.finish, names.finish_run)
            summary = finishing(opaque(plan), opaque(results))
        else:
            summary = job.finish(plan, results)
    summary = {"run_id": mine.run_id, "flow": job.kind, **summary}
    if not tracked:
        summary["state"] = "COMPLETED"
    if tracked and job.attach_result:
        publish(mine.run_id, summary)
    else:
        remember(mine.run_id, summary)
    return summary


def _as_task(fn: Callable[..., Any], name: str, run_name: str) -> Callable[..., Any]:
    made: Task[..., Any] = task(name=name, task_run_name=run_name or name,
                                cache_policy=NO_CACHE)(fn)
    return made


def _parts_in_flow(job: Job[P, T, R], parts: Sequence[T], mine: RunWatch) -> list[R]:
    def retryable(_task: Task[..., Any], _run: TaskRun, state: State) -> bool:
        try:
            state.result()
        except BaseException as exc:
            return job.retry_if(exc)
        return False

    def one(part: T, label: str) -> R:
        return job.run_part(part)

    part_task: Task[..., R] = task(
        name=job.names.part, task_run_name="{label}", cache_policy=NO_CACHE,
        retries=job.retries, retry_delay_seconds=1, retry_condition_fn=retryable)(one)
    shown = RunProgress.start(len(parts), job.counted)
    # Opaque: Prefect otherwise walks a task's arguments for futures to record as its inputs,
    # every element of every nested collection, in Python holding the interpreter lock, and a
    # flush's part is its table's entries, records and all (seconds over 100,000 rows, every
    # request of the process waiting). Opaque, an argument is taken whole, not walked into.
    futures = [part_task.submit(opaque(part), job.part_label(part)) for part in parts]
    for done, _ in enumerate(as_completed(futures), start=1):
        mine.step(done)
        shown.report(done)
    return [future.result() for future in futures]  # the first failure fails the run


def _parts_here(job: Job[P, T, R], parts: Sequence[T], mine: RunWatch) -> list[R]:
    def one(part: T) -> R:
        for attempt in range(job.retries + 1):
            try:
                return job.run_part(part)
            except Exception as exc:
                if attempt == job.retries or not job.retry_if(exc):
                    raise
            time.sleep(RETRY_DELAY_S)
        raise AssertionError("unreachable")  # pragma: no cover

    if job.parallel <= 1 or len(parts) <= 1:
        results = []
        for done, part in enumerate(parts, start=1):
            results.append(one(part))
            mine.step(done)
        return results
    with ThreadPoolExecutor(min(job.parallel, len(parts)),
                            thread_name_prefix=f"{job.kind}-part") as pool:
        futures = [pool.submit(contextvars.copy_context().run, one, part) for part in parts]
        try:
            for done, future in enumerate(futures, start=1):
                future.result()
                mine.step(done)
        except BaseException:  # the first failure fails the run: parts not begun are dropped
            for future in futures:
                future.cancel()
            raise
        return [future.result() for future in futures]


# Starting runs ----------------------------------------------------------------------------------

def start(job: Job[Any, Any, Any], flow: Flow[..., Any], *, name: str,
          parameters: dict[str, Any], tags: Sequence[str]) -> RunWatch:
    """Create the named flow run and run it on a thread of this process; its watch at once.
    Without Prefect: as POLICY says (Unavailable for a kind that is refused)."""
    key = file(job, job.kind)
    given = {**parameters, "job": key}
    created: FlowRun | None = None
    try:
        with get_client(sync_client=True) as client:
            created = client.create_flow_run(flow, name=name,
                                             parameters=flow.serialize_parameters(given),
                                             tags=list(tags), state=Pending())
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
        if POLICY[job.kind] is WhenPrefectIsDown.REFUSE:
            take_back(key)
            raise Unavailable(
                f"the Prefect API cannot be reached, so the {job.kind} run cannot start; "
                "check that the Prefect server is up (GET /health)",
                code="prefect_unavailable", details={"error": error}) from exc
        log.warning("the Prefect API cannot be reached; running without it",
                    extra={"run": job.kind, "error": error})
    mine = watch(str(created.id) if created is not None else f"local-{uuid.uuid4().hex[:12]}")
    if created is None:
        remember_tags(mine.run_id, tuple(tags))
    context = contextvars.copy_context()  # Prefect's settings (its API URL) go along
    work = partial(_run, mine, job, key=key, flow=flow, created=created, parameters=given)
    threading.Thread(target=context.run, args=(work,), name=f"{job.kind}-{mine.run_id[:13]}",
                     daemon=True).start()
    return mine


def run(job: Job[Any, Any, Any], flow: Flow[..., Any], *, name: str,
        parameters: dict[str, Any], tags: Sequence[str]) -> dict[str, Any]:
    """`start`, then wait for the result (its error raised)."""
    return start(job, flow, name=name, parameters=parameters, tags=tags).wait()


def _run(mine: RunWatch, job: Job[Any, Any, Any], *, key: str, flow: Flow[..., Any],
         created: FlowRun | None, parameters: dict[str, Any]) -> None:
    started, outcome = time.perf_counter(), "failed"
    try:
        if created is not None:
            result: Any = run_flow(flow, flow_run=created, parameters=parameters)
        else:
            result = run_steps(job, mine)
        outcome = "completed"
        mine.finish(result)
    except BaseException as exc:  # the watch hands it to whoever waits
        if created is None:  # no Prefect run holds the error: this process tells it
            if not isinstance(exc, LakehouseError):
                log.exception("the %s run failed", job.kind, extra={"run_id": mine.run_id})
            remember(mine.run_id, {"run_id": mine.run_id, "flow": job.kind, "state": "FAILED",
                                   "error": f"{type(exc).__name__}: {exc}"[:500]})
        mine.finish(None, exc)
    finally:
        take_back(key)
        _ended(job.kind, outcome, time.perf_counter() - started)
