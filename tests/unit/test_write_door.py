"""The write door (api/write_door.py) and the limits built on it, driven as ASGI: writes over the
in-flight limit are shed before their bodies are read, in the one error shape; a query on
/data/execute and a flush are never shed; bodies are limited before and as they stream, in
size and in nesting, whatever the app behind does with a read that fails."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from api.middleware import BodyLimits, WriteAdmission
from api.write_door import KEEP_ALIVE_BODY_BYTES, media_type, read_limited, received
from lakehouse.errors import InvalidInput, PayloadTooLarge
from lakehouse.fair_share import Slots
from lakehouse.telemetry.metrics import Metrics


def _scope(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {"type": "http", "method": "POST", "path": path, "headers": headers or []}


async def _call(app: Any, scope: Scope, chunks: list[bytes] | None = None,
                ) -> tuple[int, dict[str, Any], dict[bytes, bytes]]:
    sent: list[Message] = []
    body = list(chunks) if chunks is not None else [b"{}"]

    async def receive() -> Message:
        return {"type": "http.request", "body": body.pop(0), "more_body": len(body) > 0}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent
    return int(start["status"]), json.loads(body["body"]), dict(start["headers"])


async def _tenant_header(scope: Scope) -> str:
    """The tenant a request counts for, here simply its X-Tenant-Id (the platform's is the
    authenticated caller's: `api.middleware.authenticated_tenant`)."""
    return dict(scope["headers"]).get(b"x-tenant-id", b"").decode()


def _as(tenant: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-tenant-id", tenant.encode())]


def test_writes_over_the_limit_are_shed_and_queries_are_not() -> None:
    release = asyncio.Event()

    async def held(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/data":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    admission = WriteAdmission(held, Slots(1), _tenant_header)

    async def scenario() -> list[tuple[int, dict[str, Any], dict[bytes, bytes]]]:
        first = asyncio.create_task(_call(admission, _scope("/data", _as("a"))))
        await asyncio.sleep(0.01)
        shed = await _call(admission, _scope("/data/store", _as("a")))
        query = await _call(admission, _scope("/data/execute", _as("a")))
        flush = await _call(admission, _scope("/data/flush", _as("a")))
        release.set()
        return [await first, shed, query, flush]

    first, shed, query, flush = asyncio.run(scenario())
    assert first[0] == 200
    assert shed[0] == 503 and shed[1]["error"] == "overloaded"
    assert set(shed[1]) == {"error", "message", "details"}
    assert shed[2][b"retry-after"] == b"1"
    assert query[0] == 200 and flush[0] == 200
    assert admission.slots.in_use == 0


def test_a_flooding_tenant_does_not_lock_out_another() -> None:
    """Tenant a holds all four slots; b still gets in (its share is two), a's next write is
    told it holds its share (429), and b's third is refused as the platform is full for it."""
    release = asyncio.Event()

    async def held(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    metrics = Metrics()
    admission = WriteAdmission(held, Slots(4), _tenant_header, metrics)

    async def scenario() -> tuple[list[int], int, int]:
        flood = [asyncio.create_task(_call(admission, _scope("/data", _as("a"))))
                 for _ in range(4)]
        other = [asyncio.create_task(_call(admission, _scope("/data", _as("b"))))
                 for _ in range(2)]
        await asyncio.sleep(0.01)
        over_share = await _call(admission, _scope("/data", _as("a")))
        past_share = await _call(admission, _scope("/data", _as("b")))
        release.set()
        done = [(await task)[0] for task in flood + other]
        assert over_share[1]["details"] == {"held": 4, "fair_share": 2, "capacity": 4}
        return done, over_share[0], past_share[0]

    done, over_share, past_share = asyncio.run(scenario())
    assert done == [200] * 6
    assert over_share == 429 and past_share == 429
    assert admission.slots.in_use == 0
    assert b'lakehouse_shed_requests_total{pool="writes",reason="over_share"} 2.0' in (
        metrics.exposition())
    assert b'tenant="a"} 1.0' in metrics.exposition(per_tenant=True)


def test_a_shed_write_keeps_its_connection_only_when_its_body_is_small() -> None:
    """Shed before its body is read: a body announced at most KEEP_ALIVE_BODY_BYTES is left for
    the server to read past, so the client keeps its connection (reconnecting after every shed
    answer cost a flood more than the answers); a larger or unannounced one closes it."""
    release = asyncio.Event()

    async def held(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    admission = WriteAdmission(held, Slots(1), _tenant_header)

    def sized(length: int | None) -> Scope:
        declared = [] if length is None else [(b"content-length", str(length).encode())]
        return _scope("/data/store", _as("a") + declared)

    async def scenario() -> list[dict[bytes, bytes]]:
        first = asyncio.create_task(_call(admission, _scope("/data", _as("a"))))
        await asyncio.sleep(0.01)
        answers = [await _call(admission, sized(n))
                   for n in (400, KEEP_ALIVE_BODY_BYTES, KEEP_ALIVE_BODY_BYTES + 1, None)]
        # A client waiting for `100 Continue` holds its body back: the server would take its
        # next request for the body, so the connection closes.
        expecting = _scope("/data/store", [*sized(10)["headers"], (b"expect", b"100-continue")])
        answers.append(await _call(admission, expecting))
        release.set()
        await first
        return [headers for status, _, headers in answers if status == 503]

    small, limit, large, unannounced, expecting = asyncio.run(scenario())
    assert b"connection" not in small and b"connection" not in limit
    assert large[b"connection"] == unannounced[b"connection"] == b"close"
    assert expecting[b"connection"] == b"close"


async def _reads_then_answers(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that reads the whole body and answers 200, or, as FastAPI does when the read
    fails, an answer of its own (which the limits must replace)."""
    status = 200
    try:
        await read_limited(received(receive), 10**9)
    except Exception:
        status = 418
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _limits(app: Any) -> BodyLimits:
    return BodyLimits(app, max_body_bytes=100, max_depth=4, record_body_bytes=1000)


@pytest.mark.parametrize(("path", "declared", "refused"), [
    ("/data/store", 1001, True), ("/data", 1000, False), ("/data/load", 101, True),
    ("/parse/sql", 101, True), ("/auth/login", 100, False)])
def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
        path: str, declared: int, refused: bool) -> None:
    async def never(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the app must not be reached")

    limits = _limits(never if refused else _reads_then_answers)
    status, body, headers = asyncio.run(_call(limits, _scope(path, [
        (b"content-length", str(declared).encode())])))
    if refused:
        assert status == 413 and body["error"] == "payload_too_large"
        assert body["details"]["limit_bytes"] == (1000 if path == "/data/store" else 100)
        assert headers[b"connection"] == b"close"
    else:
        assert status == 200


@pytest.mark.parametrize(("chunks", "status", "error"), [
    ([b"[" * 60, b"]" * 60], 413, "payload_too_large"),  # no Content-Length: counted
    ([b'{"a": [[', b"[[]]]}"], 400, "nesting_too_deep"),  # 5 levels across two chunks
    ([b'{"a": "[[[[[[[[", "b": [[["\\"]]]}'], 200, None),  # within a string: not nesting
])
def test_bodies_are_limited_as_they_stream(chunks: list[bytes], status: int,
                                           error: str | None) -> None:
    answer, body, _ = asyncio.run(_call(_limits(_reads_then_answers), _scope("/parse/dsl"),
                                        chunks))
    assert answer == status and body.get("error") == error
    if error == "nesting_too_deep":
        assert body["details"] == {"max_depth": 4} and "4 levels" in body["message"]


def test_bodies_are_limited_as_they_stream_and_media_types_are_read_once() -> None:
    chunks = [b"a" * 60, b"b" * 60]

    async def receive() -> Message:
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    with pytest.raises(PayloadTooLarge):
        asyncio.run(read_limited(received(receive), 100))
    cut: list[Message] = [{"type": "http.request", "body": b'{"a": 1}\n', "more_body": True},
                          {"type": "http.disconnect"}]

    async def gone() -> Message:
        return cut.pop(0)

    with pytest.raises(InvalidInput) as incomplete:  # not the part that came, as if it were all
        asyncio.run(read_limited(received(gone), 100))
    assert incomplete.value.code == "incomplete_body"
    assert media_type("Application/JSON; charset=utf-8") == "application/json"
    assert media_type(None) == ""
