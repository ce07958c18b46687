"""A request the HTTP parser cannot read gets the platform's error shape on every service
(api/http_parser.py), not uvicorn's plain-text 400; the connection is closed after it and the
service answers the next one. Over real HTTP on loopback: every service of one core (RocksDB
write-ahead log, SQLite catalog), raw bytes on a socket."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from api.core import Core, build_core
from api.services import SPECS, Service
from lakehouse.config import Settings
from tests.serving import free_ports, serving

MALFORMED = {
    "a negative Content-Length":
        b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    "a thirty-digit Content-Length":
        b"POST /data HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 30 + b"\r\n\r\n",
    "a space in a header name": b"GET /health HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n",
    "a control byte in the request line": b"GET /hea\x01lth HTTP/1.1\r\nHost: x\r\n\r\n",
    "not HTTP at all": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
}


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    names = {f"{s.value}_port": port for s, port in zip(Service, free_ports(len(Service)),
                                                          strict=True)}
    built = build_core(Settings.for_tests(
        tmp_path_factory.mktemp("malformed-http"), query_on_dask=False, load_on_dask=False,
        flush_on_dask=False, **names), ingest=True)
    yield built
    built.close()


@pytest.fixture(scope="module")
def ports(core: Core) -> Iterator[dict[Service, int]]:
    with serving(core, list(Service)):
        yield {s: SPECS[s].port(core.settings) for s in Service}


def _unreadable_counted(core: Core, service: Service) -> float:
    return core.metrics.registry.get_sample_value("lakehouse_http_requests_total", {
        "service": SPECS[service].title, "method": "UNREADABLE", "route": "unmatched",
        "status": "400"}) or 0.0


def _exchange(port: int, raw: bytes) -> bytes:
    """Everything the server sends back until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize("service", list(Service), ids=lambda s: s.value)
@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_request_the_parser_cannot_read_is_refused_in_the_platform_s_words(
        core: Core, ports: dict[Service, int], service: Service, raw: bytes) -> None:
    counted = _unreadable_counted(core, service)
    answer = _exchange(ports[service], raw)  # returns once the server closed the connection
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "HTTP/1.1 400 Bad Request", answer[:300]
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert headers["x-request-id"]  # as on every other answer, to quote when reporting it
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)
    assert set(error) == {"error", "message", "details"}
    assert error["error"] == "malformed_http"
    assert "HTTP/1.1" in error["message"]
    assert _unreadable_counted(core, service) == counted + 1  # counted before it was written
    # The service goes on answering.
    ok = _exchange(ports[service], b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200 "), ok[:300]
