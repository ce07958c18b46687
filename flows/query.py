"""The tracked query: a `query` flow run with a plan, a stage (scans, and on a distributed plan
the fragments on Dask) and a merge task, the plan attached as an artifact.

The query service (lakehouse/executor/service.py) decides when a query is tracked and hands it
here (`track_query`); the run shell (flows/runs.py) creates the run first, so its id is known at
once, and when the Prefect API cannot be reached runs the same steps here, untracked.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.run_results import tenant_tag
from flows.runs import Job, StepNames, filed, run_steps, start
from lakehouse.executor.queries import QueryRun
from lakehouse.executor.service import QueryService
from tasks.query import merge_query, plan_query, stage_label, stage_query


def query_job(service: QueryService, query: QueryRun) -> Job[Any, Any, Any]:
    return Job(
        kind="query", names=StepNames("plan-query", "query-stage", "query-merge",
                                      plan_run="plan", finish_run="merge"),
        plan=lambda: plan_query(service, query),
        parts=lambda execution: [execution],
        run_part=stage_query,
        finish=lambda execution, staged: merge_query(service, query, execution, staged),
        part_label=stage_label, counted="stages done")


@flow(name="query", flow_run_name="query {query_id}", log_prints=False,
      description="A tracked query: plan, stage (scans and fragments on Dask), merge.")
def query_flow(query_id: str, job: str) -> dict[str, Any]:
    found = filed(job)
    if found is None:
        raise LookupError(f"query {query_id} is not in this process")
    return run_steps(found)


def track_query(service: QueryService, query: QueryRun) -> None:
    """Run the query as a `query` flow run and wait for it (see QueryService)."""
    watch = start(query_job(service, query), query_flow, name=f"query {query.query_id}",
                  parameters={"query_id": query.query_id}, tags=[tenant_tag(query.tenant)])
    if not watch.run_id.startswith("local-"):
        query.flow_run_id = watch.run_id
    watch.wait()
