"""Metadata Catalog: tables, partitions, what can prune a scan, catalog statistics, and
table declarations (schema, checks, partitioning, sort key)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ConfigDict, Field

from api.bodies import TABLE_NAME, TABLE_NAME_RULE, StrictBody, component
from api.core import Core
from api.deps import CoreDep, require_role
from api.maintenance_status import maintenance_status
from api.query_params import MAX_COUNT
from lakehouse.auth.identity import Caller, Role
from lakehouse.catalog import declare
from lakehouse.catalog.lake import Catalog, DataFile, TableInfo
from lakehouse.catalog.time_travel import one_snapshot, require_snapshot
from lakehouse.errors import Conflict, LakehouseError, NotFound, NotServed, Unavailable
from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.service import IngestService
from lakehouse.optimizer.pruning import may_match, parse_filter
from lakehouse.schema import STRING_TYPE, FieldType
from lakehouse.schema.declared import TYPE_NAMES, parse_declaration
from lakehouse.schema.names import NAME_PATTERN, check_table_name
from lakehouse.schema.types import timestamp_type
from lakehouse.serving.keeper import served
from lakehouse.serving.mirror import state_of
from lakehouse.sql.schema_view import KEY_COLUMN, system_columns
from lakehouse.storage.type_repair import REPAIR_KIND, quarantined_files

log = logging.getLogger(__name__)
router = APIRouter(prefix="/metadata", tags=["catalog"])
REPAIRS_LISTED = 1000  # snapshots searched for the quarantines of type repairs
_SYSTEM_TYPES = {"data_id": STRING_TYPE.describe(), "_timestamp": timestamp_type("UTC").describe()}


class ColumnCheck(StrictBody):
    mistaken: ClassVar[Mapping[str, str]] = {
        "name": "column", "field": "column", "op": "check", "operator": "check",
        "kind": "check", "type": "check", "values": "value"}

    column: str = Field(max_length=63)
    check: str = Field(max_length=20, description="ge, gt, le, lt, isin, notin, str_matches, "
                       "str_length")
    value: Any


class TableDeclaration(StrictBody):
    mistaken: ClassVar[Mapping[str, str]] = {
        "name": "table", "table_name": "table", "schema": "columns", "fields": "columns",
        "partition": "partition_by", "partitioned_by": "partition_by",
        "partition_column": "partition_by", "sort_by": "sort_key", "order_by": "sort_key",
        "constraints": "checks", "validations": "checks", "not_null": "required"}

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "table": "orders",
        "columns": {"customer_id": "int64", "amount": "float64", "city": "string",
                    "tags": {"list": "string"}},
        "required": ["customer_id", "amount"],
        "checks": [{"column": "amount", "check": "ge", "value": 0},
                   {"column": "city", "check": "isin", "value": ["Oslo", "Rome"]}],
        "partition_by": "city"}]})

    table: str = Field(**TABLE_NAME, description=TABLE_NAME_RULE)
    columns: dict[str, Any] = Field(description=f"name → {TYPE_NAMES}",
                                    json_schema_extra={"minProperties": 1, "propertyNames": {
                                        "pattern": f"^{NAME_PATTERN.pattern}$",
                                        "not": {"const": "data_id"}},
                                        "additionalProperties": component("ColumnType")})
    required: list[str] = Field(default_factory=list)
    checks: list[ColumnCheck] = Field(default_factory=list)
    strict: bool = True
    partition_by: str | None = None
    sort_key: list[str] = Field(default_factory=list)


@router.post("/tables", status_code=201)
async def declare_table(
    body: TableDeclaration, core: CoreDep,
    caller: Annotated[Caller, Depends(require_role(Role.WRITER))],
) -> dict[str, Any]:
    """Declare a table's schema and value checks; records written to it must satisfy them.
    The table exists from the snapshot this commits on: listed, and queried, with no rows."""
    if core.declarations is None:
        raise NotServed("declarations are not available in this process")
    catalog = _catalog(core)
    declared = parse_declaration(body.model_dump())
    ref = TableRef(caller.tenant, declared.name)
    if core.ingest is not None and any(
            t["table"] == declared.name and t["records"] for t in core.ingest.table_stats(
                caller.tenant)):
        raise Conflict("this table already has records; declare a table before writing to it",
                       code="table_has_records", details={"table": declared.name})
    snapshot = await run_in_threadpool(declare.declare_table, core.declarations, catalog,
                                       caller.tenant, declared)
    if core.ingest is not None:
        core.ingest.forget_declaration(ref)
    return {"tenant": caller.tenant, **declared.to_json(), "snapshot": snapshot}


def _scope(request: Request, caller: Caller) -> str | None:
    """The tenant to describe: the caller's; an admin naming none with X-Tenant-Id sees all."""
    if caller.is_admin and "x-tenant-id" not in request.headers:
        return None
    return caller.tenant


