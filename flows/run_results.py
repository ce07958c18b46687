"""Results of the flow runs this process ran, for `GET /runs/{id}`.

Prefect keeps a run's state, not its return value (results are not persisted), so the process
that ran a flow remembers its small summary for a while.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from typing import Any

MAX_REMEMBERED = 1000
SHARED_TAG = "shared"  # runs that touch every tenant, like the flush of the shared log

_lock = threading.Lock()
_results: OrderedDict[str, dict[str, Any]] = OrderedDict()
# The tags of runs started without Prefect (who may see them), as Prefect keeps them for its own.
_tags: OrderedDict[str, tuple[str, ...]] = OrderedDict()


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


def remember_tags(run_id: str, tags: tuple[str, ...]) -> None:
    with _lock:
        _tags[run_id] = tags
        while len(_tags) > MAX_REMEMBERED:
            _tags.popitem(last=False)


def recall_tags(run_id: str) -> tuple[str, ...] | None:
    with _lock:
        return _tags.get(run_id)


RESULT_ARTIFACT = "run result"
RESULT_COLUMN = "result_json"


def publish(run_id: str, result: dict[str, Any]) -> None:
    """Remember the result here and attach it to the run as a table artifact, so any process
    (the API answering GET /runs/{id} for a scheduled run on a worker) can read it back."""
    remember(run_id, result)
    try:
        from prefect.artifacts import create_table_artifact

        row = {k: v for k, v in result.items() if isinstance(v, str | int | float | bool)}
        row[RESULT_COLUMN] = json.dumps(result, default=str)
        create_table_artifact([row], description=RESULT_ARTIFACT)
    except Exception:  # a courtesy: the run's own outcome does not depend on it
        logging.getLogger(__name__).warning("cannot attach the run's result",
                                            extra={"run_id": run_id})


def published(artifact_data: Any) -> dict[str, Any] | None:
    """The result `publish` attached, from the artifact's data (None if it is not one)."""
    try:
        rows = json.loads(artifact_data) if isinstance(artifact_data, str) else artifact_data
        found = json.loads(rows[0][RESULT_COLUMN])
    except (ValueError, TypeError, KeyError, IndexError):
        return None
    return found if isinstance(found, dict) else None
