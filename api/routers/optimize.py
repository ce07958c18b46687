"""CBO Engine: optimize a query (without running it), the optimizer's own statistics, and the
cost model's settings."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict, Field

from api.bodies import StrictBody, listed
from api.deps import CoreDep, require_role
from api.routers.query import ExecuteBody, request_of, service
from lakehouse.auth.identity import Caller, Role
from lakehouse.errors import InvalidInput
from lakehouse.optimizer.cost_model import MIB, MODES, RULES, CostModel

router = APIRouter(prefix="/optimize", tags=["optimizer"])
Reader = Annotated[Caller, Depends(require_role(Role.READER))]
Admin = Annotated[Caller, Depends(require_role(Role.ADMIN))]


@router.post("/query")
async def optimize_query(body: ExecuteBody, core: CoreDep, caller: Reader) -> dict[str, Any]:
    """The optimized SQL, the physical plan with estimated rows and cost per step, and every
    decision taken: pushed predicates and columns, files pruned by partition and statistics,
    join order, strategy (single node, partial aggregate, broadcast or hash) and why."""
    found = service(core)
    planned = await run_in_threadpool(found.plan, caller.tenant, request_of(body, core, caller))
    plan = planned.optimized.plan
    total = sum(s.files_total for s in plan.scans)
    kept = sum(len(s.files) for s in plan.scans)
    return {"optimized_sql": plan.sql, "snapshot": planned.pin.snapshot,
            "planning_ms": round(planned.planning_ms, 3),
            "optimizer_ms": 0.0 if planned.reused else round(planned.optimized.planning_ms, 3),
            "plan_reused": planned.reused,
            "files": {"total": total, "kept": kept, "pruned": total - kept},
            "plan": plan.to_json()}


@router.get("/stats")
async def optimizer_stats(core: CoreDep, caller: Reader) -> dict[str, Any]:
    """Queries optimized, planning time percentiles, the share of files pruned, the
    accuracy of row estimates against the rows that came (median and p90 q-error), and how
    often a query's text reused the plan made for it before (`plan_cache`)."""
    found = service(core)
    plans = found.engine.plans
    return {**found.stats.summary(),
            "plan_cache": {"reused": plans.reused, "planned": plans.planned, "kept": len(plans)}}


class ConfigBody(StrictBody):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"broadcast_threshold_mb": 64, "mode": "auto"}]})

    broadcast_threshold_mb: float | None = Field(default=None, ge=0, le=1_000_000)
    target_fragment_mb: float | None = Field(default=None, gt=0, le=1_000_000)
    single_node_threshold_mb: float | None = Field(default=None, ge=0, le=1_000_000_000)
    max_fragments: int | None = Field(default=None, ge=1, le=10_000)
    scan_mb_per_s: float | None = Field(default=None, gt=0, le=1_000_000)
    # The code names the rules and modes in its own 400; the documents list them.
    rules_enabled: list[str] | None = Field(default=None, max_length=len(RULES),
                                            json_schema_extra={"items": listed(RULES)})
    mode: str | None = Field(default=None, max_length=20,
                             json_schema_extra=listed(MODES, nullable=True))


@router.get("/config")
async def get_config(core: CoreDep, caller: Reader) -> dict[str, Any]:
    """The cost model: thresholds, fragment size, the rules that run, the plan mode; and what
    the single-node threshold learned from the queries that ran (`learned`, null before any)."""
    found = service(core)
    return {**found.model.to_json(), "rules_available": list(RULES), "modes": list(MODES),
            "learned": found.learned.to_json() if found.learned is not None else None}


@router.put("/config")
async def put_config(body: ConfigBody, core: CoreDep, caller: Admin) -> dict[str, Any]:
    """Change the cost model (admins only); fields left out keep their value."""
    found = service(core)
    unknown = sorted(set(body.rules_enabled or ()) - set(RULES))
    if unknown or (body.mode is not None and body.mode not in MODES):
        raise InvalidInput("unknown rules or mode", code="invalid_config",
                           details={"unknown_rules": unknown, "rules": list(RULES),
                                    "modes": list(MODES)})
    model: CostModel = found.model
    changes: dict[str, Any] = {}
    for field, scale, target in (("broadcast_threshold_mb", MIB, "broadcast_threshold_bytes"),
                                 ("target_fragment_mb", MIB, "target_fragment_bytes"),
                                 ("single_node_threshold_mb", MIB,
                                  "single_node_threshold_bytes"),
                                 ("scan_mb_per_s", MIB, "scan_bytes_per_s")):
        value = getattr(body, field)
        if value is not None:
            changes[target] = int(value * scale) if target.endswith("bytes") else value * scale
    if body.max_fragments is not None:
        changes["max_fragments"] = body.max_fragments
    if body.rules_enabled is not None:
        changes["rules"] = tuple(r for r in RULES if r in body.rules_enabled)
    if body.mode is not None:
        changes["mode"] = body.mode
    found.model = replace(model, **changes)
    return {**found.model.to_json(), "rules_available": list(RULES), "modes": list(MODES)}
