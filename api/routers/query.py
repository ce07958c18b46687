"""Operation Node: run queries (sync or async), follow them, page their results, cancel them,
explain them; and the Dask cluster's nodes. The Tenant Node's POST /data/execute runs the same
engine as a single-node query."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict, Field, model_validator

from api.answers import ROWS_ANSWER, STATUS_ANSWER, QuerySubmitted
from api.bodies import NOT_BLANK, ONE_FORM, StrictBody, listed
from api.core import Core
from api.deps import CoreDep, require_role
from api.query_params import MAX_COUNT
from api.query_results import (
    FORMATS,
    binary_response,
    check_format,
    columns,
    json_bytes,
    rows_json,
)
from api.routers.interpreter import DslModel
from api.services import Service, accepted, url_on
from lakehouse.auth.identity import Caller, Role
from lakehouse.cluster import usable_workers, worker_verdicts
from lakehouse.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotServed,
    QueryCancelled,
    Unavailable,
)
from lakehouse.executor.queries import FINAL_STATES, QueryRun
from lakehouse.executor.service import QueryRequest, QueryService, with_mode
from lakehouse.sql import dsl
from lakehouse.sql.parse import MAX_QUERY_CHARS, known_dialects
from lakehouse.worker_storage import Verdict

router = APIRouter(tags=["query"])
data_router = APIRouter(tags=["data"])
Reader = Annotated[Caller, Depends(require_role(Role.READER))]
PAGE_DEFAULT = 10_000
PAGE_MAX = 1_000_000


# What callers send for the query bodies' fields (api/bodies.py names the one meant).
QUERY_FIELDS_MISTAKEN = {
    "sql": "query", "statement": "query", "q": "query", "text": "query", "query_text": "query",
    "snapshot_id": "snapshot", "version": "snapshot", "as_of": "snapshot",
    "at_snapshot": "snapshot", "timeout": "timeout_s", "output_format": "format",
    "strategy": "plan", "async": "mode",
}


# Percent-encoded, 4,000 characters of any script stay under 64 KiB, the URL length HTTP
# clients (httpx among them) and servers accept.
MAX_QUERY_CHARS_IN_URL = 4_000


def snapshot_field() -> Any:
    return Field(default=None, ge=1, le=MAX_COUNT, description="Read exactly this snapshot of "
                 "the catalog (time travel): its files, no rows still in the write-ahead log")


class ExecuteBody(StrictBody):
    mistaken: ClassVar[Mapping[str, str]] = QUERY_FIELDS_MISTAKEN

    # The table POST /data's example writes to.
    model_config = ConfigDict(json_schema_extra={**ONE_FORM, "examples": [
        {"query": "SELECT data_id, name, age FROM records WHERE age > 25 ORDER BY name"}]})

    query: str | None = Field(default=None, max_length=MAX_QUERY_CHARS,
                              json_schema_extra=NOT_BLANK,
                              description="One read-only SQL statement over your tables")
    dsl: DslModel | None = Field(default=None, description="Or the query as the JSON DSL")
    dialect: str | None = Field(default=None, max_length=40,
                                json_schema_extra=listed(known_dialects(), nullable=True),
                                description="Any dialect sqlglot reads; duckdb if absent")
    mode: Literal["sync", "async"] = "sync"
    format: str = Field(default="json", json_schema_extra=listed(FORMATS),
                        description="json (a page), or the whole result streamed as jsonl, "
                                    "csv, arrow or parquet")
    timeout_s: float | None = Field(default=None, gt=0, le=86_400)
    track: bool = Field(default=False, description="Run as a Prefect flow run named `query`")
    plan: Literal["auto", "single", "distributed"] | None = Field(
        default=None, description="Force a single-node or distributed plan")
    snapshot: int | None = snapshot_field()
    engine: Literal["auto", "default", "clickhouse"] = Field(default="auto", description=(
        "Which engine answers: \"clickhouse\" the ClickHouse serving store (a 4xx says why "
        "when the query cannot go there: a table not served, a mirror behind, rows not "
        "flushed); \"default\" DuckDB fragments (on Dask when large); \"auto\" the "
        "optimizer's choice (EXPLAIN shows it and why)"))

    @model_validator(mode="after")
    def _one_query(self) -> ExecuteBody:
        if (self.query is None) == (self.dsl is None):
            raise ValueError("give exactly one of \"query\" (SQL) and \"dsl\"")
        return self


def service(core: Core) -> QueryService:
    found = core.queries
    if not isinstance(found, QueryService):
        raise NotServed("this process does not run queries", code="queries_not_served")
    return found


def request_of(body: ExecuteBody, core: Core, caller: Caller,
               mode: str | None = None) -> QueryRequest:
    found = service(core)
    query: Any = body.query if body.query is not None else dsl.to_tree(
        body.dsl.to_domain())  # type: ignore[union-attr]
    return QueryRequest(query, body.dialect, body.mode, body.track, body.timeout_s,
                        with_mode(found.model, mode or body.plan), body.snapshot,
                        caller.user, None if body.engine == "auto" else body.engine)


async def run_to_end(found: QueryService, tenant: str, request: QueryRequest) -> QueryRun:
    """Submit and wait for the end (a sync request): the run, finished, failed or timed out.

    The wait holds no thread: a thread each, a flood of sync queries would take every thread
    of the pool the services of this process share (writes, authentication) and queue there
    instead of being shed by the query admission."""
    run = await run_in_threadpool(found.submit, tenant, request)
    loop = asyncio.get_running_loop()
    ended = asyncio.Event()
    run.when_done(lambda: loop.call_soon_threadsafe(ended.set))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ended.wait(), found.time_limit(request) + 5)
    return run


def _finished_body(run: QueryRun, limit: int, offset: int = 0,
                   base: str = "") -> dict[str, Any]:
    assert run.result is not None  # noqa: S101 - callers check the state first
    total = run.result.num_rows
    page = run.result.slice(offset, limit)
    end = offset + page.num_rows
    return {"query_id": run.query_id, "columns": columns(run.result), "rows": rows_json(page),
            "row_count": total, "offset": offset, "returned": page.num_rows,
            "truncated": end < total, "next_offset": end if end < total else None,
            # Trino's way to the next page: follow it until it is null.
            "next_uri": (f"{base}/query/{run.query_id}/result?offset={end}"
                         f"&limit={min(limit, PAGE_MAX)}" if end < total else None),
            "elapsed_s": run.elapsed_s, "bytes_scanned": run.progress.bytes_scanned,
            "strategy": (run.plan or {}).get("distribution", {}).get("strategy"),
            "engine": (run.plan or {}).get("route", {}).get("engine", "default"),
            "planning_ms": run.planning_ms, "snapshot": run.snapshot}


def answer(run: QueryRun, fmt: str, limit: int, base: str = "") -> Response:
    """The finished run's answer; `base` prefixes `next_uri` (the Operation Node's URL, for an
    answer another service gives)."""
    if run.state != "finished" or run.result is None:
        raise run.exception or Unavailable("the query did not finish in time to answer",
                                           code="query_unfinished",
                                           details={"query_id": run.query_id})
    headers = {"X-Query-Id": run.query_id, "X-Row-Count": str(run.result.num_rows)}
    if fmt != "json":
        return binary_response(run.result, fmt, headers)
    return Response(json_bytes(_finished_body(run, limit, base=base)),
                    media_type="application/json", headers=headers)


# Where an async query's id leads (OpenAPI links).
SUBMITTED_LINKS: dict[str, Any] = {
    name: {"operationId": operation, "description": description,
           "parameters": {"query_id": "$response.body#/query_id"}}
    for name, operation, description in (
        ("Status", "status", "Its state and progress"),
        ("Rows", "result", "Its rows, once it finished"),
        ("Cancel", "cancel", "Stop it"))}


@router.post("/query/execute", response_model=None,
             responses={**ROWS_ANSWER, **accepted(
                 "async: the query id; follow it at GET /query/{query_id}", QuerySubmitted,
                 links=SUBMITTED_LINKS)})
async def execute(body: ExecuteBody, http: Request, core: CoreDep, caller: Reader) -> Response:
    """Run a query on your tables. Sync (the default) answers the rows (up to
    QUERY_MAX_RESULT_ROWS; page the rest with GET /query/{id}/result); async answers 202 with
    the query id at once, and its status URL in `Location`."""
    fmt = check_format(body.format)
    found = service(core)
    request = request_of(body, core, caller)
    if body.mode == "async":
        run = await run_in_threadpool(found.submit, caller.tenant, request)
        status_url = f"/query/{run.query_id}"
        return JSONResponse({"query_id": run.query_id, "state": run.state,
                             "status_url": status_url}, status_code=202,
                            headers={"Location": url_on(Service.OPERATION, status_url, http,
                                                        core.settings)})
    run = await run_to_end(found, caller.tenant, request)
    return answer(run, fmt, core.settings.query_max_result_rows)


@router.get("/query/status", response_model=None, responses=STATUS_ANSWER)
async def status_by_param(core: CoreDep, caller: Reader,
                          id: Annotated[str, Query(max_length=64)]) -> dict[str, Any]:
    """The state, progress, rows, bytes scanned, elapsed time and error of a query."""
    return service(core).registry.get(caller.tenant, id).status()


@router.get("/query/plan")
async def plan_get(core: CoreDep, caller: Reader, *,
                   query: Annotated[str, Query(max_length=MAX_QUERY_CHARS_IN_URL,
                                               json_schema_extra=NOT_BLANK,
                                               examples=["SELECT count(*) FROM records"],
                                               description=(
                       f"At most {MAX_QUERY_CHARS_IN_URL} characters: a URL holds no more "
                       "everywhere; POST /query/plan takes longer queries"))],
                   analyze: bool = False, dialect: Annotated[str | None, Query(
                       max_length=40, json_schema_extra=listed(known_dialects()))] = None,
                   snapshot: Annotated[int | None, Query(
                       ge=1, le=MAX_COUNT, description="Plan the query at this snapshot")] = None,
                   ) -> dict[str, Any]:
    """EXPLAIN: the physical plan with estimated rows and cost per step; with analyze=true the
    query runs and each step gets its actual rows and time."""
    body = ExecuteBody(query=query, dialect=dialect, snapshot=snapshot)
    return await explain(body, core, caller, analyze=analyze)


@router.post("/query/plan")
async def plan_post(body: ExecuteBody, core: CoreDep, caller: Reader,
                    analyze: bool = False) -> dict[str, Any]:
    return await explain(body, core, caller, analyze=analyze)


async def explain(body: ExecuteBody, core: Core, caller: Caller, *,
                  analyze: bool) -> dict[str, Any]:
    found = service(core)
    request = request_of(body, core, caller)
    tenant = caller.tenant
    planned = await run_in_threadpool(found.plan, tenant, request)
    plan = planned.optimized.plan.to_json()
    route = await run_in_threadpool(found.route, planned, request)
    out: dict[str, Any] = {"plan": plan, "planning_ms": round(planned.planning_ms, 3),
                           "snapshot": planned.pin.snapshot, "route": route.to_json()}
    if analyze:
        run = await run_to_end(found, tenant, request)
        if run.state != "finished":
            answer(run, "json", 0)  # raises why
        out["analyze"] = {"rows": run.result.num_rows if run.result is not None else 0,
                          "elapsed_s": run.elapsed_s, "bytes_scanned":
                          run.progress.bytes_scanned, "steps": run.progress.steps,
                          "workers": run.progress.workers, "query_id": run.query_id}
        _actuals(plan["steps"], run)
    return out


def _actuals(step: dict[str, Any] | None, run: QueryRun) -> None:
    """Actual rows on the steps whose rows were counted: the top (the result) and the scans
    (rows after the scan's predicate; or, where the query's SQL filters instead, the rows read
    from the row groups statistics kept)."""
    if step is None:
        return
    step["actual_rows"] = run.result.num_rows if run.result is not None else None
    stack = list(step["children"])
    while stack:
        child = stack.pop()
        if child["op"] == "scan":
            table = child["detail"].split(" AS ")[0]
            for prefix, key in (("scan ", "actual_rows"), ("read ", "rows_read")):
                counted = [v for k, v in run.progress.steps.items()
                           if k.startswith(prefix) and k.endswith(f".{table}")]
                if counted:
                    child[key] = int(counted[0]["rows"])
                    child["actual_ms"] = counted[0]["ms"]
        stack.extend(child["children"])


@router.get("/nodes/status")
async def nodes_status(core: CoreDep, caller: Reader) -> dict[str, Any]:
    """The Dask cluster: its scheduler's state and each worker's address, threads, memory
    used and limit, tasks running, and whether it sees the storage root (a worker that does
    not is `excluded` and gets no work; for admins, `reason` says why)."""
    client = await asyncio.to_thread(core.dask_client)
    address = core.settings.dask_scheduler_address
    if client is None:
        return {"scheduler": {"address": address, "status": "unreachable"}, "workers": []}
    await asyncio.to_thread(usable_workers, client)  # probes a worker not checked yet
    verdicts = worker_verdicts(address)
    info = await asyncio.to_thread(client.scheduler_info)
    processing = await asyncio.to_thread(client.processing)
    workers = []
    for worker_address, worker in sorted(info.get("workers", {}).items()):
        metrics = worker.get("metrics", {})
        verdict = verdicts.get(worker_address)
        workers.append({"address": worker_address, "name": worker.get("name"),
                        "threads": worker.get("nthreads"),
                        "memory_used": metrics.get("memory"),
                        "memory_limit": worker.get("memory_limit"),
                        "tasks_running": metrics.get("executing",
                                                     len(processing.get(worker_address, ()))),
                        "tasks_processing": len(processing.get(worker_address, ())),
                        **_storage_of(verdict, caller)})
    return {"scheduler": {"address": info.get("address"), "status": client.status,
                          "id": info.get("id"), "workers": len(workers),
                          "workers_usable": sum(w["storage"] == "verified" for w in workers),
                          "threads": sum(w["threads"] or 0 for w in workers)},
            "workers": workers}


def _storage_of(verdict: Verdict | None, caller: Caller) -> dict[str, Any]:
    """A worker's storage verdict; why it was excluded (which may name the storage) only for
    admins."""
    if verdict is None:
        return {"storage": "unchecked"}
    shown = verdict.to_json()
    if not caller.is_admin:
        shown.pop("reason")
    return shown


@router.get("/query/{query_id}/result", response_model=None, responses=ROWS_ANSWER)
async def result(query_id: str, core: CoreDep, caller: Reader, *,
                 offset: Annotated[int, Query(ge=0, le=MAX_COUNT)] = 0,
                 limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
                 format: Annotated[str, Query(max_length=10, json_schema_extra=listed(FORMATS))
                                  ] = "json") -> Response:
    """A page of a finished query's rows: json, or streamed as jsonl, csv, arrow (an IPC
    stream) or parquet. A json page carries `next_uri`, the next page, until the last."""
    fmt = check_format(format)
    run = service(core).registry.get(caller.tenant, query_id)
    if run.state == "cancelled":
        raise QueryCancelled("the query was cancelled before it finished, so it has no "
                             "result; run it again (POST /query/execute) to get one",
                             details={"query_id": run.query_id, "state": run.state})
    if run.state == "failed" and run.exception is not None:
        raise run.exception  # why it failed (a timeout, a bad query), with its own status
    if run.state != "finished":
        # 409: the request is right, the query is not there yet; the same request succeeds
        # once it finished.
        raise Conflict(f"the query is still {run.state}; its result is here once "
                       f"GET /query/{run.query_id} says finished",
                       code="query_not_finished", details={"state": run.state})
    if run.result is None:
        raise run.exception or InvalidInput("the query has no result", code="no_result")
    if fmt != "json":
        return binary_response(run.result.slice(offset, limit), fmt,
                               {"X-Query-Id": run.query_id})
    return Response(json_bytes(_finished_body(run, limit, offset)),
                    media_type="application/json")


ListedState = Literal["active", "queued", "planning", "running", "finished", "failed",
                      "cancelled"]


def _all_tenants(http: Request, caller: Caller) -> bool:
    """An admin naming no tenant (X-Tenant-Id) sees and cancels every tenant's queries."""
    return caller.is_admin and "x-tenant-id" not in http.headers