def _catalog(core: Core) -> Catalog:
    if core.catalog is None:
        raise Unavailable("the catalog is not open in this process")
    return core.catalog


def _table_json(core: Core, table: TableInfo, snapshot: int | None,
                repairs: list[tuple[int, dict[str, Any]]] | None = None) -> dict[str, Any]:
    files = _catalog(core).files(table.tenant, table.name, snapshot)
    return {
        "tenant": table.tenant, "table": table.name, "schema": table.schema,
        "rows": sum(f.row_count for f in files), "bytes": sum(f.byte_size for f in files),
        "files": len(files),
        "partitioning": f"identity({table.partition_by})" if table.partition_by
        else "day(_timestamp)",
        "sort_key": list(table.sort_key), "created_snapshot": table.created_snapshot,
        "schema_snapshot": table.schema_snapshot,
        # Every column a query may name; `hidden` ones are left out of `SELECT *`.
        "columns": [*({"name": c.name, "type": _SYSTEM_TYPES[c.name], "system": True,
                       "hidden": c.hidden}
                      for c in system_columns(made_up_key=not table.user_keys)),
                    *({"name": name, "type": kind.describe(), "system": False,
                       "hidden": False}
                      for name, kind in FieldType.from_json(table.schema).fields)],
        "user_keys": table.user_keys,
        "quarantined_files": quarantined_files(
            _repairs(core) if repairs is None else repairs, table.tenant, table.name),
    }


def _mirror_states(core: Core, tenant: str | None,
                   current: int) -> dict[tuple[str, str], dict[str, Any]]:
    """Each served table's mirror: rows, the snapshot it has reached, its lag (now: a query
    routed there reads the newest rows whatever snapshot the listing describes)."""
    if core.table_options is None:
        return {}
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for key in served(core.table_options, tenant):
        try:
            state = state_of(_catalog(core), core.serving_store(), *key, now=time.time())
            found[key] = {**state.to_json(), "behind_snapshots": max(0, current - state.snapshot)
                          if not state.current else 0}
        except LakehouseError as exc:  # the store is not reachable from this process
            found[key] = {"store": "clickhouse", "error": exc.message}
        except Exception as exc:  # the store failed: the listing still answers
            log.warning("a mirror's state could not be read", extra={
                "tenant": key[0], "table": key[1], "error": f"{type(exc).__name__}: {exc}"})
            found[key] = {"store": "clickhouse", "error": "the ClickHouse serving store "
                          f"failed: {type(exc).__name__}"}
    return found


def _repairs(core: Core) -> list[tuple[int, dict[str, Any]]]:
    """The summaries of recent repair snapshots (see lakehouse/storage/type_repair.py)."""
    return [(s.snapshot_id, dict(s.summary)) for s in _catalog(core).snapshots(
        REPAIRS_LISTED) if s.kind == REPAIR_KIND]


