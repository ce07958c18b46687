"""Metadata Catalog: per-table maintenance options (retention period, compaction overrides)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict, Field

from api.bodies import TABLE_NAME, TABLE_NAME_RULE, StrictBody
from api.core import Core
from api.deps import CoreDep, require_role
from flows.mirror import MirrorContext, start_backfill
from lakehouse.auth.identity import Caller, Role
from lakehouse.catalog.options import (
    MIN_FILES,
    RETENTION_DAYS,
    TARGET_FILE_MB,
    TableOptions,
    parse_options,
)
from lakehouse.catalog.table_options import TableOptionsStore
from lakehouse.errors import LakehouseError, NotFound, NotServed, Unavailable
from lakehouse.executor.scan import file_schemas
from lakehouse.schema.names import check_table_name
from lakehouse.serving.columns import check_servable
from lakehouse.serving.keeper import next_epoch, table_lock
from lakehouse.serving.mirror import forget

router = APIRouter(prefix="/metadata", tags=["catalog"])
SCHEMAS_CHECKED = 50  # the newest files' schemas checked before a table is marked for serving
PLAN_WAIT_S = 10.0  # the answer says how many files the backfill copies, once it knows


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
    serving: Literal["clickhouse"] | None = Field(default=None, description=(
        "\"clickhouse\": mirror the table into the ClickHouse serving store (a backfill run "
        "copies it, then every flush, load and compaction keeps it in step) so queries may "
        "run there (`\"engine\": \"clickhouse\"`); null: no mirror (an existing one is "
        "dropped)"))


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
    """Replace the table's options; a retention period hides older rows from the next read on.
    Marking it for serving starts the backfill run (its id in `mirror.run_id`); unmarking drops
    the mirror."""
    await _check_table(core, caller.tenant, table)
    options = parse_options(body.model_dump())
    mirror = await run_in_threadpool(_apply, core, caller.tenant, table, options)
    return {"tenant": caller.tenant, "table": table, **options.to_json(),
            **({"mirror": mirror} if mirror else {})}


def _on_store(call: Callable[[], None]) -> None:
    """A ClickHouse call; its failure answers 503 (the store is away), never a 500."""
    try:
        call()
    except LakehouseError:
        raise
    except Exception as exc:
        raise Unavailable(f"the ClickHouse serving store failed: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}"[:400],
                          code="clickhouse_unavailable") from exc


def _apply(core: Core, tenant: str, table: str, options: TableOptions) -> dict[str, Any]:
    """Store the options; start or drop the mirror when `serving` changes."""
    store = _store(core)
    before = store.get(tenant, table)
    assert core.catalog is not None and core.storage is not None  # noqa: S101 - _check_table
    if options.serving == before.serving:
        store.put(tenant, table, options)
        if options.serving is not None and options.retention_s != before.retention_s:
            with table_lock(tenant, table):
                _on_store(lambda: core.serving_store().set_retention(tenant, table,
                                                                     options.retention_s))
        return {}
    if options.serving is None:
        catalog = core.catalog
        with table_lock(tenant, table):  # dropped first: a failure leaves it served, whole
            _on_store(lambda: forget(catalog, core.serving_store(), tenant, table))
            next_epoch(tenant, table)
            store.put(tenant, table, options)
        return {"dropped": True}
    serving = core.serving_store()  # 503 before anything is stored when it cannot open
    newest = sorted(core.catalog.files(tenant, table), key=lambda f: -(f.snapshot_added or 0))
    for schema in file_schemas(core.storage, [f.path for f in newest[:SCHEMAS_CHECKED]]):
        check_servable(schema)
    store.put(tenant, table, options)
    watch = start_backfill(MirrorContext(core.catalog, core.storage, store, serving), tenant,
                           table)
    watch.wait_planned(timeout_s=PLAN_WAIT_S)
    return {"run_id": watch.run_id, "files": watch.total, "state": "backfilling"}
