"""Structured logging: one JSON object per line on stderr, with the request id on every line.

A bounded ring buffer keeps the latest records in memory for the Monitoring service.
"""

from __future__ import annotations

import collections
import contextvars
import datetime as dt
import logging
import sys
import threading
from typing import IO, Any

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
service_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("service", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName",
                                                       "color_message"}


def record_to_dict(record: logging.LogRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
            timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
        "request_id": getattr(record, "request_id", None) or request_id_var.get(),
    }
    service = getattr(record, "service", None) or service_var.get()
    if service:
        entry["service"] = service
    for key, value in record.__dict__.items():
        if key not in _STANDARD and key not in entry:
            entry[key] = value
    if record.exc_info:
        entry["exception"] = logging.Formatter().formatException(record.exc_info)
    return entry


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(record_to_dict(record), default=str).decode()


class JsonLines(logging.Handler):
    """Writes each record as one JSON line and keeps it in the ring buffer, building the
    record's dictionary once for both (a line per request is on the hot path)."""

    def __init__(self, stream: IO[str], ring: RingBuffer) -> None:
        super().__init__()
        self._stream = stream
        self._ring = ring

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = record_to_dict(record)
            self._ring.append(entry)
            line = orjson.dumps(entry, default=str) + b"\n"
            with self.lock:  # type: ignore[union-attr]
                if self._stream.closed:
                    # Closed under us: the stderr a test's output capture swapped in, gone with
                    # its test while a thread it started still logs. The ring keeps the record.
                    return
                self._stream.write(line.decode())
                self._stream.flush()
        except Exception:
            self.handleError(record)


class RingBuffer(logging.Handler):
    """The latest `capacity` records, as dictionaries, for `GET /logs`."""

    def __init__(self, capacity: int = 2000) -> None:
        super().__init__()
        self.capacity = capacity
        self._records: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        self.append(record_to_dict(record))

    def append(self, entry: dict[str, Any]) -> None:
        with self._guard:
            self._records.append(entry)

    def latest(self, limit: int, level: int = logging.NOTSET) -> list[dict[str, Any]]:
        with self._guard:
            entries = list(self._records)
        picked = [e for e in entries if logging.getLevelName(e["level"]) >= level]
        return picked[-limit:]


_ring = RingBuffer()


def ring_buffer() -> RingBuffer:
    return _ring


def configure_logging(level: str) -> None:
    """JSON lines on stderr for our loggers and the libraries' (uvicorn included)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(JsonLines(sys.stderr, _ring))
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lib = logging.getLogger(name)
        lib.handlers.clear()
        lib.propagate = True
    # Every request is already logged once by our middleware, with its request id; the HTTP
    # clients' own per-request lines (health probes every few seconds) would drown it.
    for name in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
