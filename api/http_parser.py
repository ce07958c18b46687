"""The HTTP/1.1 protocol every service is served with: uvicorn's httptools protocol, answering a
request its parser cannot read in the platform's error shape (`{"error", "message",
"details"}`, as every other refusal) rather than uvicorn's plain-text 400.

The parser refuses such a request (a negative or thirty-digit Content-Length, a space in a
header name, a garbled request line) before any ASGI code sees it, so the answer is written
here. The connection is closed after it, as uvicorn does: what follows bytes that cannot be
framed cannot be read as the next request. api/early_shed.py builds on this protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.errors import headers_of
from api.middleware import request_id
from api.write_door import json_headers
from lakehouse.errors import InvalidInput, LakehouseError
from lakehouse.telemetry.metrics import Metrics

UNREADABLE = "UNREADABLE"  # the method label of a request the parser could not read

MALFORMED_MESSAGE = (
    "the request could not be read as HTTP/1.1: its request line, a header or its "
    "Content-Length is malformed; send a well-formed request (this connection is closed)")


def raw_response(status: int, headers: Sequence[tuple[bytes, bytes]], payload: bytes) -> bytes:
    """A whole HTTP/1.1 response as written to the socket."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode()]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


# An error's status, its own headers (type, length, Retry-After) and its JSON body.
ErrorAnswer = tuple[int, tuple[tuple[bytes, bytes], ...], bytes]


def error_answer(error: LakehouseError) -> ErrorAnswer:
    payload = orjson.dumps(error.to_body())
    return error.http_status, tuple(json_headers(payload, headers_of(error))), payload


def error_response(error: LakehouseError, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """`error` as a JSON answer with its own headers (Retry-After), after `headers`."""
    status, own, payload = error_answer(error)
    return raw_response(status, [*headers, *own], payload)


class JsonErrorProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing unreadable requests in the platform's words and
    counting them (`counted_as` binds the metrics and the service's name)."""

    metrics: Metrics | None = None
    service = ""

    def send_400_response(self, msg: str) -> None:
        if self.metrics is not None:  # no method or route could be read: both say so
            self.metrics.observe_request(self.service, UNREADABLE, "unmatched", 400, 0.0)
        # uvicorn has logged `msg` already ("Invalid HTTP request received."). httptools also
        # reports an exception raised in one of the protocol's own callbacks this way; those
        # that could be ours (the early shed's decision) are caught where they are raised.
        refused = InvalidInput(MALFORMED_MESSAGE, code="malformed_http")
        self.transport.write(error_response(
            refused, [*self.server_state.default_headers, (b"x-request-id", request_id().encode()),
                      (b"connection", b"close")]))
        self.transport.close()


def counted_as(metrics: Metrics, service: str) -> type[JsonErrorProtocol]:
    """The protocol for one service, its unreadable requests counted in `metrics`."""
    return type("CountedJsonErrorProtocol", (JsonErrorProtocol,),
                {"metrics": metrics, "service": service})
