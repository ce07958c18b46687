"""Monitoring: the platform's metrics and its recent logs."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from api.bodies import listed
from api.deps import CoreDep, require_role
from api.maintenance_status import maintenance_status
from lakehouse.auth.identity import Caller, Role
from lakehouse.errors import InvalidInput
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
async def logs(
    caller: Annotated[Caller, Depends(require_role(Role.ADMIN))],
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
    level: Annotated[str, Query(max_length=10, json_schema_extra=listed(LEVELS))] = "INFO",
) -> dict[str, Any]:
    """The latest log lines of this process, newest last (admins only: logs span tenants)."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise InvalidInput(f"level is one of {', '.join(LEVELS)}",
                           details={"level": level})
    entries = ring_buffer().latest(limit, numeric)
    return {"count": len(entries), "logs": entries}
