"""What the dashboard page (GET /dashboard) shows, in one answer: the history of the platform's
metrics this process keeps, the firing and pending alerts, the recent flush and compaction runs
(linked to their Prefect UI pages) and where the Prefect UI and the Dask dashboard are.

Runs are read from Prefect at most every RUNS_CACHE_S per viewer kind, so many open pages do
not multiply the requests. A caller who is not an admin sees the shared runs (the flush of the
log that every tenant shares, scheduled maintenance) and their own tenant's, never their
results (which name tables of other tenants)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort

from api.core import Core
from api.prefect_runs import prefect_client, runs_filter
from flows.run_results import SHARED_TAG, tenant_tag
from lakehouse.auth.identity import Caller
from lakehouse.telemetry.history import series

RUN_FLOWS = ("ingest", "compaction")  # a flush is a run of the ingest flow
RUNS_SHOWN = 12
RUNS_CACHE_S = 5.0
_runs_cache: dict[tuple[int, str | None], tuple[float, dict[str, Any]]] = {}


def links(core: Core) -> dict[str, str]:
    """The Prefect UI and the Dask dashboard as this process reaches them (the page puts its
    own host in place of a loopback one)."""
    settings = core.settings
    api = settings.prefect_api_url.rstrip("/")
    prefect_ui = api[:-len("/api")] if api.endswith("/api") else api
    scheduler = urlsplit(settings.dask_scheduler_address.replace("tls://", "tcp://"))
    dask = f"http://{scheduler.hostname or '127.0.0.1'}:{settings.dask_dashboard_port}/status"
    return {"prefect_ui": prefect_ui, "dask_dashboard": dask}


async def recent_runs(core: Core, caller: Caller) -> dict[str, Any]:
    tenant = None if caller.is_admin else caller.tenant
    key = (id(core), tenant)
    hit = _runs_cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < RUNS_CACHE_S:
        return hit[1]
    ui = links(core)["prefect_ui"]
    tags = None if tenant is None else [SHARED_TAG, tenant_tag(tenant)]
    try:
        async with prefect_client(core.settings.prefect_api_url) as client:
            runs = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=list(RUN_FLOWS))),
                flow_run_filter=runs_filter(tags=tags), sort=FlowRunSort.START_TIME_DESC,
                limit=RUNS_SHOWN)
            flows = {f.id: f.name for f in await client.read_flows(
                flow_filter=FlowFilter(name=FlowFilterName(any_=list(RUN_FLOWS))))}
    except Exception as exc:  # Prefect down: the page says so and shows the rest
        found: dict[str, Any] = {"runs": [], "error": "the Prefect API cannot be reached: "
                                 f"{type(exc).__name__}"}
    else:
        found = {"runs": [{
            "id": str(run.id), "flow": flows.get(run.flow_id, "?"),
            "state": run.state.type.value if run.state is not None else None,
            "started": run.start_time.isoformat() if run.start_time else None,
            "seconds": round(run.total_run_time.total_seconds(), 3),
            "url": f"{ui}/runs/flow-run/{run.id}"} for run in runs]}
    _runs_cache[key] = (time.monotonic(), found)
    return found


async def dashboard_data(core: Core, caller: Caller) -> dict[str, Any]:
    assert core.alerting is not None  # noqa: S101 - build_core always sets it
    alerts = core.alerting.listed()
    runs = await recent_runs(core, caller)
    return {"now": time.time(), "interval_s": core.settings.alert_eval_interval_s,
            "history": series(core.history.points()),
            "alerts": [a for a in alerts["alerts"] if a["state"] in ("firing", "pending")],
            "evaluated_at": alerts["evaluated_at"],
            "runs": runs["runs"], "runs_error": runs.get("error"),
            "links": links(core)}
