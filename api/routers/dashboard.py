"""The dashboard: a page the Monitoring service serves (GET /dashboard), its script and style,
a login on the same origin (POST /dashboard/login, the Auth Gateway's login), and the data it
polls (GET /dashboard/data). Everything is served from this package: no CDN, works offline."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response

from api.dashboard_data import dashboard_data
from api.deps import CoreDep, require_role
from api.routers import auth
from lakehouse.auth.identity import Caller, Role

router = APIRouter(tags=["monitoring"])
STATIC = Path(__file__).resolve().parent.parent / "static"
# The page runs only its own script and style, talks only to its own origin, is never framed.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff",
           "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"}


@cache
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard_page() -> Response:
    """The operators' page: ingest, backlog, queries, errors, runs, Dask and alerts, refreshing
    on its own. It asks for a login (or a token) and holds no data until then."""
    return Response(_asset("dashboard.html"), media_type="text/html; charset=utf-8",
                    headers=HEADERS)


@router.get("/dashboard/dashboard.js", include_in_schema=False)
async def dashboard_script() -> Response:
    return Response(_asset("dashboard.js"), media_type="text/javascript; charset=utf-8",
                    headers=HEADERS)


@router.get("/dashboard/dashboard.css", include_in_schema=False)
async def dashboard_style() -> Response:
    return Response(_asset("dashboard.css"), media_type="text/css; charset=utf-8",
                    headers=HEADERS)


router.add_api_route(
    "/dashboard/login", auth.login, methods=["POST"], response_model=auth.TokenResponse,
    summary="Log in from the dashboard",
    description="The Auth Gateway's `POST /auth/login`, on the Monitoring service's own origin "
                "so the page can sign in without cross-origin requests.")


@router.get("/dashboard/data")
async def data(core: CoreDep,
               caller: Annotated[Caller, Depends(require_role(Role.READER))]) -> dict[str, Any]:
    """What the page draws: about an hour of the platform's metrics (one point per alert
    round), the firing and pending alerts, recent flush and compaction runs with their Prefect
    UI pages, and where the Prefect UI and the Dask dashboard are. Platform totals only; runs
    are the shared ones and the caller's tenant's (admins: all)."""
    return await dashboard_data(core, caller)
