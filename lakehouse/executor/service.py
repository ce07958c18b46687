"""The query service: accepts a query, runs it in a thread of this process under its limits
(concurrency per tenant, bytes scanned, a time limit), and keeps its run for status endpoints.

A query runs directly, or as a tracked run (the `query` flow run with plan, stage and merge
tasks, see flows/query.py) when it is async, asked to be tracked, or expected to take longer
than QUERY_TRACK_THRESHOLD_S. Its steps are `plan_run`, the execution's `stage` and
`finish_run`, whoever runs them.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lakehouse.errors import InvalidInput, LakehouseError, QueryTimeout
from lakehouse.executor.engine import Planned, QueryEngine
from lakehouse.executor.queries import QueryRegistry, QueryRun
from lakehouse.executor.run import Execution, Progress, Staged
from lakehouse.executor.serving_route import (
    RoutePlan,
    clickhouse_failure,
    plan_route,
    run_on_clickhouse,
)
from lakehouse.optimizer.cost_model import CostModel
from lakehouse.optimizer.route import CLICKHOUSE, DEFAULT, Route
from lakehouse.optimizer.split_learning import Learned, Run, learn
from lakehouse.serving.store import ServingStore, StoreBusy
from lakehouse.telemetry.optimizer_stats import OptimizerStats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryRequest:
    query: str | Any  # SQL text, or a sqlglot tree built from the DSL
    dialect: str | None = None
    mode: str = "sync"
    track: bool = False
    timeout_s: float | None = None
    model: CostModel | None = None  # None: the service's current cost model
    snapshot: int | None = None  # read exactly this snapshot; None: the newest and the log
    user: str = ""  # who asks: shown in GET /queries
    engine: str | None = None  # "default", "clickhouse"; None: the optimizer's choice


AUTO_WAIT_S = 0.25  # how long a query the optimizer sent to ClickHouse waits for the store
LEARNING_WINDOW = 200  # the runs the single-node threshold is learned from


class QueryService:
    def __init__(self, engine: QueryEngine, registry: QueryRegistry, model: CostModel, *,
                 max_bytes_scanned: int, timeout_s: float, track_threshold_s: float,
                 client: Callable[[], Any] | None = None,
                 on_end: Callable[[QueryRun], None] | None = None,
                 track: Callable[[QueryService, QueryRun], None] | None = None,
                 learn_split: bool = False,
                 serving: Callable[[], ServingStore] | None = None) -> None:
        """`track(service, run)` runs the query as a tracked run (the Prefect flow run named
        after it; without one the steps run here all the same); None: never tracked."""
        self.engine = engine
        self.registry = registry
        self.model = model
        self.stats = OptimizerStats()
        # OPTIMIZER_LEARN_SPLIT_THRESHOLD: the single-node threshold follows what the runs
        # measured (lakehouse/optimizer/split_learning.py); `learned` says what and why.
        self.learn_split = learn_split
        self.learned: Learned | None = None
        self._runs: deque[Run] = deque(maxlen=LEARNING_WINDOW)
        self._learning = threading.Lock()
        self.max_bytes_scanned = max_bytes_scanned
        self.timeout_s = timeout_s
        self.track_threshold_s = track_threshold_s
        self._client = client or (lambda: None)
        self._on_end = on_end
        self._track = track
        self._requests: dict[str, QueryRequest] = {}
        self._planned_executions: dict[str, Execution] = {}
        # The ClickHouse serving store (opened on first use), and what a query there may use.
        self._serving = serving
        self._routed: dict[str, tuple[Planned, RoutePlan]] = {}

    # Planning alone (EXPLAIN, the CBO Engine) -------------------------------------------

    def plan(self, tenant: str, request: QueryRequest) -> Planned:
        planned = self.engine.plan(tenant, request.query, request.dialect,
                                   request.model or self.model, request.snapshot)
        plan = planned.optimized.plan
        self.stats.planned(planned.planning_ms,  # parse + optimize + catalog lookups
                           sum(s.files_total for s in plan.scans),
                           sum(len(s.files) for s in plan.scans), plan.distribution.strategy)
        return planned

    def route(self, planned: Planned, request: QueryRequest) -> RoutePlan:
        """Which engine answers: ClickHouse only where every table is served and current."""
        return plan_route(self.engine, planned, request.engine, self._serving)

    # Running --------------------------------------------------------------------------------

    def submit(self, tenant: str, request: QueryRequest) -> QueryRun:
        """Accept a query and start it in a thread of this process; its run at once."""
        if request.snapshot is not None:
            # Refused now, not as the failed run of an async query.
            self.engine.readable(request.snapshot)
        run = self.registry.start(tenant, str(request.query)[:10_000], request.mode,
                                  request.user)
        self._requests[run.query_id] = request
        timeout = self.time_limit(request)
        timer = threading.Timer(timeout, self._time_out, args=(run, timeout))
        timer.daemon = True
        timer.start()
        context = contextvars.copy_context()
        threading.Thread(target=context.run, args=(self._run, run, timer),
                         name=f"query-{run.query_id}", daemon=True).start()
        return run

    def _time_out(self, run: QueryRun, timeout: float) -> None:
        if not run.done.is_set():
            run.timed_out = True
            run.cancel.cancel()
            log.info("query timed out", extra={"query_id": run.query_id, "timeout_s": timeout})

    def _run(self, run: QueryRun, timer: threading.Timer) -> None:
        request = self._requests[run.query_id]
        try:
            run.started_at = time.time()
            if self._on_clickhouse(run, request):
                pass
            elif request.mode == "async" or request.track:
                self._tracked(run)
            else:
                execution = self.plan_run(run)
                estimate = execution.plan.scans and (
                    sum(s.bytes for s in execution.plan.scans)
                    / (request.model or self.model).scan_bytes_per_s)
                if estimate and estimate > self.track_threshold_s:
                    self._tracked(run)
                else:
                    self.finish_run(run, execution, execution.stage(execution.prepare()))
        except BaseException as exc:  # the run holds the error for whoever asks
            failure: BaseException = exc
            if run.timed_out:
                limit = self.time_limit(request)
                failure = QueryTimeout(
                    f"the query ran longer than its time limit of {limit:g} s; narrow it "
                    "(conditions that prune files, fewer rows), or, if it was under the "
                    f"platform's limit ({self.timeout_s:g} s, QUERY_TIMEOUT_S), give it a "
                    "larger \"timeout_s\"",
                    details={"query_id": run.query_id, "timeout_s": limit,
                             "limit_s": self.timeout_s})
            elif not isinstance(exc, LakehouseError):
                log.exception("query failed", extra={"query_id": run.query_id})
            run.fail(failure)
        finally:
            timer.cancel()
            run.cancel.release()
            if self._on_end is not None:
                self._on_end(run)
            self._requests.pop(run.query_id, None)
            self._planned_executions.pop(run.query_id, None)
            self._routed.pop(run.query_id, None)

    def _on_clickhouse(self, run: QueryRun, request: QueryRequest) -> bool:
        """Route the query; True when ClickHouse answered it. Planned here, the plan is kept
        for the default engine's steps."""
        if request.engine == DEFAULT or (self._serving is None and request.engine is None):
            return False
        run.state = "planning"
        planned = self.plan(run.tenant, request)
        chosen = self.route(planned, request)
        self._routed[run.query_id] = (planned, chosen)
        if chosen.route.refused:
            raise chosen.refusal()
        if chosen.sql is None or self._serving is None:
            return False
        self._describe(run, planned, chosen)
        run.state = "running"
        started = time.perf_counter()
        forced = request.engine == CLICKHOUSE
        limit = self.time_limit(request)
        # A forced query waits for the store while its time lasts (a moment kept back, so
        # the answer says what it waited for rather than only that time ran out).
        left = limit - (time.time() - (run.started_at or run.created_at)) - 0.25
        try:
            # The store runs one call at a time: a query the optimizer sent there waits only
            # a moment for it, then runs on the default engine, so one tenant's long
            # ClickHouse queries do not hold up another's lookups.
            result = run_on_clickhouse(self._serving(), chosen,
                                       planned.interpretation.outputs,
                                       max(0.0, left) if forced else AUTO_WAIT_S)
        except LakehouseError:
            raise
        except StoreBusy as exc:
            if forced:
                raise QueryTimeout(
                    f"the query waited its time limit of {limit:g} s for the ClickHouse "
                    "store, busy with other queries; try again, or without \"engine\": "
                    "\"clickhouse\"", details={"query_id": run.query_id, "timeout_s": limit}
                ) from exc
            self._routed[run.query_id] = (planned, RoutePlan(Route(
                DEFAULT, "the ClickHouse store was busy with other queries")))
            return False
        except Exception as exc:
            failure = clickhouse_failure(exc, self.time_limit(request))
            if request.engine == CLICKHOUSE or isinstance(failure, QueryTimeout):
                raise failure from exc
            log.warning("ClickHouse failed a query the optimizer sent there; it runs on the "
                        "default engine", extra={"query_id": run.query_id,
                                                 "error": failure.message})
            self._routed[run.query_id] = (planned, RoutePlan(Route(
                DEFAULT, f"ClickHouse failed it: {failure.details.get('error', '')}")))
            return False
        run.progress.step("clickhouse", result.num_rows, started)
        self.registry.finish(run, result)
        return True

    def _describe(self, run: QueryRun, planned: Planned, chosen: RoutePlan) -> None:
        plan = planned.optimized.plan
        run.plan = {**plan.to_json(), "route": chosen.to_json()}
        run.snapshot = planned.pin.snapshot
        run.planning_ms = round(planned.planning_ms, 3)
        run.estimated_rows = plan.estimated_rows

    def plan_run(self, run: QueryRun) -> Execution:
        """Plan (once) and check the limits; the execution is ready to stage."""
        found = self._planned_executions.get(run.query_id)
        if found is not None:
            return found
        run.state = "planning"
        request = self._requests[run.query_id]
        routed = self._routed.get(run.query_id)
        if routed is None:
            planned = self.plan(run.tenant, request)
            chosen = RoutePlan(Route(DEFAULT, "no table is served by ClickHouse"
                                     if request.engine is None else "asked for"))
        else:
            planned, chosen = routed
        plan = planned.optimized.plan
        self._describe(run, planned, chosen)
        scanned = sum(s.bytes for s in plan.scans)
        if scanned > self.max_bytes_scanned:
            raise InvalidInput(
                f"the query would read {scanned:,} bytes, more than the limit of "
                f"{self.max_bytes_scanned:,}; add conditions that prune files (see POST "
                "/optimize/query for what it reads)", code="query_too_large",
                details={"bytes": scanned, "limit": self.max_bytes_scanned})
        run.state = "running"
        client = self._client() if plan.distribution.strategy != "single" else None
        context = self.engine.context(planned, client, name=f"query-{run.query_id}")
        execution = self._planned_executions[run.query_id] = Execution(
            plan, context, run.progress, run.cancel)
        return execution

    def finish_run(self, run: QueryRun, execution: Execution, staged: Staged) -> None:
        result = execution.merge(staged)
        request = self._requests.get(run.query_id)
        shaped_by_model = request is not None and (request.model or self.model).mode == "auto"
        if self.learn_split and shaped_by_model:  # before the answer: the next query uses it
            self._learn(Run(sum(s.bytes for s in execution.plan.scans),
                            time.time() - (run.started_at or time.time()),
                            execution.distributed))
        self.registry.finish(run, result)
        self.stats.measured(_estimates_vs_actual(execution, run.progress, result.num_rows))

    def _learn(self, finished: Run) -> None:
        """Only queries whose shape the model chose (no forced plan) teach it."""
        with self._learning:
            if self.model.mode != "auto":
                return
            self._runs.append(finished)
            current = self.model.single_node_threshold_bytes
            found = learn(list(self._runs), current)
            # What was last concluded stays shown while new evidence gathers.
            if found.speedup is not None or self.learned is None:
                self.learned = found
            if found.threshold_bytes != current:
                self.model = replace(self.model,
                                     single_node_threshold_bytes=found.threshold_bytes)
                self._runs.clear()  # the evidence was of the old threshold
                log.info("single-node threshold learned", extra={
                    "from_mb": current / 2**20, **found.to_json()})

    def _tracked(self, run: QueryRun) -> None:
        if self._track is None:
            execution = self.plan_run(run)
            self.finish_run(run, execution, execution.stage(execution.prepare()))
        else:
            self._track(self, run)
        if not run.done.is_set():
            raise RuntimeError("the query run ended without a result")

    def time_limit(self, request: QueryRequest) -> float:
        """The query's own timeout_s, never past QUERY_TIMEOUT_S (which it gets without one):
        a caller may ask for less time, not more."""
        return min(request.timeout_s or self.timeout_s, self.timeout_s)

    def lookup(self, query_id: str) -> QueryRun | None:
        return self.registry.find(query_id)


def _estimates_vs_actual(execution: Execution, progress: Progress,
                         rows: int) -> list[tuple[int, int]]:
    pairs = [(execution.plan.estimated_rows, rows)]
    for spec in execution.plan.scans:
        step = progress.steps.get(f"scan {spec.relation}")
        if step is not None:
            pairs.append((spec.estimated_rows, int(step["rows"])))
    return pairs


def with_mode(model: CostModel, mode: str | None) -> CostModel:
    return model if mode is None else replace(model, mode=mode)
