"""The steps of a tracked query: plan (the plan attached to the run as an artifact), stage (the
scans, and on a distributed plan the fragments' partial queries on Dask), merge. flows/query.py
declares them as the query job; the query service does the work.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.artifacts import create_markdown_artifact
from prefect.context import FlowRunContext

from lakehouse.executor.queries import QueryRun
from lakehouse.executor.run import Execution, Staged
from lakehouse.executor.service import QueryService
from tasks.logs import step_log

log = logging.getLogger(__name__)


def plan_query(service: QueryService, query: QueryRun) -> Execution:
    execution = service.plan_run(query)
    dist = execution.plan.distribution
    step_log().info("%s plan, %d relations: %s", dist.strategy.value,
                    len(execution.plan.scans), dist.reason)
    if FlowRunContext.get() is not None:
        _plan_artifact(execution.plan.to_json())
    return execution


def stage_label(execution: Execution) -> str:
    dist = execution.plan.distribution
    return ("scan" if dist.strategy.value == "single" else
            f"stage: {dist.fragments} fragments ({dist.strategy.value})")


def stage_query(execution: Execution) -> Staged:
    staged = execution.stage(execution.prepare())
    step_log().info("%d fragments done, %d bytes scanned", execution.progress.fragments_done,
                    execution.progress.bytes_scanned)
    return staged


def merge_query(service: QueryService, query: QueryRun, execution: Execution,
                staged: list[Staged]) -> dict[str, Any]:
    [only] = staged
    service.finish_run(query, execution, only)
    rows = query.result.num_rows if query.result is not None else 0
    step_log().info("%d rows in %.3f s", rows, query.elapsed_s)
    return {"query_id": query.query_id, "rows": rows,
            "strategy": execution.plan.distribution.strategy.value}


def _plan_artifact(plan: dict[str, Any]) -> None:
    lines = [f"**Strategy:** {plan['distribution']['strategy']} — "
             f"{plan['distribution']['reason']}", "", "| relation | files | bytes | rows "
             "(est.) | predicate |", "|---|---|---|---|---|"]
    for scan in plan["scans"]:
        lines.append(f"| {scan['relation']} | {scan['files']}/{scan['files_total']} | "
                     f"{scan['bytes']} | {scan['estimated_rows']} | "
                     f"{(scan['predicate'] or '').replace('|', '/')[:200]} |")
    lines += ["", "**Decisions**", ""] + [f"- {d['rule']}: {d['detail']}"
                                          for d in plan["decisions"]]
    lines += ["", "```sql", plan["sql"], "```"]
    try:
        create_markdown_artifact("\n".join(lines), description="query plan")
    except Exception as exc:  # a courtesy: the query does not depend on it
        log.warning("cannot attach the query plan", extra={"error": str(exc)[:200]})
