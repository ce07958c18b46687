"""Monitoring: the platform's metrics, alerts and the logs of its processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
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
DATE_TIME = {"format": "date-time"}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_RFC3339 = re.compile(r"(?P<date>\d{4}-\d\d-\d\d)[Tt ](?P<hm>\d\d:\d\d):(?P<second>\d\d)"
                      r"(?:\.(?P<fraction>\d+))?(?P<zone>[Zz]|[+-]\d\d:\d\d)")
CURSOR_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,9})?~[A-Za-z0-9._-]{1,100}~[0-9]{1,15}$"


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
    since: Annotated[str | None, Query(max_length=64, json_schema_extra=DATE_TIME,
                                       description="entries at or after (RFC 3339, e.g. "
                                                   "2026-12-06T03:05:00Z)")] = None,
    until: Annotated[str | None, Query(max_length=64, json_schema_extra=DATE_TIME,
                                       description="entries at or before")] = None,
    request_id: Annotated[str | None, Query(max_length=64)] = None,
    query_id: Annotated[str | None, Query(max_length=64)] = None,
    text: Annotated[str | None, Query(max_length=200, description="text the message holds "
                                                                  "(any case)")] = None,
    before: Annotated[str | None, Query(max_length=200, pattern=CURSOR_PATTERN,
                                        description="the `next` cursor of the page "
                                                    "before")] = None,
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
    cursor = parse_cursor(before) if before is not None else None  # its pattern was checked
    wanted = Wanted(frozenset(asked), numeric, _instant("since", since),
                    _instant("until", until), request_id,
                    query_id, text, None if caller.is_admin else caller.tenant, cursor)
    found = await asyncio.to_thread(log_files.read, folder, wanted, limit + 1,
                                    lambda: ring_buffer().latest(ring_buffer().capacity))
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


def _instant(name: str, text: str | None) -> float | None:
    """An RFC 3339 date-time in epoch seconds (fractions past microseconds dropped, a leap
    second read as :59); a 400 naming the parameter for anything else."""
    if text is None:
        return None
    found = _RFC3339.fullmatch(text.strip())
    try:
        if found is None:
            raise ValueError(text)
        second = min(int(found["second"]), 59)
        fraction = (found["fraction"] or "")[:6]
        zone = found["zone"].upper()
        at = dt.datetime.fromisoformat(
            f"{found['date']}T{found['hm']}:{second:02d}{'.' + fraction if fraction else ''}"
            f"{'+00:00' if zone == 'Z' else zone}")
        return (at - _EPOCH).total_seconds()  # no overflow at the ends of the calendar
    except ValueError:
        raise InvalidInput(f"{name} is an RFC 3339 date-time, e.g. 2026-12-06T03:05:00Z",
                           code="invalid_time", details={name: text[:64]}) from None
