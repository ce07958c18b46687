"""The processes `lakehouse up` supervises, as the services report them: how often each was
restarted after a crash, and when last. The supervisor writes `restarts.json` under RUN_DIR
(DATA_DIR/run); the services read it for `/health` and `/metrics`. Without a supervisor (tests, a
service run by hand) there is no file and nothing to report."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from lakehouse.telemetry.metrics import CountsCollector
from lakehouse.telemetry.probes import Check

RESTARTS_FILE = "restarts.json"
RECENT_S = 60.0  # a restart this recent makes /health say "degraded"


def read_restarts(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Per process: {"restarts": n, "last_at": unix time, "last_exit": code}."""
    try:
        found = json.loads((run_dir / RESTARTS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def write_restarts(run_dir: Path, restarts: dict[str, dict[str, Any]]) -> None:
    """Replace the file at once (a reader never sees half of it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    partial = run_dir / f".{RESTARTS_FILE}.{os.getpid()}"
    partial.write_text(json.dumps(restarts, sort_keys=True))
    partial.replace(run_dir / RESTARTS_FILE)


def restarts_check(run_dir: Path, now: float | None = None) -> Check | None:
    """A non-critical health check: not ok while a process restarted in the last RECENT_S."""
    restarts = read_restarts(run_dir)
    if not restarts:
        return None
    now = time.time() if now is None else now
    recent = sorted(name for name, r in restarts.items()
                    if now - float(r.get("last_at") or 0) < RECENT_S)
    detail = {"restarts": {name: int(r.get("restarts") or 0) for name, r in restarts.items()},
              "recently_restarted": recent}
    return Check("processes", not recent, False, 0.0, detail)


def restarts_collector(run_dir: Path) -> CountsCollector:
    """`lakehouse_process_restarts_total{process}`, read from the supervisor's file at scrape
    time (the restarted process itself would have lost a counter it held)."""
    return CountsCollector(
        "lakehouse_process_restarts", "Restarts of a supervised process after it crashed",
        "process", lambda: {name: int(record.get("restarts") or 0)
                            for name, record in sorted(read_restarts(run_dir).items())})
