"""`POST /data` served ahead of FastAPI's routing and dependency machinery.

A single-record write is small; on this path most of its cost was the framework's per-request
work (routing, dependency resolution, response models). This ASGI layer does the same checks in
the same order with the same shared functions (authentication, `write_record`, the error shape)
and answers directly; every other request goes on to the app.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from api.core import Core
from api.deps import authenticate
from api.routers.data import write_record
from lakehouse.auth.identity import Role
from lakehouse.errors import LakehouseError, PayloadTooLarge


class FastRecordWrites:
    def __init__(self, app: ASGIApp, core: Core) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/data":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        extra: dict[str, str] = {}
        try:
            caller = await authenticate(self.core, _text(headers.get(b"authorization")),
                                        _text(headers.get(b"x-tenant-id")))
            caller.require(Role.WRITER)
            body = await _read(receive, self.core.settings.ingest_max_body_bytes)
            media = (_text(headers.get(b"content-type")) or "").split(";")[0].strip().lower()
            status, answer = await write_record(self.core, caller, media, body)
        except LakehouseError as exc:
            status, answer, extra = exc.http_status, exc.to_body(), exc.headers
        payload = orjson.dumps(answer)
        response_headers = [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode())]
        response_headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status,
                    "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


async def _read(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes; split it",
                                  details={"limit_bytes": limit})
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
