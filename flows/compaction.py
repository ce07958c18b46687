"""Compaction: small files of each partition merged into few large ones, without changing a row.

Coarse Prefect tasks, one per partition group (several run at once), each sending its rewrite to
a Dask worker; every group commits its own snapshot (not a data change), so a failure loses only
that group's work. A dry run reports the plan and writes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect import flow
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows.progress import RunProgress
from flows.run_results import publish
from lakehouse.storage.maintenance import GroupResult
from tasks.maintenance import SETTINGS_CONTEXT, compact_group_task, plan_compaction_task

log = logging.getLogger(__name__)

GROUP_TASKS = 4


def _run_name() -> str:
    parameters = flow_run.parameters
    scope = parameters.get("table") or parameters.get("tenant") or "all tables"
    if parameters.get("tenant") and parameters.get("table"):
        scope = f"{parameters['tenant']}/{parameters['table']}"
    return f"compaction{' (dry run)' if parameters.get('dry_run') else ''} of {scope}"


# (The ignore: Prefect's annotations cannot infer a fresh runner's future type.)
@flow(name="compaction", flow_run_name=_run_name,
      task_runner=ThreadPoolTaskRunner(max_workers=GROUP_TASKS),  # type: ignore[arg-type]
      description="Merge small data files into large ones, one snapshot per partition group.")
def compaction(tenant: str | None = None, table: str | None = None, dry_run: bool = False,
               context: str = SETTINGS_CONTEXT) -> dict[str, Any]:
    run_id = str(flow_run.id)
    plan = plan_compaction_task(context, tenant, table)
    summary: dict[str, Any] = {"run_id": run_id, "flow": "compaction", "dry_run": dry_run,
                               "plan": plan.to_json()}
    if dry_run:
        publish(run_id, summary)
        return summary
    total = len(plan.groups)
    progress = RunProgress.start(total, "groups merged")
    futures = [compact_group_task.submit(context, group, group.describe())
               for group in plan.groups]
    for done, _ in enumerate(as_completed(futures), start=1):
        progress.report(done)
    results: list[GroupResult] = [f.result() for f in futures]
    committed = [r for r in results if r.snapshot is not None]
    summary.update(
        groups=len(plan.groups), groups_committed=len(committed),
        files_before=sum(r.files_before for r in committed),
        files_after=sum(r.files_after for r in committed),
        bytes_before=sum(r.bytes_before for r in committed),
        bytes_after=sum(r.bytes_after for r in committed),
        rows_before=sum(r.rows_before for r in committed),
        rows_after=sum(r.rows_after for r in committed),
        retried_groups=sum(1 for r in results if r.attempts > 1),
        details=[r.to_json() for r in results])
    publish(run_id, summary)
    return summary
