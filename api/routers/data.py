"""Tenant Node: write records durably, read them back at once, see per-table statistics."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse

from api.answers import BatchAnswer
from api.bodies import TABLE_NAME, TABLE_NAME_RULE
from api.core import Core
from api.deps import CoreDep, require_role
from api.query_params import MAX_COUNT
from api.record_bodies import NO_NUL, WRITE_ANSWERS, batch_body, one_record_body
from api.write_door import NDJSON_TYPES, is_json, media_type, read_limited
from flows.shared_results import tenant_view
from lakehouse.auth.identity import Caller, Role
from lakehouse.errors import (
    InvalidInput,
    NotServed,
    PayloadTooLarge,
    Unavailable,
    UnsupportedMediaType,
)
from lakehouse.ingest.arrow_read import read_ndjson
from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.plan import PendingWrite, conflict_error
from lakehouse.ingest.records import (
    DEFAULT_TABLE,
    MAX_DATA_ID_BYTES,
    Rejected,
    check_record,
    parse_json_array,
    parse_ndjson,
)
from lakehouse.ingest.service import IngestService
from lakehouse.schema.names import NAME_PATTERN, check_table_name
from lakehouse.telemetry.logs import request_id_var

router = APIRouter(tags=["data"])

Writer = Annotated[Caller, Depends(require_role(Role.WRITER))]
Reader = Annotated[Caller, Depends(require_role(Role.READER))]


async def answer_of(pending: PendingWrite) -> dict[str, Any]:
    await asyncio.gather(*(asyncio.wrap_future(f) for f in pending.futures()))
    return pending.answer()


@router.post("/data", status_code=201, openapi_extra=one_record_body(),
             responses=WRITE_ANSWERS)
async def write_one(request: Request, core: CoreDep, caller: Writer) -> JSONResponse:
    """Write one record; 201 once it is fsynced, 200 `duplicate` for a retry of the same record.

    (Served by `api.fast_writes` ahead of this route; the route documents it and serves it
    wherever that path is not installed.)"""
    body = await read_limited(request.stream(), core.settings.ingest_max_body_bytes)
    status, answer = await write_record(core, caller, media_type(request.headers.get(
        "content-type")), body)
    return JSONResponse(answer, status_code=status)


async def write_record(core: Core, caller: Caller, media: str, body: bytes,
                       ) -> tuple[int, dict[str, Any]]:
    """One record in, (status, answer) out once it is durable; LakehouseError for bad input."""
    service, _ = core.require_ingest()
    if not is_json(media):
        raise UnsupportedMediaType("send the record as Content-Type: application/json",
                                   details={"content_type": media or None})
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("the body is not valid JSON", code="malformed_json",
                           details={"problem": str(exc)[:200]}) from exc
    check_record(raw, 0, 0)  # a bad record is refused whole: nothing is stored, not even a reject
    # Off the event loop: checking records runs the tables' declared checks (and waits for
    # the ingest lock), which must not stall the other services sharing the loop.
    pending = await asyncio.to_thread(service.write, caller.tenant, [raw],
                                      request_id=request_id_var.get(), keep_rejects=False)
    [result] = (await answer_of(pending))["records"]
    if result["status"] == "conflict":
        raise conflict_error(result)
    if result["status"] == "rejected":
        raise InvalidInput(result["reason"], code=result["error"],
                           details={"data_id": result.get("data_id")})
    return (201 if result["status"] == "durable" else 200), {
        "data_id": result["data_id"], "table": result["table"], "seq": result["seq"],
        "status": result["status"]}


@router.post("/data/store", openapi_extra=batch_body(), response_model=None,
             responses={200: {"model": BatchAnswer,
                              "description": "Every accepted record is fsynced"}})
async def write_many(
    request: Request, core: CoreDep, caller: Writer,
    idempotency_key: Annotated[str | None, Header(max_length=256)] = None,
    table: Annotated[str, Query(**TABLE_NAME, description=(
        f"Table for records that name none: {TABLE_NAME_RULE}"))] = DEFAULT_TABLE,
) -> dict[str, Any]:
    """Write many records (a JSON array, or NDJSON); bad records are reported, good ones kept.

    (A plain NDJSON batch of new records is served by `api.fast_writes` through Arrow, ahead
    of this route; this route checks records one by one, with the same answers.)"""
    service, _ = core.require_ingest()
    check_table_name(table)
    media = media_type(request.headers.get("content-type"))
    body = await read_limited(request.stream(), core.settings.ingest_max_body_bytes)
    raws: list[Any]
    pre_rejected: list[Rejected] = []
    if media in NDJSON_TYPES:
        raws = []
        for index, parsed in parse_ndjson(body):
            if isinstance(parsed, InvalidInput):
                pre_rejected.append(Rejected(index, None, None, parsed.message, parsed.code,
                                             parsed.details.get("line")))
                raws.append(None)
            else:
                raws.append(parsed)
    elif is_json(media):
        raws = parse_json_array(body)
    else:
        raise UnsupportedMediaType(
            "send a JSON array (application/json) or NDJSON (application/x-ndjson)",
            details={"content_type": media or None})
    if len(raws) > core.settings.ingest_max_records:
        raise PayloadTooLarge(f"at most {core.settings.ingest_max_records} records per request",
                              details={"records": len(raws)})
    if not raws:
        raise InvalidInput("the body holds no records", code="no_records")
    skip = {r.index for r in pre_rejected}
    pending = await asyncio.to_thread(  # off the event loop, as in write_record
        service.write, caller.tenant, raws, request_id=request_id_var.get(),
        idempotency_key=idempotency_key, default_table=table, pre_rejected=pre_rejected,
        skip=skip)
    return await answer_of(pending)


def write_arrow_batch(service: IngestService, tenant: str, body: bytes, table: str, *,
                      max_records: int, idempotency_key: str | None) -> PendingWrite | None:
    """An NDJSON batch of new records for one table queued whole through Arrow, or None: check
    it record by record (`write_many`), which gives the same answers. Blocking: Arrow parses
    and RocksDB looks the ids up without the GIL, so it runs off the event loop and requests
    overlap on both cores."""
    batch = read_ndjson(body, table, max_records)
    if batch is None:
        return None
    return service.write_arrow(tenant, batch, request_id=request_id_var.get(),
                               idempotency_key=idempotency_key)


@router.post("/data/flush")
async def flush_now(core: CoreDep, caller: Writer) -> dict[str, Any]:
    """Flush the log into Parquet now (the `ingest` flow); answers the run and what it wrote.

    The log is shared by every tenant, so a flush asked by one tenant flushes all of them."""
    if core.flusher is None:
        raise NotServed("this process does not own the write-ahead log",
                          code="ingest_not_served")
    if core.flush_trigger is not None:
        result: dict[str, Any] = await asyncio.wrap_future(core.flush_trigger.request())
    else:  # a process that serves the write path without flushing on its own
        from flows.ingest import flush

        try:
            result = await asyncio.to_thread(flush, core.flusher)
        except Exception as exc:  # answered as the trigger answers it
            result = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    if result.get("error"):
        why = (f": {result['error']}" if caller.is_admin
               else "; its error may name other tenants' tables, so an admin sees it (GET "
                    "/runs/{id} or the logs)")
        raise Unavailable(f"the flush failed{why}; retry later", code="flush_failed")
    if caller.is_admin:
        return result
    # The log is shared: a tenant sees what the flush did for its own tables only.
    return tenant_view(result, caller.tenant, "ingest") or {}


@router.get("/data")
async def list_records(
    core: CoreDep, caller: Reader,
    table: Annotated[str, Query(
        pattern=f"^(_rejects|{NAME_PATTERN.pattern})$", max_length=63, description=(
            f"A table ({TABLE_NAME_RULE}), or `_rejects`: the records refused"))
    ] = DEFAULT_TABLE,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int | None, Query(ge=1, le=MAX_COUNT, description="Only records with seq "
                                       "below this; pass the previous page's next_after")] = None,
) -> dict[str, Any]:
    """The tenant's records in a table, newest first, paged."""
    _, reader = core.require_ingest()
    if table != "_rejects":
        check_table_name(table)
    page = await asyncio.to_thread(reader.newest, TableRef(caller.tenant, table), limit, after)
    return {"table": table, "count": len(page.records), "records": page.records,
            "next_after": page.next_after}