@router.get("/tables")
async def list_tables(
    request: Request, core: CoreDep, caller: Annotated[Caller, Depends(require_role(Role.READER))],
    snapshot: Annotated[int | None, Query(ge=1, le=MAX_COUNT, description="Describe the "
                                          "tables as of this snapshot (time travel)")] = None,
    table: Annotated[str | None, Query(**TABLE_NAME, description=f"Only this table: "
                                                                f"{TABLE_NAME_RULE}")] = None,
) -> dict[str, Any]:
    """Tables with schema, rows, bytes, files, partitioning and the snapshot described."""
    catalog = _catalog(core)
    current = await run_in_threadpool(catalog.current_snapshot)
    if snapshot is not None:
        await run_in_threadpool(require_snapshot, catalog, snapshot)
    tenant = _scope(request, caller)
    tables = await run_in_threadpool(catalog.tables, tenant, snapshot)
    if table is not None:
        tables = [t for t in tables if t.name == table]
    repairs = await run_in_threadpool(_repairs, core)  # once per request, not per table
    described = [await run_in_threadpool(_table_json, core, t, snapshot, repairs)
                 for t in tables]
    unflushed = {(s["tenant"], s["table"]): s["unflushed_records"]
                 for s in (core.ingest.table_stats(tenant) if core.ingest else [])}
    mirrors = await run_in_threadpool(_mirror_states, core, tenant, current)
    for entry in described:
        entry["serving"] = mirrors.get((entry["tenant"], entry["table"]))
        entry["unflushed_rows"] = unflushed.get((entry["tenant"], entry["table"]), 0)
        if entry["unflushed_rows"]:  # records in the log carry keys: queries show data_id
            for column in entry["columns"]:
                column["hidden"] = column["hidden"] and column["name"] != KEY_COLUMN
    return {"snapshot": snapshot or current, "current_snapshot": current, "tables": described}


class PartitionsQuery(StrictBody):
    mistaken: ClassVar[Mapping[str, str]] = {
        "table_name": "table", "name": "table", "where": "filter", "predicate": "filter",
        "condition": "filter", "snapshot_id": "snapshot", "version": "snapshot",
        "as_of": "snapshot"}

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"table": "records", "filter": "age > 25"}]})

    table: str = Field(**TABLE_NAME, description=TABLE_NAME_RULE)
    filter: str | None = Field(default=None, max_length=10_000,
                               description="SQL condition, e.g. age > 30 AND city = 'Oslo'")
    snapshot: int | None = Field(default=None, ge=1, le=MAX_COUNT, description="Describe the "
                                 "partitions as of this snapshot (time travel); or ?snapshot=N")


@router.post("/partitions")
async def partitions(
    body: PartitionsQuery, request: Request, core: CoreDep,
    caller: Annotated[Caller, Depends(require_role(Role.READER))],
    snapshot: Annotated[int | None, Query(ge=1, le=MAX_COUNT, description="Describe the "
                                          "partitions as of this snapshot (time travel)")] = None,
) -> dict[str, Any]:
    """Partitions with rows, bytes, files and min/max per column; with a filter, only those the
    statistics cannot rule out, and how many files and partitions were pruned."""
    catalog = _catalog(core)
    check_table_name(body.table)
    comparisons = parse_filter(body.filter) if body.filter else ()
    at = one_snapshot(snapshot, body.snapshot)
    if at is None:
        at = await run_in_threadpool(catalog.current_snapshot)
    else:
        await run_in_threadpool(require_snapshot, catalog, at)
    found = await run_in_threadpool(catalog.table, caller.tenant, body.table, at)
    if found is None:
        raise NotFound(f"no table {body.table!r}", details={"table": body.table})
    files = await run_in_threadpool(catalog.files, caller.tenant, body.table, at)
    kept = [f for f in files if may_match(f, comparisons)]
    groups: dict[str, list[DataFile]] = {}
    for file in kept:
        groups.setdefault(file.partition, []).append(file)
    return {
        "table": body.table, "filter": body.filter, "snapshot": at,
        "used_predicates": [{"column": c.column, "op": c.op, "values": list(c.values)}
                            for c in comparisons],
        "partitions": [_partition_json(name, group) for name, group in sorted(groups.items())],
        "files_total": len(files), "files_pruned": len(files) - len(kept),
        "partitions_total": len({f.partition for f in files}),
        "partitions_pruned": len({f.partition for f in files}) - len(groups),
    }


