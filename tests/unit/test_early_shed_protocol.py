"""The shedding protocol (api/early_shed.py) fed bytes directly, to pin down what a real socket
makes depend on timing: how many pipelined requests one read holds, and a request starting in
the same read as a shed answer. The transport is a recording stand-in (the one thing mocked:
what these tests look at is what the protocol writes and whether it closes); the core, its
write slots, its token cache and its metrics are real."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from api.core import Core, build_core
from api.early_shed import EarlyShed, protocol_with
from api.middleware import ShedLines
from lakehouse.auth.identity import Role
from lakehouse.config import Settings


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closed:  # as a socket's transport: nothing leaves once it is closed
            self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def statuses(self) -> list[int]:
        return [int(part[:3]) for part in bytes(self.written).split(b"HTTP/1.1 ")[1:]]


@dataclasses.dataclass
class Served:
    core: Core
    token: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    core = build_core(Settings.for_tests(tmp_path, ingest_max_inflight=1))
    core.auth.create_user("ada", "correct horse battery staple", "acme", Role.WRITER)
    token = core.auth.login("ada", "correct horse battery staple").access_token
    core.auth.cache_ttl_s = 3600.0  # a loaded machine may take over the default 5 s to get on
    core.auth.authenticate(token)  # validated, so the parser finds it cached
    assert core.write_slots.take("acme") is None  # the platform is full
    yield Served(core, token)
    core.close()


def _write(token: str) -> bytes:
    return (b"POST /data HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")


def _slow_app(seconds: float):  # type: ignore[no-untyped-def]
    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        await asyncio.sleep(seconds)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
    return app


def _connect(core: Core, app: object, keep_alive_s: float = 5.0) -> tuple[
        asyncio.Protocol, RecordingTransport]:
    config = Config(app, http="httptools", log_config=None,  # type: ignore[arg-type]
                    timeout_keep_alive=keep_alive_s)
    config.load()
    protocol_class = protocol_with(EarlyShed(core, "Tenant Node", writes=True,
                                             query_paths=frozenset(), shed_lines=ShedLines()))
    protocol = protocol_class(config, ServerState(), {})  # type: ignore[arg-type]
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


async def _answered(transport: RecordingTransport, count: int, timeout_s: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(transport.statuses()) < count and not transport.closed and loop.time() < deadline:
        await asyncio.sleep(0.01)


def test_a_long_pipeline_of_sheds_is_answered_in_order_without_recursing(
        served: Served) -> None:
    count = 3000  # 3 frames each, when every answer started the next one inside it

    async def scenario() -> RecordingTransport:
        protocol, transport = _connect(served.core, _slow_app(0.01))
        protocol.data_received(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                               + _write(served.token) * count)
        await _answered(transport, count + 1)
        return transport

    transport = asyncio.run(scenario())
    assert transport.statuses() == [200] + [503] * count
    assert not transport.closed
    assert served.core.write_slots.in_use == 1  # only the fixture's


def test_a_request_after_a_shed_in_the_same_read_is_not_cut_off_by_the_keep_alive_timer(
        served: Served) -> None:
    async def scenario() -> RecordingTransport:
        protocol, transport = _connect(served.core, _slow_app(0.3), keep_alive_s=0.05)
        protocol.data_received(_write(served.token)
                               + b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await _answered(transport, 2)
        return transport

    transport = asyncio.run(scenario())
    assert transport.statuses() == [503, 200]


def test_a_kept_refusal_carries_each_request_s_own_id_and_each_decision_its_own_body(
        served: Served) -> None:
    """Refused writes' answers are kept by what was decided (api/early_shed.py): two refusals
    alike share a body but not a request id; another decision gets its own body."""
    early = EarlyShed(served.core, "Tenant Node", writes=True, query_paths=frozenset(),
                      shed_lines=ShedLines())

    def refused(request_id: bytes) -> tuple[bytes, bytes]:
        scope = {"method": "POST", "path": "/data", "headers": [
            (b"host", b"x"), (b"authorization", b"Bearer " + served.token.encode()),
            (b"content-type", b"application/json"), (b"content-length", b"2"),
            (b"x-request-id", request_id)]}
        answer = early.answer(scope, [(b"server", b"lakehouse")])
        assert isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 503"), answer
        head, body = answer.split(b"\r\n\r\n", 1)
        return head, body

    first_head, first_body = refused(b"first-request")
    second_head, second_body = refused(b"second-request")
    assert b"x-request-id: first-request" in first_head
    assert b"x-request-id: second-request" in second_head and b"first" not in second_head
    assert first_body == second_body and b'"held":1' in first_body
    slots = served.core.write_slots
    slots.capacity = slots.ceiling = 2
    assert slots.take("acme") is None
    third_head, third_body = refused(b"third-request")
    assert b'"held":2' in third_body and b"content-length: %d" % len(third_body) in third_head