@router.get("/data/retrieve")
async def retrieve(
    core: CoreDep, caller: Reader,
    data_id: Annotated[str, Query(min_length=1, max_length=MAX_DATA_ID_BYTES,
                                  json_schema_extra={"pattern": NO_NUL},
                                  examples=["user-001"])],
    table: Annotated[str, Query(**TABLE_NAME, description=TABLE_NAME_RULE)] = DEFAULT_TABLE,
) -> dict[str, Any]:
    """One record by its data_id."""
    _, reader = core.require_ingest()
    check_table_name(table)
    return await asyncio.to_thread(reader.get, TableRef(caller.tenant, table), data_id)


@router.get("/data/stats")
async def stats(core: CoreDep, caller: Reader) -> dict[str, Any]:
    """Per table: records, bytes, unflushed records and age, duplicates refused, rejected."""
    service, _ = core.require_ingest()
    commits = service.committer.stats()
    wal = service.wal.stats()
    return {
        "tenant": caller.tenant,
        "tables": service.table_stats(caller.tenant),
        "wal": {"last_seq": service.wal.last_seq(), "group_commits": commits.commits,
                "mean_requests_per_commit": round(commits.mean_group, 2),
                "largest_group": commits.largest_group, "fsyncs": wal.fsyncs},
    }
