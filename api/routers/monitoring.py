"""Monitoring: the platform's metrics, alerts and the logs of its processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.bodies import listed
from api.deps import CoreDep, require_role
from api.maintenance_status import maintenance_status
from lakehouse.auth.identity import Caller, Role
from lakehouse.errors import InvalidInput
from lakehouse.telemetry import log_files, log_lines
from lakehouse.telemetry.log_lines import Wanted, parse_cursor
from lakehouse.telemetry.logs import ring_buffer

router = APIRouter(tags=["monitoring"])
PROMETHEUS_TEXT = "text/plain; version=0.0.4"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@router.get("/metrics", response_class=Response)
async def metrics(core: CoreDep) -> Response:
    """Prometheus text exposition of the platform's own metrics (no auth, as scrapers expect;
    so no series names a tenant: per-tenant series are on /metrics/tenants)."""
    await maintenance_status(core)  # refreshes the backlog and last-run gauges
    return Response(core.metrics.exposition(), media_type=PROMETHEUS_TEXT)


@router.get("/metrics/tenants", response_class=Response)
async def tenant_metrics(
    core: CoreDep, caller: Annotated[Caller, Depends(require_role(Role.ADMIN))],
) -> Response:
    """The per-tenant series (label `tenant`), for admins: scrape with a bearer token."""
    await maintenance_status(core)
    return Response(core.metrics.exposition(per_tenant=True), media_type=PROMETHEUS_TEXT)


@router.get("/alerts")
async def alerts(
    core: CoreDep, caller: Annotated[Caller, Depends(require_role(Role.READER))],
    state: Annotated[Literal["active", "all"], Query(
        description="`active` (default): firing, pending and recently resolved alerts; `all`: "
                    "every rule too, `inactive` when nothing of it holds")] = "active",
) -> dict[str, Any]:
    """The platform's alerts, as the rules (ALERT_RULES_FILE) evaluated every
    ALERT_EVAL_INTERVAL_S see them: name, state, severity, summary, value, since, labels.
    They are about the platform, not a tenant's data, so any signed-in caller may read them."""
    assert core.alerting is not None  # noqa: S101 - build_core always sets it
    return core.alerting.listed(every_rule=state == "all")


@router.get("/logs")
async def logs(  # noqa: PLR0917 - one query parameter per filter
    core: CoreDep,
    caller: Annotated[Caller, Depends(require_role(Role.READER))],
    limit: Annotated[int, Query(ge=1, le=2000, description="entries per page")] = 200,
    level: Annotated[str, Query(max_length=10, json_schema_extra=listed(LEVELS),
                                description="the lowest level shown")] = "INFO",
    process: Annotated[list[str] | None, Query(
        max_length=32, description="only these processes (repeat it, or separate with "
                                   "commas): control-plane, dask-scheduler, dask-workers, "
                                   "prefect-server, prefect-worker, … (`processes` in the "
                                   "answer lists those there are)")] = None,
    since: Annotated[dt.datetime | None, Query(description="entries at or after (ISO 8601; "
                                                           "UTC if no offset)")] = None,
    until: Annotated[dt.datetime | None, Query(description="entries at or before")] = None,
    request_id: Annotated[str | None, Query(max_length=64)] = None,
    query_id: Annotated[str | None, Query(max_length=64)] = None,
    text: Annotated[str | None, Query(max_length=200, description="text the message holds "
                                                                  "(any case)")] = None,
    before: Annotated[str | None, Query(max_length=200, description="the `next` cursor of "
                                                                    "the page before")] = None,
) -> dict[str, Any]:
    """Log entries of every process `lakehouse up` runs on this host (the services, the Dask
    scheduler and workers, the Prefect server and worker), newest first, a page at a time
    (`next` is the cursor of the page after). Admins see every line. Other callers see only
    the lines of the platform's own processes that name their tenant: a line of Dask or
    Prefect, or one that names no tenant, may be about anyone."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise InvalidInput(f"level is one of {', '.join(LEVELS)}", details={"level": level})
    folder = core.settings.log_dir
    there = log_files.processes(folder) or [log_files.OWN_PROCESS]
    asked = {p.strip() for value in process or [] for p in value.split(",") if p.strip()}
    if unknown := sorted(asked - set(there)):
        raise InvalidInput("no such process logs here", code="invalid_process",
                           details={"process": unknown, "processes": there})
    cursor = None
    if before is not None and (cursor := parse_cursor(before)) is None:
        raise InvalidInput("`before` is the `next` cursor a page of /logs answered",
                           code="invalid_cursor", details={"before": before})
    wanted = Wanted(frozenset(asked), numeric, _epoch(since), _epoch(until), request_id,
                    query_id, text, None if caller.is_admin else caller.tenant, cursor)
    found = await asyncio.to_thread(log_files.read, folder, wanted, limit + 1,
                                    ring_buffer().latest(ring_buffer().capacity))
    page = found[:limit]
    answer: dict[str, Any] = {
        "count": len(page), "logs": [e.to_json() for e in page],
        "next": log_lines.cursor(page[-1]) if len(found) > limit else None,
        "processes": there, "scope": "all" if caller.is_admin else "tenant"}
    if not caller.is_admin:
        answer["note"] = ("only the platform's lines that name your tenant: lines of Dask and "
                          "Prefect, and lines naming no tenant, may be about any tenant, so "
                          "admins see them")
    return answer


def _epoch(at: dt.datetime | None) -> float | None:
    if at is None:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()
