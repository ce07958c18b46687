"""Shedding at the HTTP parser (api/early_shed.py), over real HTTP on loopback: uvicorn as
`lakehouse up` serves it, one core with the write-ahead log on RocksDB and a SQLite catalog.

A shed answered at the parser is counted under its path ("/data"); one the admission middleware
answers is counted under "unmatched" (no route was chosen yet): that is how these tests tell the
two apart. The answers themselves must be the same."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator

import pyarrow as pa
import pytest

from api.core import Core, build_core
from api.services import SPECS, Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.serving import free_ports, serving

PASSWORD = "correct horse battery staple"
RECORD = json.dumps({"data_id": "early-1", "payload": {"n": 1}}).encode()


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    ports = dict(zip((f"{s.value}_port" for s in Service), free_ports(len(Service)),
                     strict=True))
    built = build_core(Settings.for_tests(
        tmp_path_factory.mktemp("early-shed"), query_on_dask=False, load_on_dask=False,
        flush_on_dask=False, ingest_max_inflight=2, ingest_min_inflight=1,
        query_max_concurrent_per_tenant=1,
        **ports), ingest=True)
    # A validated token stays cached for the module: on a loaded machine more than the default
    # 5 s can pass between tests, and an expired one goes to the app instead of the parser.
    built.auth.cache_ttl_s = 3600.0
    built.auth.create_user("ada", PASSWORD, "acme", Role.WRITER)
    built.auth.create_user("bob", PASSWORD, "globex", Role.WRITER)
    yield built
    built.close()


@pytest.fixture(scope="module")
def ports(core: Core) -> Iterator[dict[Service, int]]:
    with serving(core, [Service.TENANT, Service.OPERATION]):
        yield {s: SPECS[s].port(core.settings) for s in (Service.TENANT, Service.OPERATION)}


@pytest.fixture(scope="module")
def token(core: Core, ports: dict[Service, int]) -> str:
    """ada's token, validated once through the app (so later requests find it cached)."""
    access = core.auth.login("ada", PASSWORD).access_token
    status, _, _ = _post(ports[Service.TENANT], "/data", access)
    assert status == 201
    return access


def _post(port: int, path: str, token: str, body: bytes = RECORD,
          headers: dict[str, str] | None = None,
          conn: http.client.HTTPConnection | None = None) -> tuple[int, dict[str, str], dict]:
    own = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    own.request("POST", path, body=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        **(headers or {})})
    answer = own.getresponse()
    payload = json.loads(answer.read() or b"{}")
    if conn is None:
        own.close()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}, payload


def _requests(core: Core, route: str, status: int) -> float:
    return core.metrics.registry.get_sample_value("lakehouse_http_requests_total", {
        "service": "Tenant Node", "method": "POST", "route": route, "status": str(status)}) or 0


def _shed(core: Core, reason: str) -> float:
    return core.metrics.registry.get_sample_value(
        "lakehouse_shed_requests_total", {"pool": "writes", "reason": reason}) or 0


def _settled(core: Core, held: int = 0) -> None:
    """Waits for the write slots in use to come back to `held`: a slot taken for a request (at
    the parser, or by the admission middleware) is given back when its app ends, just after
    the answer left."""
    deadline = time.monotonic() + 5
    while core.write_slots.in_use != held and time.monotonic() < deadline:
        time.sleep(0.01)
    assert core.write_slots.in_use == held


@pytest.fixture
def full(core: Core) -> Iterator[None]:
    """acme holds every write slot, as a flood in flight would."""
    _settled(core)
    held = [core.write_slots.take("acme") for _ in range(core.write_slots.capacity)]
    assert held == [None] * len(held)
    yield
    for _ in held:
        core.write_slots.give_back("acme")


def test_a_write_over_the_limit_is_answered_at_the_parser_and_the_connection_goes_on(
        core: Core, ports: dict[Service, int], token: str, full: None) -> None:
    port = ports[Service.TENANT]
    before, shed_before = _requests(core, "/data", 503), _shed(core, "full")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        status, headers, body = _post(port, "/data", token, conn=conn,
                                      headers={"X-Request-Id": "flood-1"})
        first_socket = conn.sock
        assert status == 503
        assert body["error"] == "overloaded" and body["message"] and body["details"] == {
            "held": 2, "fair_share": 2, "capacity": 2}
        assert headers["retry-after"] == "1" and headers["x-request-id"] == "flood-1"
        assert headers["content-type"] == "application/json"
        assert "connection" not in headers  # kept: the body was read past
        # The same connection answers the next request: the shed's body was not taken for it.
        status, _, body = _post(port, "/data", token, conn=conn)
        assert status == 503 and conn.sock is first_socket
    finally:
        conn.close()
    assert _requests(core, "/data", 503) == before + 2  # answered at the parser
    assert _shed(core, "full") == shed_before + 2


