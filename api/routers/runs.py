"""Operation Node: the Prefect runs of long operations (flush, load, compaction), per tenant."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Query
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound

from api.answers import RunStatus
from api.bodies import listed
from api.core import Core
from api.deps import CoreDep, require_role
from api.prefect_runs import NOT_STARTED, prefect_client, run_result, runs_filter
from flows.run_results import SHARED_TAG, recall, recall_tags, tenant_tag
from flows.shared_results import HIDDEN_ERROR, tenant_view
from lakehouse.auth.identity import Caller, Role
from lakehouse.errors import InvalidInput, NotFound, Unavailable

router = APIRouter(prefix="/runs", tags=["runs"])
Reader = Annotated[Caller, Depends(require_role(Role.READER))]


def _client(core: Core) -> PrefectClient:
    return prefect_client(core.settings.prefect_api_url)


def _visible(tags: list[str] | tuple[str, ...] | None, caller: Caller) -> bool:
    """Admins see every run; a tenant its own and the shared ones (of those, only its parts:
    `_for`). A run of this process started without tags (a tool's) is the admins'."""
    return caller.is_admin or bool({SHARED_TAG, tenant_tag(caller.tenant)} & set(tags or ()))


def _for(caller: Caller, tags: list[str] | tuple[str, ...] | None, flow: str | None,
         described: dict[str, Any]) -> dict[str, Any]:
    """A run's description as the caller may see it: a shared run's result and error cut to
    the caller's tenant (flows/shared_results.py)."""
    if caller.is_admin or SHARED_TAG not in (tags or ()):
        return described
    shown = {**described, "result": tenant_view(described.get("result"), caller.tenant, flow)}
    if described.get("error"):
        shown["error"] = HIDDEN_ERROR
    return shown


async def _describe(client: PrefectClient, run: FlowRun, flows: dict[uuid.UUID, str],
                    caller: Caller) -> dict[str, Any]:
    if run.flow_id not in flows:
        flows[run.flow_id] = (await client.read_flow(run.flow_id)).name
    tasks = await client.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    done = sum(1 for t in tasks if t.state is not None and t.state.is_final())
    state = run.state
    failed = state is not None and (state.is_failed() or state.is_crashed())
    return _for(caller, run.tags, flows[run.flow_id], {
        "id": str(run.id), "name": run.name, "flow": flows[run.flow_id],
        "state": state.type.value if state is not None else None,
        "progress": {"done": done, "total": len(tasks)},
        "started": run.start_time.isoformat() if run.start_time else None,
        "ended": run.end_time.isoformat() if run.end_time else None,
        "error": (state.message if failed and state is not None else None),
        "result": await run_result(client, run),
    })


@router.get("/{run_id}", response_model=None, responses={200: {"model": RunStatus}})
async def get_run(run_id: str, core: CoreDep, caller: Reader) -> dict[str, Any]:
    """A run's state as Prefect names it, its progress (tasks done/total) and its result."""
    local = recall(run_id) if run_id.startswith("local-") else None
    if local is not None:  # ran without Prefect (it was unreachable): only this process knows
        tags = recall_tags(run_id)
        if not _visible(tags, caller):
            raise NotFound(f"no run {run_id!r}", details={"run_id": run_id[:64]})
        state = str(local.get("state", "COMPLETED"))
        return _for(caller, tags, local.get("flow"), {
            "id": run_id, "name": run_id, "flow": local.get("flow"), "state": state,
            "progress": {"done": 1, "total": 1}, "started": None, "ended": None,
            "error": local.get("error"), "result": local})
    try:
        wanted = uuid.UUID(run_id)
    except ValueError as exc:
        raise NotFound(f"no run {run_id!r}", details={"run_id": run_id[:64]}) from exc
    try:
        async with _client(core) as client:
            run = await client.read_flow_run(wanted)
            if not _visible(run.tags, caller):
                raise NotFound(f"no run {run_id!r}", details={"run_id": run_id})
            return await _describe(client, run, {}, caller)
    except ObjectNotFound as exc:
        raise NotFound(f"no run {run_id!r}", details={"run_id": run_id}) from exc
    except httpx.HTTPError as exc:
        raise Unavailable("the Prefect API cannot be reached; runs cannot be listed now",
                          details={"prefect_api_url": core.settings.prefect_api_url}) from exc


@router.get("")
async def list_runs(
    core: CoreDep, caller: Reader,
    flow: Annotated[str | None, Query(max_length=100)] = None,
    state: Annotated[str | None, Query(
        max_length=20, json_schema_extra=listed(s.value.lower() for s in StateType),
        description="Only runs in this state (e.g. scheduled for the future "
        "runs of a deployment, failed); without it, the runs that started")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """Runs the caller's tenant may see (its own and the shared ones): those that started,
    newest first; with `state=scheduled` (or pending) the runs still to come, soonest first."""
    wanted = _state(state)
    run_filter = runs_filter(wanted, None if caller.is_admin else
                             [SHARED_TAG, tenant_tag(caller.tenant)])
    flow_filter = FlowFilter(name=FlowFilterName(any_=[flow])) if flow else None
    sort = (FlowRunSort.EXPECTED_START_TIME_ASC if wanted in NOT_STARTED
            else FlowRunSort.START_TIME_DESC)
    try:
        async with _client(core) as client:
            runs = await client.read_flow_runs(
                flow_filter=flow_filter, flow_run_filter=run_filter, sort=sort, limit=limit)
            names: dict[uuid.UUID, str] = {}
            described = [await _describe(client, run, names, caller) for run in runs]
    except httpx.HTTPError as exc:
        raise Unavailable("the Prefect API cannot be reached; runs cannot be listed now",
                          details={"prefect_api_url": core.settings.prefect_api_url}) from exc
    return {"count": len(described), "runs": described}


def _state(state: str | None) -> StateType | None:
    if state is None or not state.strip():
        return None
    try:
        return StateType(state.strip().upper())
    except ValueError as exc:
        raise InvalidInput(
            f"unknown run state {state[:20]!r}; use one of "
            f"{', '.join(s.value.lower() for s in StateType)}",
            code="invalid_state", details={"state": state[:20]}) from exc
