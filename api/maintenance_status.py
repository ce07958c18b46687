"""What the operators watch of table maintenance: the compaction backlog per tenant and the last
run of each maintenance deployment. Shared by GET /metadata/stats and GET /metrics, cached
briefly (it reads every live file's row and asks Prefect).

A tenant's view (`tenant=`) has its own backlog, and the last run among its own and the shared
ones, whose result is cut to its own tables (flows/shared_results.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort

from api.core import Core
from api.prefect_runs import prefect_client, run_result, runs_filter
from flows.run_results import SHARED_TAG, tenant_tag
from flows.shared_results import tenant_view
from lakehouse.compaction.planner import backlog
from lakehouse.storage.maintenance import table_files
from tasks.maintenance import policy_from

# The flows of the scheduled deployments in prefect.yaml (housekeeping is deployed as "hourly").
MAINTENANCE_FLOWS = ("compaction", "retention", "cleanup", "housekeeping")
CACHE_S = 10.0
_cache: dict[tuple[int, str | None], tuple[float, dict[str, Any]]] = {}


async def maintenance_status(core: Core, tenant: str | None = None) -> dict[str, Any]:
    """{"backlog": {tenant: {...}}, "last_runs": {flow: {...} | None}} (cached CACHE_S), of
    every tenant (None: the operators' view) or of one."""
    key = (id(core), tenant)
    hit = _cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_S:
        return hit[1]
    backlog_now = await asyncio.to_thread(_backlog, core)
    status = {"backlog": backlog_now if tenant is None else
              {t: b for t, b in backlog_now.items() if t == tenant},
              "last_runs": await _last_runs(core, tenant)}
    _cache[key] = (time.monotonic(), status)
    if tenant is None:
        core.metrics.observe_maintenance(status["backlog"], status["last_runs"])
    return status


def _backlog(core: Core) -> dict[str, dict[str, int]]:
    if core.catalog is None or core.table_options is None:
        return {}
    tables = table_files(core.catalog, core.table_options)
    return backlog(tables, policy_from(core.settings))


async def _last_runs(core: Core, tenant: str | None) -> dict[str, Any]:
    """Per maintenance flow, the last run that actually started (a deployment's future
    scheduled runs have no start time and are not runs yet), or None if none has."""
    found: dict[str, Any] = {}
    tags = None if tenant is None else [SHARED_TAG, tenant_tag(tenant)]
    try:
        async with prefect_client(core.settings.prefect_api_url) as client:
            for name in MAINTENANCE_FLOWS:
                runs = await client.read_flow_runs(
                    flow_filter=FlowFilter(name=FlowFilterName(any_=[name])),
                    flow_run_filter=runs_filter(tags=tags), sort=FlowRunSort.START_TIME_DESC,
                    limit=1)
                run = runs[0] if runs else None
                succeeded = runs if run is not None and _completed(run) else \
                    await client.read_flow_runs(
                        flow_filter=FlowFilter(name=FlowFilterName(any_=[name])),
                        flow_run_filter=runs_filter(StateType.COMPLETED, tags),
                        sort=FlowRunSort.END_TIME_DESC, limit=1)
                result = None if run is None else await run_result(client, run)
                if run is not None and tenant is not None and SHARED_TAG in run.tags:
                    result = tenant_view(result, tenant, name)
                found[name] = None if run is None else {
                    "id": str(run.id), "name": run.name,
                    "state": run.state.type.value if run.state is not None else None,
                    "started": run.start_time.isoformat() if run.start_time else None,
                    "ended": run.end_time.isoformat() if run.end_time else None,
                    "ended_at": run.end_time.timestamp() if run.end_time else None,
                    "seconds": run.total_run_time.total_seconds(),
                    "succeeded_at": succeeded[0].end_time.timestamp()
                    if succeeded and succeeded[0].end_time else None,
                    "result": result}
    except Exception as exc:  # any failure of Prefect is reported, never raised
        return {"error": f"the Prefect API cannot be reached: {type(exc).__name__}"}
    return found


def _completed(run: FlowRun) -> bool:
    return run.state is not None and run.state.type is StateType.COMPLETED