def test_a_tenant_over_its_share_gets_429_while_another_is_admitted(
        core: Core, ports: dict[Service, int], token: str) -> None:
    port = ports[Service.TENANT]
    _settled(core)
    assert core.write_slots.take("acme") is None and core.write_slots.take("globex") is None
    try:
        status, headers, body = _post(port, "/data", token)
        assert status == 429 and body["error"] == "over_fair_share"
        assert headers["retry-after"] == "1"
    finally:
        core.write_slots.give_back("globex")
    try:
        # globex's slot is back: acme is alone again and under the limit.
        status, _, body = _post(port, "/data", token)
        assert status in (200, 201), body  # 200: the record was stored before
    finally:
        core.write_slots.give_back("acme")
    _settled(core)  # the slot taken at the parser was given back


def test_pipelined_writes_are_each_answered_in_order(
        core: Core, ports: dict[Service, int], token: str, full: None) -> None:
    """Hundreds of sheds in one read: each answered, in order, without the connection's
    handler recursing once per answer (some hundreds deep it ran out of stack)."""
    request = (b"POST /data HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token.encode()
               + b"\r\nContent-Type: application/json\r\nContent-Length: "
               + str(len(RECORD)).encode() + b"\r\n\r\n" + RECORD)
    count = 3000
    with socket.create_connection(("127.0.0.1", ports[Service.TENANT]), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + request * count
                     + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while received.count(b"HTTP/1.1 ") < count + 2:
            chunk = sock.recv(1 << 20)
            assert chunk, received[-500:]
            received += chunk
    statuses = [int(part[:3]) for part in received.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [200] + [503] * count + [200]


def test_what_the_parser_cannot_judge_goes_to_the_app(
        core: Core, ports: dict[Service, int], token: str, full: None) -> None:
    port = ports[Service.TENANT]
    unmatched = _requests(core, "unmatched", 503)
    # A body over the size kept alive: the admission middleware sheds it, closing.
    big = json.dumps({"data_id": "early-2", "payload": {"s": "x" * 70_000}}).encode()
    status, headers, body = _post(port, "/data", token, body=big)
    assert status == 503 and body["error"] == "overloaded"
    assert headers["connection"] == "close"
    # Counted as the middleware's answer ends, just after it left.
    deadline = time.monotonic() + 5
    while _requests(core, "unmatched", 503) == unmatched and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _requests(core, "unmatched", 503) == unmatched + 1
    # Another tenant named by a writer: refused by the app, whatever the load.
    status, _, body = _post(port, "/data", token, headers={"X-Tenant-Id": "globex"})
    assert status == 403, body
    # A token never validated: the app validates it (and refuses it).
    status, _, body = _post(port, "/data", token + "x")
    assert status == 401, body
    _settled(core, core.write_slots.capacity)  # only the fixture's


def test_a_query_over_its_tenant_limit_is_answered_at_the_parser(
        core: Core, ports: dict[Service, int], token: str) -> None:
    assert core.queries is not None
    registry = core.queries.registry
    run = registry.start("acme", "SELECT 1", "sync")
    try:
        query = json.dumps({"query": "SELECT 1"}).encode()
        status, headers, body = _post(ports[Service.OPERATION], "/query/execute", token,
                                      body=query)
        assert status == 429 and body["error"] == "too_many_queries"
        assert headers["retry-after"] == "1"
        assert core.metrics.registry.get_sample_value("lakehouse_http_requests_total", {
            "service": "Operation Node", "method": "POST", "route": "/query/execute",
            "status": "429"}) == 1
    finally:
        registry.finish(run, pa.table({"one": [1]}))
    status, _, body = _post(ports[Service.OPERATION], "/query/execute", token,
                            body=json.dumps({"query": "SELECT 1 AS one"}).encode())
    assert status == 200, body


@pytest.mark.parametrize("repeated", ["X-Tenant-Id", "Authorization"])
def test_a_request_repeating_who_it_acts_for_is_refused_not_shed_or_served(
        core: Core, ports: dict[Service, int], token: str, full: None, repeated: str) -> None:
    """The admission limits read the last of a repeated header and the routes the first, so a
    request could be counted for one tenant and served for another: refused, on any path."""
    values = {"X-Tenant-Id": ["acme", "globex"],
              "Authorization": [f"Bearer {token}", f"Bearer {token}"]}[repeated]
    for port, path in [(ports[Service.TENANT], "/data"), (ports[Service.OPERATION], "/health")]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.putrequest("POST" if path == "/data" else "GET", path)
            if repeated != "Authorization":
                conn.putheader("Authorization", f"Bearer {token}")
            for value in values:
                conn.putheader(repeated, value)
            body = RECORD if path == "/data" else b""
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            answer = conn.getresponse()
            payload = json.loads(answer.read())
        finally:
            conn.close()
        assert answer.status == 400, payload
        assert payload["error"] == "repeated_header" and payload["details"] == {
            "headers": [repeated]}
    _settled(core, core.write_slots.capacity)  # only the fixture's
