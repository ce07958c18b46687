"""The queries of this process: their state, progress, results and cancellation, per tenant.

A query is `queued` when accepted, `planning`, `running`, then `finished`, `failed` or
`cancelled`. Each tenant runs at most a set number at once (RateLimited past it), and every
tenant together at most QUERY_MAX_CONCURRENT, shared fairly (`lakehouse.fair_share`). Finished
results stay for paging until QUERY_RESULTS_KEPT newer queries have finished, or
QUERY_RESULTS_KEPT_PER_TENANT newer ones of the same tenant (so one tenant's many queries do not
push out the others'); the query log keeps every query's outcome for the same span. A result
larger than QUERY_RESULT_SPILL_MB is written to a file (Arrow IPC) and paged from it, mapped
into memory by the operating system rather than held on the heap; the file goes with its run.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from lakehouse.errors import LakehouseError, NotFound, QueryFailed, RateLimited
from lakehouse.executor.run import Cancel, Progress
from lakehouse.fair_share import PRESSING_S, LastTimes, Pace, decide, shed_error

FINAL_STATES = ("finished", "failed", "cancelled")


@dataclass
class QueryRun:
    query_id: str
    tenant: str
    sql: str
    mode: str  # "sync" or "async"
    user: str = ""  # who asked ("" when the platform itself ran it)
    state: str = "queued"
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    progress: Progress = field(default_factory=Progress)
    cancel: Cancel = field(default_factory=Cancel)
    result: pa.Table | None = None
    error: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None  # the physical plan's JSON, once planned
    flow_run_id: str | None = None
    planning_ms: float | None = None
    estimated_rows: int | None = None
    snapshot: int | None = None  # the snapshot it read, once planned
    timed_out: bool = False
    exception: LakehouseError | None = None  # why it failed, to raise at whoever waits
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    _on_done: list[Callable[[], object]] = field(default_factory=list, repr=False)
    _done_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def when_done(self, callback: Callable[[], object]) -> None:
        """Call `callback` once the run ends (now, if it has): a waiter that holds no thread."""
        with self._done_lock:
            if not self.done.is_set():
                self._on_done.append(callback)
                return
        callback()

    def _ended(self) -> None:
        with self._done_lock:
            self.done.set()
            callbacks, self._on_done = self._on_done, []
        for callback in callbacks:
            callback()

    @property
    def elapsed_s(self) -> float:
        end = self.ended_at or time.time()
        return round(end - (self.started_at or self.created_at), 6)

    def finish(self, result: pa.Table) -> None:
        self.result, self.state, self.ended_at = result, "finished", time.time()
        self.progress.stage = "done"
        self._ended()

    def fail(self, exc: BaseException) -> None:
        if isinstance(exc, LakehouseError) and exc.code == "query_cancelled":
            self.state = "cancelled"
        else:
            self.state = "failed"
        if not isinstance(exc, LakehouseError):
            # Not the query's fault, and not the caller's business how: the exception (a
            # library's text, internal names) stays in the log, found by the query id.
            exc = QueryFailed("the query failed on the server, not because of the query; "
                              "the query id finds the cause in the logs")
        # A sync caller gets only the error: the id lets it find the run (and its flow run).
        exc.details.setdefault("query_id", self.query_id)
        self.exception = exc
        self.error, self.ended_at = exc.to_body(), time.time()
        self._ended()

    def status(self) -> dict[str, Any]:
        p = self.progress
        return {
            "query_id": self.query_id, "state": self.state, "mode": self.mode, "user": self.user,
            "progress": {"stage": p.stage, "fragments_done": p.fragments_done,
                         "fragments_total": p.fragments_total, "workers": p.workers},
            "rows": self.result.num_rows if self.result is not None else None,
            "bytes_scanned": p.bytes_scanned, "elapsed_s": self.elapsed_s,
            "planning_ms": self.planning_ms, "snapshot": self.snapshot, "error": self.error,
            "flow_run_id": self.flow_run_id,
            "strategy": (self.plan or {}).get("distribution", {}).get("strategy"),
        }


@dataclass(frozen=True, slots=True)
class ResultLimits:
    kept: int  # finished runs remembered, every tenant together
    kept_per_tenant: int  # … of one tenant
    spill_bytes: int  # a larger result goes to a file in `spill_dir`
    spill_dir: Path | None = None  # None: results stay in memory


class QueryRegistry:
    def __init__(self, max_concurrent_per_tenant: int, kept: int | ResultLimits,
                 max_concurrent: int | None = None, least: int = 1) -> None:
        self._max = max_concurrent_per_tenant
        # Every tenant together: past it a query is shed (503, or 429 for a tenant over its
        # fair share while others wait), never queued behind the others (lakehouse.fair_share).
        self.capacity = max_concurrent or 2**31
        self.ceiling = self.capacity  # capacity may be lowered below it while the loop lags
        self.least = min(least, self.capacity)  # each tenant's least share, however lowered
        self.refusals = LastTimes()  # who was shed lately (lakehouse.fair_share: least shares)
        # Who asks for queries faster than its least share a second on average (room for 10 s
        # of it at once: a dashboard's refresh, a client catching up on late answers), and who
        # met its own limit lately: a tenant that did neither is steady, let in below the
        # configured limit whatever the limit in force (fair_share.decide). Asks, not starts:
        # a flood refused gets few starts, however fast it asks.
        self.asks = Pace(per_s=self.least, room=self.least * PRESSING_S)
        self.at_limit = LastTimes()
        self._limits = (kept if isinstance(kept, ResultLimits)
                        else ResultLimits(kept, kept, spill_bytes=2**62))
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, QueryRun] = OrderedDict()
        self._spilled: set[str] = set()  # the runs whose result is in a file
        if self._limits.spill_dir is not None:
            # Files of an earlier process: their runs are gone with it.
            self._limits.spill_dir.mkdir(parents=True, exist_ok=True)
            for stale in self._limits.spill_dir.glob("q-*.arrow"):
                stale.unlink(missing_ok=True)

    def finish(self, run: QueryRun, result: pa.Table) -> None:
        """The run is finished with `result`, kept as `kept_result` says; older runs past the
        limits are forgotten now, not at the next query."""
        run.finish(self.kept_result(run, result))
        with self._lock:
            self._forget_old()

    def kept_result(self, run: QueryRun, result: pa.Table) -> pa.Table:
        """The result as the run keeps it: itself, or, past the spill size, the same rows
        mapped from a file written for it."""
        spill_dir = self._limits.spill_dir
        if spill_dir is None or result.nbytes <= self._limits.spill_bytes:
            return result
        path = self._spill_path(run)
        with self._lock:
            self._spilled.add(run.query_id)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, result.schema) as out:
            out.write_table(result)
        return pa.ipc.open_file(pa.memory_map(str(path))).read_all()

    def _spill_path(self, run: QueryRun) -> Path:
        assert self._limits.spill_dir is not None  # noqa: S101 - callers check
        return self._limits.spill_dir / f"{run.query_id}.arrow"

    def refusal(self, tenant: str) -> LakehouseError | None:
        """Why a query of `tenant` would be shed now, or None: `start` raises it; the services
        ask first, to shed a query before its request is read (api/middleware.py)."""
        with self._lock:
            refused = self._refusal(tenant)
            if refused is not None:  # shed now; one let through asks again in `start`
                self.asks.mark(tenant)
            return refused

    def _refusal(self, tenant: str) -> LakehouseError | None:
        active = sum(1 for r in self._runs.values()
                     if r.tenant == tenant and r.state not in FINAL_STATES)
        if active >= self._max:
            self.at_limit.mark(tenant)
            return RateLimited(
                f"your tenant already runs {active} queries, the most at once; wait for "
                "one to finish or cancel one (DELETE /query/{id})", code="too_many_queries",
                details={"running": active, "limit": self._max},
                headers={"Retry-After": "1"})
        pressing = self.refusals.within(tenant)
        # A refusal alone does not end steadiness: one refused while catching up is steady
        # again as soon as it asks slowly, not refused on for PRESSING_S.
        steady = not (self.asks.over(tenant) or self.at_limit.within(tenant))
        shed = decide(self._running(), tenant, self.capacity, self.ceiling, least=self.least,
                      pressing=pressing, steady=steady)
        if shed is None:
            return None
        if self.at_limit.within(tenant):
            # Still refused since it met its own limit: it asks for more than that limit,
            # however slowly, so it stays unsteady (or it would climb back to its limit every
            # PRESSING_S while the lowered limit holds it to its least share).
            self.at_limit.mark(tenant)
        self.refusals.mark(tenant)
        return shed_error(shed, "queries running")

    def start(self, tenant: str, sql: str, mode: str, user: str = "") -> QueryRun:
        with self._lock:
            refused = self._refusal(tenant)
            self.asks.mark(tenant)
            if refused is not None:
                raise refused
            run = QueryRun(f"q-{uuid.uuid4().hex[:16]}", tenant, sql, mode, user)
            self._runs[run.query_id] = run
            self._forget_old()
            return run

    def _running(self) -> dict[str, int]:
        held: dict[str, int] = {}
        for run in self._runs.values():
            if run.state not in FINAL_STATES:
                held[run.tenant] = held.get(run.tenant, 0) + 1
        return held

    def _forget_old(self) -> None:
        finished = [r for r in self._runs.values() if r.state in FINAL_STATES]
        gone = finished[:max(0, len(finished) - self._limits.kept)]
        by_tenant: dict[str, list[QueryRun]] = {}
        for run in finished:
            by_tenant.setdefault(run.tenant, []).append(run)
        for runs in by_tenant.values():
            gone.extend(runs[:max(0, len(runs) - self._limits.kept_per_tenant)])
        for run in gone:
            if self._runs.pop(run.query_id, None) is not None:
                self._forget(run)

    def _forget(self, run: QueryRun) -> None:
        # The result itself goes when nobody holds the run any more (a sync answer being
        # written may); a mapped file stays readable after it is unlinked.
        if run.query_id in self._spilled:  # the lock is held
            self._spilled.discard(run.query_id)
            with contextlib.suppress(OSError):
                self._spill_path(run).unlink(missing_ok=True)

    def find(self, query_id: str) -> QueryRun | None:
        with self._lock:
            return self._runs.get(query_id)

    def get(self, tenant: str, query_id: str) -> QueryRun:
        """The tenant's query; another tenant's is as unknown as one that never ran."""
        run = self.find(query_id)
        if run is None or run.tenant != tenant:
            raise NotFound(f"no query {query_id!r}", details={"query_id": query_id[:64]})
        return run

    def runs(self, tenant: str | None = None) -> list[QueryRun]:
        with self._lock:
            return [r for r in self._runs.values() if tenant is None or r.tenant == tenant]
