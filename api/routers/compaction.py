"""CBO Engine: compaction on demand (the same flow the `compaction` deployment runs)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ConfigDict, Field

from api.answers import RunStarted
from api.bodies import TABLE_NAME, TABLE_NAME_RULE, StrictBody
from api.core import Core
from api.deps import CoreDep, require_role
from api.services import Service, accepted, url_on
from flows.compaction import start_compaction
from lakehouse.auth.identity import Caller, Role
from lakehouse.errors import NotFound, NotServed
from lakehouse.schema.names import check_table_name
from tasks.maintenance import MaintenanceContext, maintenance_context_of

router = APIRouter(tags=["maintenance"])

Writer = Annotated[Caller, Depends(require_role(Role.WRITER))]


class CompactBody(StrictBody):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"table": "records", "dry_run": True}]})

    table: str | None = Field(default=None, **TABLE_NAME, description=(
        f"One table of the caller's tenant ({TABLE_NAME_RULE}); default: all"))
    dry_run: bool = Field(default=False, description="Report the plan, write nothing")


def _context(request: Request, core: Core) -> MaintenanceContext:
    """The maintenance context of this app (its catalog and storage), made once."""
    found: MaintenanceContext | None = getattr(request.app.state, "maintenance_context", None)
    if found is None:
        if core.catalog is None or core.storage is None or core.table_options is None:
            raise NotServed("this process has no catalog or storage to compact",
                              code="compaction_not_served")
        found = maintenance_context_of(core.settings, core.catalog, core.storage,
                                       core.table_options)
        request.app.state.maintenance_context = found
    return found


@router.post("/optimize/compact", status_code=202, response_model=None,
             responses=accepted("the compaction's run id; follow it at GET /runs/{run_id}",
                                RunStarted))
async def compact(body: CompactBody, request: Request, response: Response, core: CoreDep,
                  caller: Writer) -> dict[str, str]:
    """Start a compaction run of the caller's tables (an admin naming no tenant with
    X-Tenant-Id: every tenant's); answers the run id. Its plan, progress and files and bytes
    before and after: GET /runs/{run_id} on the Operation Node."""
    tenant: str | None = caller.tenant
    if caller.is_admin and "x-tenant-id" not in request.headers and body.table is None:
        tenant = None
    if body.table is not None:
        check_table_name(body.table)
        if core.catalog is None or await asyncio.to_thread(core.catalog.table, caller.tenant,
                                                           body.table) is None:
            raise NotFound(f"no table {body.table!r} in the catalog; a table is created by its "
                           "first flush or load (POST /data/flush)",
                           details={"table": body.table})
    context = _context(request, core)
    started = await asyncio.to_thread(start_compaction, context, tenant, body.table,
                                      body.dry_run)
    response.headers["Location"] = url_on(Service.OPERATION, f"/runs/{started.run_id}",
                                          request, core.settings)
    return {"run_id": started.run_id}
