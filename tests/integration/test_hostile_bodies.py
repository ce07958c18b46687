"""Hostile request bodies against a real server process (`lakehouse serve`: all seven services,
real sockets, so chunked bodies and Content-Lengths that are not followed by a body are sent as
an attacker sends them).

JSON nested far deeper than any parser survives (50,000 levels crashed the process inside
`pyarrow.json`; a few thousand made Python's json raise) is refused with 400
`nesting_too_deep` before anything parses it, on every endpoint that takes a body, and
changes nothing. A body over its endpoint's limit is refused with 413 before it is read when
its Content-Length says so, and as soon as it passes the limit when it is chunked. The process
answers on every port throughout.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from api.services import Service
from tests.conftest import stop_process

ROOT = Path(__file__).resolve().parents[2]
DEPTH = 50_000
MAX_DEPTH = 64  # the default of JSON_MAX_DEPTH
BODY_LIMIT = 1024 * 1024  # the default of REQUEST_MAX_BODY_BYTES
RECORD_LIMIT = 16 * 1024 * 1024  # the default of INGEST_MAX_BODY_BYTES
NDJSON = "application/x-ndjson"

pytestmark = pytest.mark.slow


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    ports: dict[Service, int]
    token: str = ""

    def url(self, service: Service, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def alive(self) -> bool:
        return self.process.poll() is None and all(
            httpx.get(self.url(s, "/health"), timeout=30).status_code in (200, 503)
            for s in Service)

    def last_seq(self) -> int:
        stats = httpx.get(self.url(Service.TENANT, "/data/stats"), headers=self.auth)
        return int(stats.json()["wal"]["last_seq"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("hostile")
    ports = {service: _free_port() for service in Service}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_"))}
    env.update({f"{s.value.upper()}_PORT": str(p) for s, p in ports.items()})
    env.update({
        "PYTHONPATH": str(ROOT), "DATA_DIR": str(data_dir), "ENVIRONMENT": "development",
        "LOG_LEVEL": "WARNING", "FLUSH_ENABLED": "false", "QUERY_ON_DASK": "false",
        "LOAD_ON_DASK": "false", "COMPACTION_ON_DASK": "false",
        "PREFECT_API_URL": "http://127.0.0.1:9/api", "DASK_SCHEDULER_ADDRESS": "tcp://127.0.0.1:9",
        "ARGON2_MEMORY_KIB": "64", "ARGON2_TIME_COST": "1"})
    process = subprocess.Popen([sys.executable, "-c", "from cli.main import main; main()",
                                "serve"], cwd=data_dir, env=env, stdout=subprocess.DEVNULL,
                               stderr=(data_dir / "server.log").open("wb"))
    running = Server(process, ports)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (data_dir / "server.log").read_text()[-3000:]
            try:
                if running.alive():
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        login = httpx.post(running.url(Service.AUTH, "/auth/login"),
                           json={"username": "admin", "password": "password"})
        running.token = login.json()["access_token"]
        yield running
    finally:
        stop_process(process, 30)


def _operations(server: Server) -> list[tuple[Service, str, str, bool]]:
    """Every operation but GET of every service, from its OpenAPI document: (service, method,
    path with its parameters filled in, whether it declares a JSON body)."""
    found = []
    for service in Service:
        spec = httpx.get(server.url(service, "/openapi.json")).json()
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if method != "get":
                    filled = path.replace("{table}", "records").replace("{query_id}", "q1")
                    found.append((service, method.upper(), filled, "requestBody" in operation))
    return found


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _record(data_id: str, payload: bytes = b'{"v": 1}') -> bytes:
    return b'{"data_id": "' + data_id.encode() + b'", "payload": ' + payload + b"}"


def _assert_refused(answer: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text[:500]
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error", "message", "details"} and body["error"] == error, body
    return body


def _assert_too_deep(answer: httpx.Response) -> None:
    body = _assert_refused(answer, 400, "nesting_too_deep")
    assert body["details"] == {"max_depth": MAX_DEPTH}
    assert f"{MAX_DEPTH} levels" in body["message"]


# The write paths: one record; NDJSON batches read by Arrow whole, the deep record first or
# after good ones; NDJSON the route reads record by record (an upsert sends a batch around
# Arrow); a JSON array; and a record one level past the limit.
WRITES = {
    "one record": ("/data", "application/json", _record("deep", _nested(DEPTH))),
    "NDJSON, deep record first": ("/data/store", NDJSON, _record("deep", _nested(DEPTH))
                                  + b"\n" + _record("good-1")),
    "NDJSON, deep record after good ones": ("/data/store", NDJSON, b"\n".join(
        [_record(f"good-{i}") for i in range(50)] + [_record("deep", _nested(DEPTH))])),
    "NDJSON, record by record": ("/data/store", NDJSON, b"\n".join(
        [b'{"data_id": "good-1", "upsert": true, "payload": {"v": 1}}',
         _record("deep", b"[" * DEPTH + b"]" * DEPTH)])),
    "JSON array": ("/data/store", "application/json", b"[" + _record("good-1") + b", "
                   + _record("deep", b"[" * DEPTH + b"]" * DEPTH) + b"]"),
    "just past the limit": ("/data/store", NDJSON, _record("good-1") + b"\n"
                            + _record("deep", _nested(MAX_DEPTH))),
}


@pytest.mark.parametrize("case", list(WRITES))
def test_deeply_nested_writes_are_refused_whole_and_change_nothing(server: Server,
                                                                   case: str) -> None:
    path, content_type, body = WRITES[case]
    before = server.last_seq()
    answer = httpx.post(server.url(Service.TENANT, path), content=body, timeout=60,
                        headers={**server.auth, "Content-Type": content_type})
    _assert_too_deep(answer)
    assert server.alive()
    assert server.last_seq() == before
    # And the limit is not one level too strict: the same record one level flatter is read
    # (and refused on its own by the payload's own depth rule, as before).
    if case == "just past the limit":
        flatter = _record("good-1") + b"\n" + _record("deep", _nested(MAX_DEPTH - 1))
        kept = httpx.post(server.url(Service.TENANT, "/data/store"), content=flatter,
                          headers={**server.auth, "Content-Type": NDJSON}, timeout=60)
        assert kept.status_code == 200, kept.text
        assert [r["error"] for r in kept.json()["records"] if r["status"] == "rejected"] == [
            "too_deep"]


def test_deep_nesting_is_refused_on_every_endpoint_that_takes_json(server: Server) -> None:
    """Every operation with a JSON body, the pydantic ones included (FastAPI parses the body
    before the route's checks, even before authentication). The record writes are the
    exception without credentials: their door answers 401 before it reads any body."""
    before = server.last_seq()
    deep = b'{"query": "SELECT 1", "x": ' + _nested(DEPTH) + b"}"
    seen = []
    for service, method, path, has_body in _operations(server):
        if not has_body:
            continue
        for headers in (server.auth, {}):
            answer = httpx.request(method, server.url(service, path), content=deep,
                                   headers={**headers, "Content-Type": "application/json"},
                                   timeout=60)
            if not headers and path in ("/data", "/data/store"):
                assert answer.status_code == 401, answer.text
                continue
            _assert_too_deep(answer)
        seen.append(path)
    assert {"/auth/login", "/parse/dsl", "/query/execute", "/metadata/tables",
            "/data/load", "/optimize/config", "/data", "/data/store"} <= set(seen)
    assert server.alive()
    assert server.last_seq() == before


def test_nesting_inside_strings_is_not_nesting(server: Server) -> None:
    before = server.last_seq()
    payload = orjson.dumps({"text": "[" * DEPTH + '{"a": ' * 100})
    answer = httpx.post(server.url(Service.TENANT, "/data"), content=_record("text", payload),
                        headers={**server.auth, "Content-Type": "application/json"})
    assert answer.status_code == 201, answer.text
    assert server.last_seq() == before + 1


def _exchange(port: int, head: bytes, chunks: Iterable[bytes] = (),
              ) -> tuple[int, dict[str, Any], int]:
    """Sends `head`, then `chunks` until the server answers or stops reading; returns the
    status, the JSON answer and how many body bytes went out. Raw socket: no client library
    sends a Content-Length without its body."""
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the answer is there: stop sending
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed the connection: it has answered
                break
            sent += len(chunk)
        raw = b""
        while b"\r\n\r\n" not in raw or len(raw) < _answer_length(raw):
            try:
                data = sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            raw += data
    head_part, _, body = raw.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 "), f"no answer (after {sent} body bytes): {raw!r}"
    status = int(head_part.split(b" ", 2)[1])
    return status, orjson.loads(body), sent


def _answer_length(raw: bytes) -> int:
    head, _, _ = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(raw) + 1


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(server: Server) -> None:
    """1 GiB declared and none of it sent: the answer comes at once, on every service and
    every operation, before authentication."""
    operations = _operations(server) + [(s, "GET", "/health", False) for s in Service]
    for service, method, path, _ in operations:
        head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {1024**3}\r\n\r\n").encode()
        status, answer, _ = _exchange(server.ports[service], head)
        assert status == 413, (method, path, answer)
        assert answer["error"] == "payload_too_large"
        limit = RECORD_LIMIT if path in ("/data", "/data/store") else BODY_LIMIT
        assert answer["details"] == {"limit_bytes": limit}, (path, answer)
    assert server.alive()


def _streamed(prefix: bytes, total: int) -> Iterator[bytes]:
    """A chunked JSON body of `total` bytes: `prefix`, then a long string."""
    piece = b"x" * 65536
    yield b"%x\r\n%s\r\n" % (len(prefix), prefix)
    for _ in range(total // len(piece)):
        yield b"%x\r\n%s\r\n" % (len(piece), piece)
    yield b'2\r\n"}\r\n0\r\n\r\n'


@pytest.mark.parametrize(("service", "path", "prefix", "limit"), [
    (Service.AUTH, "/auth/login", b'{"password": "', BODY_LIMIT),
    (Service.INTERPRETER, "/parse/sql", b'{"query": "', BODY_LIMIT),
    (Service.OPERATION, "/query/execute", b'{"query": "', BODY_LIMIT),
    (Service.CBO, "/optimize/query", b'{"query": "', BODY_LIMIT),
    (Service.CATALOG, "/metadata/tables", b'{"name": "', BODY_LIMIT),
    (Service.TENANT, "/data/load", b'{"source": "', BODY_LIMIT),
    (Service.TENANT, "/data/store", b'{"data_id": "', RECORD_LIMIT),
])
def test_a_chunked_body_is_refused_once_it_passes_the_limit(
        server: Server, service: Service, path: str, prefix: bytes, limit: int) -> None:
    before = server.last_seq()
    total = 8 * limit
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    status, answer, sent = _exchange(server.ports[service], head, _streamed(prefix, total))
    assert status == 413, answer
    assert answer["error"] == "payload_too_large"
    assert answer["details"] == {"limit_bytes": limit}
    assert sent < total  # it stopped reading: what is left unsent never reached a parser
    assert server.alive()
    assert server.last_seq() == before


def test_a_chunked_deep_body_is_refused_as_it_streams(server: Server) -> None:
    """The nesting is counted across chunks: 50,000 levels sent a few bytes at a time, after
    good records, to the Arrow path."""
    before = server.last_seq()
    body = b"\n".join([_record(f"c{i}") for i in range(20)] + [_record("deep", _nested(DEPTH))])
    head = (f"POST /data/store HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Type: {NDJSON}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
    chunks = iter([b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"])
    status, answer, _ = _exchange(server.ports[Service.TENANT], head, chunks)
    assert status == 400 and answer["error"] == "nesting_too_deep", answer
    assert server.alive()
    assert server.last_seq() == before


def test_a_body_cut_off_by_the_client_stores_nothing(server: Server) -> None:
    """A client gone half-way through an NDJSON batch: the complete lines that came are not a
    request, and are not stored."""
    before = server.last_seq()
    lines = b"".join(_record(f"cut{i}") + b"\n" for i in range(3000))
    head = (f"POST /data/store HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.token}\r\n"
            f"Content-Type: {NDJSON}\r\nContent-Length: {2 * len(lines)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.ports[Service.TENANT])) as sock:
        sock.sendall(head + lines)
        time.sleep(0.5)  # the server has the lines before the connection goes
    time.sleep(1.0)
    assert server.last_seq() == before
    assert server.alive()
