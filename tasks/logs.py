"""Where a step's log lines go: the run's log in the Prefect UI inside a run, this module's
logger outside one (the same steps run in a plain loop when Prefect cannot be reached)."""

from __future__ import annotations

import logging
from typing import Any

from prefect import get_run_logger
from prefect.context import FlowRunContext, TaskRunContext


def step_log() -> Any:
    if TaskRunContext.get() is not None or FlowRunContext.get() is not None:
        return get_run_logger()
    return logging.getLogger("lakehouse.steps")
