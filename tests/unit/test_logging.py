"""JSON log lines carry the request id of the request that wrote them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from api.services import Service
from lakehouse.telemetry.logs import JsonFormatter, JsonLines, RingBuffer, request_id_var


def test_json_lines_with_request_id() -> None:
    record = logging.LogRecord("lakehouse.x", logging.INFO, __file__, 1, "hello %s", ("you",),
                               None)
    record.table = "orders"
    token = request_id_var.set("req-1")
    try:
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    entry = json.loads(line)
    assert entry["message"] == "hello you"
    assert entry["request_id"] == "req-1"
    assert entry["table"] == "orders"
    assert entry["level"] == "INFO"


def test_every_request_line_has_its_request_id(
        client_for: Callable[[Service], TestClient]) -> None:
    ring = RingBuffer(capacity=10)
    access = logging.getLogger("api.access")
    access.addHandler(ring)
    old_level = access.level
    access.setLevel(logging.INFO)
    try:
        client_for(Service.INTERPRETER).get("/health", headers={"X-Request-Id": "trace-42"})
    finally:
        access.removeHandler(ring)
        access.setLevel(old_level)
    [entry] = ring.latest(10)
    assert entry["request_id"] == "trace-42"
    assert entry["service"] == "Query Interpreter"
    assert entry["status"] == 200
    assert entry["path"] == "/health"


def test_a_closed_stream_drops_the_line_and_the_ring_keeps_the_record(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A thread a test started may log after the test's captured stderr is closed: the line
    is dropped without a "Logging error" traceback, and GET /logs still has the record."""
    stream, ring = io.StringIO(), RingBuffer()
    handler = JsonLines(stream, ring)
    stream.close()
    handler.emit(logging.LogRecord("lakehouse.x", logging.INFO, __file__, 1, "late", (), None))
    assert [entry["message"] for entry in ring.latest(10)] == ["late"]
    assert "Logging error" not in capsys.readouterr().err