def _listed(run: QueryRun) -> dict[str, Any]:
    return {"query_id": run.query_id, "tenant": run.tenant, "user": run.user,
            "state": run.state, "mode": run.mode, "sql": run.sql[:_LISTED_SQL_CHARS],
            "created_at": datetime.fromtimestamp(run.created_at, UTC).isoformat(),
            "elapsed_s": round(run.elapsed_s, 3),
            "rows": run.result.num_rows if run.result is not None else None,
            "status_url": f"/query/{run.query_id}"}


_LISTED_SQL_CHARS = 1000


@router.get("/queries")
async def list_queries(
        http: Request, core: CoreDep, caller: Reader, *,
        state: Annotated[ListedState | None, Query(
            description="only queries in this state; `active`: not yet ended")] = None,
        user: Annotated[str | None, Query(max_length=128,
                                          description="only this user's queries")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Your tenant's running and recent queries, newest first: who asked, the state, the
    elapsed time and the rows (an admin naming no tenant sees every tenant's). Recent means
    still kept for paging (QUERY_RESULTS_KEPT); cancel one with DELETE /queries/{id}."""
    runs = service(core).registry.runs(None if _all_tenants(http, caller) else caller.tenant)
    if state == "active":
        runs = [r for r in runs if r.state not in FINAL_STATES]
    elif state is not None:
        runs = [r for r in runs if r.state == state]
    if user is not None:
        runs = [r for r in runs if r.user == user]
    newest = sorted(runs, key=lambda r: r.created_at, reverse=True)
    return {"queries": [_listed(r) for r in newest[:limit]], "total": len(runs),
            "returned": min(limit, len(runs))}


@router.delete("/queries/{query_id}", response_model=None, responses=STATUS_ANSWER)
async def cancel_listed(query_id: Annotated[str, Path(max_length=64)], http: Request,
                        core: CoreDep, caller: Reader) -> dict[str, Any]:
    """Cancel a query of the list: your own, or, as a tenant admin, any of your tenant's (an
    admin naming no tenant: any tenant's)."""
    registry = service(core).registry
    found = registry.find(query_id) if _all_tenants(http, caller) else None
    return await _cancelled(registry.get(found.tenant if found is not None else caller.tenant,
                                         query_id), caller)


async def _cancelled(run: QueryRun, caller: Caller) -> dict[str, Any]:
    """Cancel `run` if `caller` may (its own query, or a tenant admin's tenant's); its status
    once it ended, or after 10 s."""
    if run.user not in ("", caller.user) and caller.role.rank < Role.TENANT_ADMIN.rank:
        raise Forbidden("only who ran a query, or a tenant admin, may cancel it",
                        details={"query_id": run.query_id})
    if run.state not in FINAL_STATES:
        run.cancel.cancel()
    await asyncio.to_thread(run.done.wait, 10)
    return run.status()


@router.get("/query/{query_id}", response_model=None, responses=STATUS_ANSWER)
async def status(query_id: str, core: CoreDep, caller: Reader) -> dict[str, Any]:
    """The same as GET /query/status?id=."""
    return service(core).registry.get(caller.tenant, query_id).status()


@router.delete("/query/{query_id}", response_model=None, responses=STATUS_ANSWER)
async def cancel(query_id: str, core: CoreDep, caller: Reader) -> dict[str, Any]:
    """Cancel a query (your own, or as a tenant admin any of your tenant's): its Dask
    fragments are cancelled and DuckDB interrupted."""
    return await _cancelled(service(core).registry.get(caller.tenant, query_id), caller)


class DataExecuteBody(StrictBody):
    mistaken: ClassVar[Mapping[str, str]] = QUERY_FIELDS_MISTAKEN

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"query": "SELECT count(*) AS n, avg(age) AS mean_age FROM records"}]})

    query: str = Field(max_length=MAX_QUERY_CHARS, json_schema_extra=NOT_BLANK)
    dialect: str | None = Field(default=None, max_length=40,
                                json_schema_extra=listed(known_dialects(), nullable=True))
    format: str = Field(default="json", json_schema_extra=listed(FORMATS))
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    snapshot: int | None = snapshot_field()


@data_router.post("/data/execute", response_model=None, responses=ROWS_ANSWER)
async def data_execute(body: DataExecuteBody, http: Request, core: CoreDep,
                       caller: Reader) -> Response:
    """Run a query on your tables as a single-node plan (the Operation Node's engine)."""
    fmt = check_format(body.format)
    request = request_of(ExecuteBody(query=body.query, dialect=body.dialect,
                                     timeout_s=body.timeout_s, snapshot=body.snapshot),
                         core, caller, mode="single")
    run = await run_to_end(service(core), caller.tenant, request)
    # Its further pages are the Operation Node's (this service has no /query routes).
    operation = url_on(Service.OPERATION, "/", http, core.settings).rstrip("/")
    return answer(run, fmt, core.settings.query_max_result_rows, base=operation)

