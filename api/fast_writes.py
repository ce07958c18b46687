"""`POST /data` and plain NDJSON `POST /data/store` served ahead of FastAPI's routing and
dependency machinery.

A single-record write is small, and a batch read by Arrow costs a few milliseconds; on these
paths much of the cost was the framework's per-request work (routing, dependency resolution,
response models). This ASGI layer does the same checks in the same order with the same shared
functions (authentication, `write_record`, `write_arrow_batch`, the error shape) and answers
directly. Every other request goes on to the app, and so does a batch the Arrow path hands back
(its body replayed), or one with anything unusual about it, so the app gives those answers.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core import Core
from api.deps import authenticate
from api.errors import headers_of
from api.routers.data import answer_of, write_arrow_batch, write_record
from api.write_door import (
    NDJSON_TYPES,
    header_text,
    media_type,
    read_limited,
    received,
    send_json,
)
from lakehouse.auth.identity import Role
from lakehouse.errors import LakehouseError
from lakehouse.ingest.records import DEFAULT_TABLE
from lakehouse.schema.names import is_valid_name

MAX_IDEMPOTENCY_KEY = 256  # as the route's Header(max_length=256)


class FastRecordWrites:
    def __init__(self, app: ASGIApp, core: Core) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            if scope["path"] == "/data":
                await self._write_one(scope, receive, send)
                return
            if scope["path"] == "/data/store" and self.core.settings.ingest_arrow_batches:
                await self._write_batch(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _write_one(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        extra: dict[str, str] | None = None
        try:
            caller = await authenticate(self.core, header_text(headers.get(b"authorization")),
                                        header_text(headers.get(b"x-tenant-id")))
            caller.require(Role.WRITER)
            body = await read_limited(received(receive), self.core.settings.ingest_max_body_bytes)
            media = media_type(header_text(headers.get(b"content-type")))
            status, answer = await write_record(self.core, caller, media, body)
        except LakehouseError as exc:
            status, answer, extra = exc.http_status, exc.to_body(), headers_of(exc)
        await send_json(send, status, answer, extra)

    async def _write_batch(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An NDJSON batch Arrow can take whole; the app for anything else, before the body is
        read if it can tell (its own checks then give the answer)."""
        headers = dict(scope.get("headers") or [])
        media = media_type(header_text(headers.get(b"content-type")))
        # Parsed as Starlette does, so `?table=` is the empty name the route refuses.
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                          keep_blank_values=True)
        plain_query = not query or (len(query) == 1 and query[0][0] == "table")
        table = query[0][1] if query else DEFAULT_TABLE
        keys = [v for k, v in scope.get("headers") or [] if k == b"idempotency-key"]
        key = header_text(keys[0]) if len(keys) == 1 else None
        service = self.core.ingest
        if (media not in NDJSON_TYPES or service is None or not plain_query
                or not is_valid_name(table) or len(keys) > 1
                or (key is not None and len(key) > MAX_IDEMPOTENCY_KEY)):
            await self.app(scope, receive, send)
            return
        try:
            caller = await authenticate(self.core, header_text(headers.get(b"authorization")),
                                        header_text(headers.get(b"x-tenant-id")))
            caller.require(Role.WRITER)
        except LakehouseError:
            await self.app(scope, receive, send)  # the app answers, as for any bad caller
            return
        extra: dict[str, str] | None = None
        try:
            body = await read_limited(received(receive), self.core.settings.ingest_max_body_bytes)
            pending = await asyncio.to_thread(
                write_arrow_batch, service, caller.tenant, body, table,
                max_records=self.core.settings.ingest_max_records, idempotency_key=key)
            if pending is None:
                await self.app(scope, _replay(body, receive), send)
                return
            status, answer = 200, await answer_of(pending)
        except LakehouseError as exc:
            status, answer, extra = exc.http_status, exc.to_body(), headers_of(exc)
        await send_json(send, status, answer, extra)


def _replay(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app once the body has been read here: the body, then the client's."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed

