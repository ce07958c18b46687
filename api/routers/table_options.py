"""Metadata Catalog: per-table maintenance options (retention period, compaction overrides)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict, Field

from api.bodies import TABLE_NAME, TABLE_NAME_RULE, StrictBody
from api.core import Core
from api.deps import CoreDep, require_role
from lakehouse.auth.identity import Caller, Role
from lakehouse.catalog.options import MIN_FILES, RETENTION_DAYS, TARGET_FILE_MB, parse_options
from lakehouse.catalog.table_options import TableOptionsStore
from lakehouse.errors import NotFound, NotServed
from lakehouse.schema.names import check_table_name

router = APIRouter(prefix="/metadata", tags=["catalog"])


class OptionsBody(StrictBody):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"retention_days": 365, "target_file_mb": 128, "min_files": 4}]})

    retention_days: float | None = Field(default=None, ge=RETENTION_DAYS[0],
                                         le=RETENTION_DAYS[1], description=(
        "Rows older than this many days are hidden from reads at once, and files holding only "
        "such rows are removed by the daily `retention` run; null: keep everything"))
    target_file_mb: float | None = Field(default=None, ge=TARGET_FILE_MB[0],
                                         le=TARGET_FILE_MB[1], description=(
        "Compaction's output size for this table; null: COMPACTION_TARGET_FILE_MB"))
    min_files: int | None = Field(default=None, ge=MIN_FILES[0], le=MIN_FILES[1], description=(
        "Small files a partition needs before compaction merges them; null: "
        "COMPACTION_MIN_FILES"))


def _store(core: Core) -> TableOptionsStore:
    if core.table_options is None:
        raise NotServed("table options are not available in this process")
    return core.table_options


async def _check_table(core: Core, tenant: str, table: str) -> None:
    check_table_name(table)
    if core.catalog is None or await run_in_threadpool(core.catalog.table, tenant,
                                                       table) is None:
        raise NotFound(f"no table {table!r} in the catalog; a table is created by its first "
                       "flush or load (POST /data/flush flushes records written so far)",
                       details={"table": table})


TablePath = Annotated[str, Path(**TABLE_NAME, description=TABLE_NAME_RULE, examples=["records"])]


@router.get("/tables/{table}/options")
async def get_options(table: TablePath, core: CoreDep,
                      caller: Annotated[Caller, Depends(require_role(Role.READER))],
                      ) -> dict[str, Any]:
    """The table's retention period and compaction overrides (null: the defaults apply)."""
    await _check_table(core, caller.tenant, table)
    found = await run_in_threadpool(_store(core).get, caller.tenant, table)
    return {"tenant": caller.tenant, "table": table, **found.to_json()}


@router.put("/tables/{table}/options")
async def put_options(table: TablePath, body: OptionsBody, core: CoreDep,
                      caller: Annotated[Caller, Depends(require_role(Role.WRITER))],
                      ) -> dict[str, Any]:
    """Replace the table's options; a retention period hides older rows from the next read on."""
    await _check_table(core, caller.tenant, table)
    options = parse_options(body.model_dump())
    await run_in_threadpool(_store(core).put, caller.tenant, table, options)
    return {"tenant": caller.tenant, "table": table, **options.to_json()}