def _partition_json(name: str, files: list[DataFile]) -> dict[str, Any]:
    columns: dict[str, dict[str, Any]] = {}
    for file in files:
        for stat in file.stats:
            column = columns.setdefault(stat.column, {"min": None, "max": None, "nulls": 0})
            column["nulls"] += stat.null_count
            for key, value, pick in (("min", stat.min, min), ("max", stat.max, max)):
                if value is not None:
                    current = column[key]
                    column[key] = value if current is None else pick(current, value)
    return {"partition": name, "rows": sum(f.row_count for f in files),
            "bytes": sum(f.byte_size for f in files), "files": len(files), "columns": columns}


@router.get("/indexes")
async def indexes(
    request: Request, core: CoreDep,
    caller: Annotated[Caller, Depends(require_role(Role.READER))],
) -> dict[str, Any]:
    """What can prune a scan, per table: partitioning, sort key, per-column min/max and distinct
    estimates, and the record index on data_id."""
    catalog = _catalog(core)
    tables = await run_in_threadpool(catalog.tables, _scope(request, caller))
    out = []
    for table in tables:
        files = await run_in_threadpool(catalog.files, table.tenant, table.name)
        summary = _partition_json("", files)["columns"] if files else {}
        distinct: dict[str, int] = {}
        for file in files:
            for stat in file.stats:
                if stat.distinct_estimate is not None:
                    # The largest per-file count: a lower bound of the table's distinct values.
                    distinct[stat.column] = max(distinct.get(stat.column, 0),
                                                stat.distinct_estimate)
        out.append({
            "tenant": table.tenant, "table": table.name,
            "partition_columns": [table.partition_by] if table.partition_by else ["_timestamp"],
            "partition_transform": "identity" if table.partition_by else "day",
            "sort_key": list(table.sort_key),
            "column_ranges": {c: {**v, "distinct_estimate": distinct.get(c)}
                              for c, v in summary.items()},
            "secondary_indexes": [{"column": "data_id", "kind": "record index",
                                   "use": "point lookups and exactly-once writes"}],
        })
    return {"tables": out}


@router.get("/stats")
async def catalog_stats(
    request: Request, core: CoreDep,
    caller: Annotated[Caller, Depends(require_role(Role.READER))],
) -> dict[str, Any]:
    """Counts of tenants, tables, snapshots, live and dead files and bytes; the last flush."""
    catalog = _catalog(core)
    stats = await run_in_threadpool(catalog.stats)
    tenant = _scope(request, caller)
    body: dict[str, Any] = {
        "snapshots": stats.snapshots, "last_flush_at": stats.last_flush_at,
        "last_flush_lag_s": round(time.time() - stats.last_flush_at, 3)
        if stats.last_flush_at else None,
    }
    if tenant is None:
        body.update(tenants=stats.tenants, tables=stats.tables, live_files=stats.live_files,
                    dead_files=stats.dead_files, live_bytes=stats.live_bytes)
    else:
        tables = await run_in_threadpool(catalog.tables, tenant)
        files = [f for t in tables for f in await run_in_threadpool(catalog.files, tenant,
                                                                     t.name)]
        body.update(tenant=tenant, tables=len(tables), live_files=len(files),
                    live_bytes=sum(f.byte_size for f in files))
    if core.ingest is not None:
        body["unflushed"] = _unflushed(core.ingest, tenant)
    maintenance = await maintenance_status(core, tenant)
    body["compaction_backlog"] = maintenance["backlog"]
    body["maintenance_last_runs"] = maintenance["last_runs"]
    return body


def _unflushed(ingest: IngestService, tenant: str | None) -> dict[str, Any]:
    """Records waiting in the shared log: every tenant's, or one tenant's own."""
    if tenant is None:
        rows, size, age = ingest.unflushed_totals()
        return {"rows": rows, "bytes": size, "oldest_age_s": round(age, 3)}
    tables = ingest.table_stats(tenant)
    ages = [t["oldest_unflushed_age_s"] for t in tables if t["oldest_unflushed_age_s"] is not None]
    return {"rows": sum(t["unflushed_records"] for t in tables),
            "bytes": sum(t["unflushed_bytes"] for t in tables),
            "oldest_age_s": max(ages) if ages else 0.0}
