"""Metadata Catalog: table declarations (schema, checks, partitioning, sort key)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import CoreDep, require_role
from lakehouse.auth.identity import Caller, Role
from lakehouse.errors import Conflict, Unavailable
from lakehouse.ingest.keys import TableRef
from lakehouse.schema.declared import parse_declaration

router = APIRouter(prefix="/metadata", tags=["catalog"])


class ColumnCheck(BaseModel):
    column: str = Field(max_length=63)
    check: str = Field(max_length=20, description="ge, gt, le, lt, isin, notin, str_matches, "
                       "str_length")
    value: Any


class TableDeclaration(BaseModel):
    table: str = Field(max_length=63)
    columns: dict[str, Any] = Field(description="name → bool | int64 | float64 | string | "
                                    "{\"list\": type} | {\"struct\": {name: type}}")
    required: list[str] = []
    checks: list[ColumnCheck] = []
    strict: bool = True
    partition_by: str | None = None
    sort_key: list[str] = []


@router.post("/tables", status_code=201)
async def declare_table(
    body: TableDeclaration, core: CoreDep,
    caller: Annotated[Caller, Depends(require_role(Role.WRITER))],
) -> dict[str, Any]:
    """Declare a table's schema and value checks; records written to it must satisfy them."""
    if core.declarations is None:
        raise Unavailable("declarations are not available in this process")
    declared = parse_declaration(body.model_dump())
    ref = TableRef(caller.tenant, declared.name)
    if core.ingest is not None and any(
            t["table"] == declared.name and t["records"] for t in core.ingest.table_stats(
                caller.tenant)):
        raise Conflict("this table already has records; declare a table before writing to it",
                       code="table_has_records", details={"table": declared.name})
    await run_in_threadpool(core.declarations.declare, caller.tenant, declared)
    if core.ingest is not None:
        core.ingest.forget_declaration(ref)
    return {"tenant": caller.tenant, **declared.to_json()}
