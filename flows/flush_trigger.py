"""Runs the ingest flow when the backlog passes a threshold, when asked, and at shutdown.

A thread of the control-plane process: it owns the WAL, so the flow runs here, in-process, and a
flush never waits for a worker to poll. If the Prefect API cannot be reached the same steps run
without it, so ingestion never stalls because the orchestrator is down.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import Future
from typing import Any

from prefect import tags

from flows.ingest import ingest
from flows.run_results import SHARED_TAG, remember
from lakehouse.ingest.flush import Flusher
from lakehouse.ingest.flush_policy import Action, Backlog, FlushThresholds, decide

log = logging.getLogger(__name__)

SCHEMA_POLL_S = 5.0  # how often the catalog's schemas are taken in by the write path


class FlushTrigger:
    def __init__(self, flusher: Flusher, name: str, limits: FlushThresholds,
                 interval_s: float = 1.0) -> None:
        self._flusher = flusher
        self._name = name
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
                self._flusher.service.refresh_schemas()
                polled = time.monotonic()
            stopping = self._stopping
            with self._lock:
                waiting, self._requests = self._requests, []
            rows, size, age = self._flusher.service.unflushed_totals()
            action, reason = decide(Backlog(rows, size, age, stopping, bool(waiting)),
                                    self._limits)
            result: dict[str, Any] = {"rows": 0, "files": 0, "snapshot": None}
            if action is Action.FLUSH:
                result = run_flush(self._flusher, self._name, reason)
            for future in waiting:
                future.set_result(result)
            if stopping:
                return

def run_flush(flusher: Flusher, name: str, reason: str) -> dict[str, Any]:
    """The ingest flow as a Prefect run; without Prefect, the same steps run here."""
    try:
        with tags(SHARED_TAG):  # the log is every tenant's: every tenant may see the run
            result: dict[str, Any] = ingest(name, reason)
        remember(result["run_id"], result)
        return result
    except Exception as exc:  # Prefect unreachable or the flow failed: flush without it
        log.warning("the ingest flow failed; flushing without Prefect",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
    try:
        done = flusher.flush()
    except Exception as exc:
        log.exception("flush failed")
        return {"rows": 0, "files": 0, "snapshot": None,
                "error": f"{type(exc).__name__}: {exc}"[:500]}
    run_id = f"local-{uuid.uuid4().hex[:12]}"
    local: dict[str, Any] = {"run_id": run_id, "snapshot": done.snapshot,
             "rows": done.rows, "files": done.files, "bytes": done.bytes,
             "through_seq": done.through, "tables": list(done.tables), "flow": "ingest",
             "state": "COMPLETED"}
    remember(run_id, local)
    return local
