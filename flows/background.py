"""Starting a flow run from a request: the run is created first (its id answered at once), then
the flow runs on it in a thread of this process."""

from __future__ import annotations

import contextvars
import logging
import threading
from typing import Any

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.flow_engine import run_flow
from prefect.states import Pending

from lakehouse.errors import Unavailable

log = logging.getLogger(__name__)


def start_flow_run(flow: Flow[..., Any], name: str, parameters: dict[str, Any],
                   tags: list[str]) -> str:
    """The new run's id; Unavailable when the Prefect API cannot be reached."""
    try:
        with get_client(sync_client=True) as client:
            run = client.create_flow_run(flow, name=name,
                                         parameters=flow.serialize_parameters(parameters),
                                         tags=tags, state=Pending())
    except Exception as exc:
        raise Unavailable("the Prefect API cannot be reached, so the run cannot start; "
                          "check that the Prefect server is up (GET /health)",
                          code="prefect_unavailable",
                          details={"error": f"{type(exc).__name__}: {exc}"[:300]}) from exc

    def work() -> None:
        try:
            run_flow(flow, flow_run=run, parameters=parameters)
        except BaseException:  # the run's state in Prefect holds the error
            log.exception("the %s run failed", flow.name, extra={"run_id": str(run.id)})

    context = contextvars.copy_context()  # Prefect's settings (its API URL) go along
    threading.Thread(target=context.run, args=(work,), name=f"{flow.name}-{str(run.id)[:8]}",
                     daemon=True).start()
    return str(run.id)
