"""Results of the flow runs this process ran, for `GET /runs/{id}`.

Prefect keeps a run's state, not its return value (results are not persisted), so the process
that ran a flow remembers its small summary for a while.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

MAX_REMEMBERED = 1000
SHARED_TAG = "shared"  # runs that touch every tenant, like the flush of the shared log

_lock = threading.Lock()
_results: OrderedDict[str, dict[str, Any]] = OrderedDict()


def tenant_tag(tenant: str) -> str:
    return f"tenant:{tenant}"


def remember(run_id: str, result: dict[str, Any]) -> None:
    with _lock:
        _results[run_id] = result
        _results.move_to_end(run_id)
        while len(_results) > MAX_REMEMBERED:
            _results.popitem(last=False)


def recall(run_id: str) -> dict[str, Any] | None:
    with _lock:
        return _results.get(run_id)
