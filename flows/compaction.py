"""Compaction: small files of each partition merged into few large ones, without changing a row.

Its steps (tasks/maintenance.py) are declared once as a Job: plan, one coarse task per partition
group (several run at once), each sending its rewrite to a Dask worker, the summary. Every group
commits its own snapshot (not a data change), so a failure loses only that group's work. A dry
run reports the plan and writes nothing. The run shell (flows/runs.py) refuses to start one
when Prefect cannot be reached.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows.run_results import SHARED_TAG, tenant_tag
from flows.runs import Job, RunWatch, StepNames, filed, run_steps, start
from tasks.maintenance import (
    MaintenanceContext,
    compact_group_step,
    compaction_summary,
    plan_compaction_step,
    settings_context,
)

GROUP_TASKS = 4


def compaction_job(context: MaintenanceContext, tenant: str | None = None,
                   table: str | None = None, dry_run: bool = False, *,
                   on_demand: bool = False) -> Job[Any, Any, Any]:
    """`on_demand`: someone asked (the API, the CLI), so every partition is merged, the newest
    included; the schedule spares the partition still receiving flushes."""
    return Job(
        kind="compaction",
        names=StepNames("plan-compaction", "compact-group", None, plan_run="plan compaction"),
        plan=lambda: plan_compaction_step(context, tenant, table, include_active=on_demand),
        parts=lambda plan: () if dry_run else plan.groups,
        run_part=lambda group: compact_group_step(context, group),
        finish=lambda plan, results: compaction_summary(plan, results, dry_run),
        part_label=lambda group: f"compact {group.describe()}", counted="groups merged",
        parallel=GROUP_TASKS, retries=2, attach_result=True)


def run_name(tenant: str | None, table: str | None, dry_run: bool) -> str:
    scope = f"{tenant}/{table}" if tenant and table else (table or tenant or "all tables")
    return f"compaction{' (dry run)' if dry_run else ''} of {scope}"


def _run_name() -> str:
    given = flow_run.parameters
    return run_name(given.get("tenant"), given.get("table"), bool(given.get("dry_run")))


# (The ignore: Prefect's annotations cannot infer a fresh runner's future type.)
@flow(name="compaction", flow_run_name=_run_name,
      task_runner=ThreadPoolTaskRunner(max_workers=GROUP_TASKS),  # type: ignore[arg-type]
      description="Merge small data files into large ones, one snapshot per partition group.")
def compaction(tenant: str | None = None, table: str | None = None, dry_run: bool = False,
               job: str = "") -> dict[str, Any]:
    """`job`: the run a process started itself (start_compaction); none: a scheduled run,
    which reaches the catalog and storage the settings name."""
    found = filed(job)
    if found is None:
        found = compaction_job(settings_context(), tenant, table, dry_run)
    return run_steps(found)


def start_compaction(context: MaintenanceContext, tenant: str | None = None,
                     table: str | None = None, dry_run: bool = False) -> RunWatch:
    """A compaction run of this process; Unavailable when Prefect cannot be reached."""
    return start(compaction_job(context, tenant, table, dry_run, on_demand=True), compaction,
                 name=run_name(tenant, table, dry_run),
                 parameters={"tenant": tenant, "table": table, "dry_run": dry_run},
                 tags=[tenant_tag(tenant)] if tenant else [SHARED_TAG])
