"""`GET /health`: the seed's shape plus the real state of what this service depends on."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import get_core
from api.services import ServiceSpec
from lakehouse import __version__


def health_router(spec: ServiceSpec) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health", summary=f"Health of the {spec.title}")
    async def health(request: Request) -> JSONResponse:
        """`healthy` when every check passes; `degraded` (200) when a non-critical dependency
        (Prefect, Dask) is down or the catalog is slow to answer; `unhealthy` (503) when the
        catalog is unreachable, or has not answered for 30 s."""
        core = get_core(request)
        checks = await core.checks(dask=spec.needs_dask, wal=spec.service.value == "tenant")
        if all(c.ok for c in checks):
            status, code = "healthy", 200
        elif all(c.ok for c in checks if c.critical):
            status, code = "degraded", 200
        else:
            status, code = "unhealthy", 503
        body: dict[str, Any] = {
            "status": status,
            "service": spec.title,
            "version": __version__,
            "time": dt.datetime.now(dt.UTC).isoformat(),
            "environment": core.settings.environment.value,
            "uptime_s": round(dt.datetime.now(dt.UTC).timestamp() - core.started_at, 1),
            "checks": {c.name: c.to_json() for c in checks},
        }
        return JSONResponse(body, status_code=code)

    return router
