"""The Tenant Node's door for writes: which requests are writes, how their bodies are read and
limited, which media types they take, and how an answer leaves when it is given ahead of
FastAPI (the admission middleware's refusals and `api.fast_writes`' answers).

One module, so the two ways a write comes in — the ASGI fast path and the routes — read the same
body the same way and refuse it in the same words.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from api.errors import headers_of
from lakehouse.errors import InvalidInput, LakehouseError, PayloadTooLarge

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl",
                "application/x-jsonlines")
# Requests the write admission limit sheds: they carry records. Not /data/execute (a query)
# nor /data/flush (which relieves the backlog the limit protects).
SHED_PATHS = frozenset({"/data", "/data/store", "/data/load"})
# Requests whose bodies are records, allowed INGEST_MAX_BODY_BYTES; every other body (a load's
# is a few fields naming its files) gets the smaller REQUEST_MAX_BODY_BYTES (api.middleware).
RECORD_PATHS = frozenset({"/data", "/data/store"})


def is_write(scope: Scope) -> bool:
    return scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in SHED_PATHS


def carries_records(scope: Scope) -> bool:
    return scope["method"] == "POST" and scope["path"] in RECORD_PATHS


def header_text(value: bytes | None) -> str | None:
    """A header's raw value as text (HTTP headers are Latin-1)."""
    return value.decode("latin-1") if value is not None else None


def media_type(content_type: str | None) -> str:
    """`application/json` from `Application/JSON; charset=utf-8`; "" for none."""
    return (content_type or "").split(";")[0].strip().lower()


def is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


async def read_limited(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The whole body, refusing (413) as soon as it passes `limit`, even without a
    Content-Length."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def body_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body is over this endpoint's limit of {limit} bytes; "
                           "send less per request", details={"limit_bytes": limit})


async def received(receive: Receive) -> AsyncIterator[bytes]:
    """The body's chunks as an ASGI app receives them. A client gone before its body ended
    raises: the part that came is not a request (taken as one, the complete lines of a cut
    NDJSON batch were stored, answered to nobody)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("the connection closed before the body ended; nothing was stored",
                               code="incomplete_body")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def json_headers(payload: bytes, headers: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    """A JSON answer's headers: its type, its length and `headers` (an error's Retry-After)."""
    raw = [(b"content-type", b"application/json"),
           (b"content-length", str(len(payload)).encode())]
    raw += [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    return raw


async def send_json(send: Send, status: int, answer: Mapping[str, Any],
                    headers: Mapping[str, str] | None = None, *, close: bool = False) -> None:
    """A JSON answer straight to the client, ahead of FastAPI."""
    payload = orjson.dumps(answer)
    raw = json_headers(payload, headers)
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


# A refused request's body up to this size is left for the server to read past, so the client
# keeps its connection (under a flood, reconnecting after every shed answer cost more than the
# answer); a larger or unannounced one closes the connection instead of being received.
KEEP_ALIVE_BODY_BYTES = 64 * 1024


def small_body(scope: Scope) -> bool:
    """Whether the request announces a body of at most KEEP_ALIVE_BODY_BYTES, and will send it
    unasked: a client waiting for `100 Continue` (sent only when the app reads) would take its
    next request for the body the server reads past."""
    return declares_small_body(dict(scope.get("headers") or []), KEEP_ALIVE_BODY_BYTES)


def declares_small_body(headers: Mapping[bytes, bytes], limit: int) -> bool:
    """A Content-Length of at most `limit`, and no `Expect`."""
    declared = headers.get(b"content-length")
    return (declared is not None and declared.isdigit() and int(declared) <= limit
            and b"expect" not in headers)


async def refuse(send: Send, error: LakehouseError, *, close: bool = True) -> None:
    """An error in the one shape, with its headers, before the request was read; the
    connection closes unless `close` is false (the body is small: the server reads past it)."""
    await send_json(send, error.http_status, error.to_body(), headers_of(error), close=close)
