"""Reading runs back from Prefect: which runs count as having run, and what they returned.

Prefect's START_TIME_DESC sorts by `coalesce(start_time, expected_start_time)`, so a scheduled
deployment's future runs (no start time, an expected start tomorrow) sort before every run
that actually ran. Asking for "the newest run" must therefore filter on a start time, not
rely on the sort alone.
"""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterType,
    FlowRunFilter,
    FlowRunFilterStartTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.settings import PREFECT_API_AUTH_STRING

from flows.run_results import published, recall

# States a run is in before it starts: listed by when they are expected, soonest first.
NOT_STARTED = frozenset({StateType.SCHEDULED, StateType.PENDING})


def prefect_client(api_url: str) -> PrefectClient:
    """A client of the Prefect API at `api_url` that signs in as Prefect's own clients do:
    with PREFECT_API_AUTH_STRING ("user:password") when the server requires it
    (PREFECT_SERVER_API_AUTH_STRING; README "Prefect and Dask with authentication")."""
    return PrefectClient(api=api_url, auth_string=PREFECT_API_AUTH_STRING.value())


def runs_filter(state: StateType | None = None,
                tags: list[str] | None = None) -> FlowRunFilter:
    """Runs that started (any state), or, when a state is named, the runs in that state."""
    return FlowRunFilter(
        start_time=None if state is not None else FlowRunFilterStartTime(is_null_=False),
        state=None if state is None else FlowRunFilterState(
            type=FlowRunFilterStateType(any_=[state])),
        tags=None if tags is None else FlowRunFilterTags(any_=tags))


async def run_result(client: PrefectClient, run: FlowRun) -> dict[str, Any] | None:
    """The summary a run returned: remembered by this process if it ran it, else the result
    the run attached as an artifact (a scheduled deployment's run on the worker)."""
    found = recall(str(run.id))
    if found is not None:
        return found
    artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]),
        type=ArtifactFilterType(any_=["table"])))
    for artifact in artifacts:
        found = published(artifact.data)
        if found is not None:
            return found
    return None
