"""The thread that flushes the log: when the backlog passes a threshold (flush_policy.decide),
when asked, and at shutdown.

It runs in the control-plane process, which owns the WAL, so a flush never waits for a worker
to poll. What a flush is (the ingest flow's run, see flows/ingest.py) is given to it: this
module decides when, never how.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from lakehouse.errors import LakehouseError
from lakehouse.ingest.flush_policy import Action, Backlog, FlushThresholds, decide
from lakehouse.ingest.service import IngestService

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 2
SCHEMA_POLL_S = 5.0  # how often the catalog's schemas are taken in by the write path


class FlushTrigger:
    def __init__(self, service: IngestService, flush: Callable[[str], dict[str, Any]],
                 limits: FlushThresholds, interval_s: float = 1.0) -> None:
        """`flush(reason)` flushes and answers the run's summary."""
        self._service = service
        self._flush = flush
        self._limits = limits
        self._interval_s = interval_s
        self._wake = threading.Event()
        self._stopping = False
        self._requests: list[Future[dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="flush-trigger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request(self) -> Future[dict[str, Any]]:
        """Flush now; the future gives the run's summary."""
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._requests.append(future)
        self._wake.set()
        return future

    def stop(self, timeout_s: float = 60.0) -> None:
        """Flush what is left, then stop."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        polled = time.monotonic()
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            if time.monotonic() - polled >= SCHEMA_POLL_S:
                # Loads run by other processes change tables' types without telling us.
                self._service.refresh_schemas()
                polled = time.monotonic()
            stopping = self._stopping
            with self._lock:
                waiting, self._requests = self._requests, []
            rows, size, age = self._service.unflushed_totals()
            action, reason = decide(Backlog(rows, size, age, stopping, bool(waiting)),
                                    self._limits)
            result: dict[str, Any] = {"rows": 0, "files": 0, "snapshot": None}
            if action is Action.FLUSH:
                result = self._flush_reporting(reason)
            for future in waiting:
                future.set_result(result)
            if stopping:
                return

    def _flush_reporting(self, reason: str) -> dict[str, Any]:
        """The run's summary, or what went wrong (the next round tries again). A conflict (a
        load changed a table's types meanwhile) plans again at once."""
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                return self._flush(reason)
            except LakehouseError as exc:
                if exc.retryable and attempt < CONFLICT_RETRIES:
                    log.info("the flush plans again", extra={"error": exc.message[:200]})
                    continue
                error: Exception = exc
            except Exception as exc:
                error = exc
            break
        log.error("flush failed", exc_info=error)
        return {"rows": 0, "files": 0, "snapshot": None,
                "error": f"{type(error).__name__}: {error}"[:500]}
