"""Tenant Node: bulk loads of Parquet, CSV or NDJSON files into a table (the `load` flow)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.answers import RunStarted
from api.bodies import TABLE_NAME, TABLE_NAME_RULE, listed
from api.core import Core
from api.deps import CoreDep, require_role
from api.services import Service, accepted, url_on
from flows.load import start_load
from lakehouse.auth.identity import Caller, Role
from lakehouse.errors import LakehouseError, NotServed, Unavailable
from lakehouse.ingest.service import WritePathSchema
from lakehouse.load.loader import Loader, LoadRequest
from lakehouse.load.sources import FORMATS, roots_for
from lakehouse.schema.names import check_table_name

router = APIRouter(tags=["data"])

Writer = Annotated[Caller, Depends(require_role(Role.WRITER))]
# How long a request waits for the plan (schemas read, checked against the table) so that a
# bad source is answered here; a plan still running after it is answered 202 all the same.
PLAN_WAIT_S = 60.0


class LoadBody(BaseModel):
    # The README's sample, under the default LOAD_ROOTS (DATA_DIR) of `make run`.
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={
        "examples": [{"table": "events", "source": "data/samples/events.parquet"}]})

    table: str = Field(**TABLE_NAME, description=(
        f"The table to load into (created if new): {TABLE_NAME_RULE}"))
    source: str = Field(min_length=1, max_length=4096, json_schema_extra={
        "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"}, description=(
        "A file, a folder, a glob (`data/in/*.csv`, `**` for any depth) or an s3:// URI, "
        "under LOAD_ROOTS; relative paths are from the server's working directory"))
    format: str | None = Field(default=None, max_length=20,
                               json_schema_extra=listed(FORMATS, nullable=True), description=(
        "parquet, csv or ndjson (jsonl and json name ndjson); default: from each file's "
        "extension"))
    data_id_column: str | None = Field(default=None, max_length=200, description=(
        "The column holding each row's record key; default: \"{file stem}:{row number}\""))
    timestamp_column: str | None = Field(default=None, max_length=200, description=(
        "The column holding each row's time (partitions by its day); default: the load time"))


def _loader(request: Request, core: Core) -> Loader:
    """This app's Loader (its catalog, storage and write path), made once."""
    found: Loader | None = getattr(request.app.state, "loader", None)
    if found is None:
        if core.catalog is None or core.storage is None:
            raise NotServed("this process has no catalog or storage to load into",
                              code="load_not_served")
        live = WritePathSchema(core.ingest) if core.ingest is not None else None
        found = Loader(core.catalog, core.storage, roots_for(core.settings),
                       core.declarations, live_schema=live)
        request.app.state.loader = found
    return found


@router.post("/data/load", status_code=202, response_model=None,
             responses=accepted("the load's run id; follow it at GET /runs/{run_id}",
                                RunStarted))
async def load(body: LoadBody, request: Request, response: Response, core: CoreDep,
               caller: Writer) -> dict[str, str]:
    """Load files into one of the caller's tables as one snapshot; answers the run id.

    What the plan finds wrong (a missing or unparsable source, a path outside LOAD_ROOTS, a
    schema that conflicts with the table or its declaration, a bad table name) is answered
    here as a 4xx, and nothing is committed. The run's progress and outcome: GET /runs/{id}.
    """
    check_table_name(body.table)
    loader = _loader(request, core)
    load_request = LoadRequest(caller.tenant, body.table, body.source, body.format,
                               body.data_id_column, body.timestamp_column)
    dask = core.settings.dask_scheduler_address if core.settings.load_on_dask else ""
    watch = await asyncio.to_thread(start_load, load_request, loader, dask)
    await asyncio.to_thread(watch.wait_planned, PLAN_WAIT_S)
    if watch.error is not None:
        if isinstance(watch.error, LakehouseError):
            raise watch.error
        raise Unavailable(f"the load failed: {type(watch.error).__name__}: {watch.error}"[:500],
                          code="load_failed", details={"run_id": watch.run_id})
    response.headers["Location"] = url_on(Service.OPERATION, f"/runs/{watch.run_id}", request,
                                          core.settings)
    return {"run_id": watch.run_id}
