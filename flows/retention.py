"""Retention: files whose rows are all older than their table's retention period are removed in
a snapshot (cleanup deletes the objects after the grace period). Rows older than the period in
files that stay are hidden from reads at once, by the scan."""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows.run_results import publish
from flows.runs import filed
from tasks.maintenance import apply_retention_step, settings_context

retention_task = task(name="apply-retention", task_run_name="retention",
                      cache_policy=NO_CACHE)(apply_retention_step)


@flow(name="retention", flow_run_name="retention",
      description="Remove data files older than their table's retention period.")
def retention(tenant: str | None = None, context: str = "") -> dict[str, Any]:
    """`context`: a MaintenanceContext filed in this process (flows/runs.py); none: the one
    the settings name."""
    result = retention_task(filed(context) or settings_context(), tenant)
    summary = {"run_id": str(flow_run.id), "flow": "retention", **result}
    publish(summary["run_id"], summary)
    return summary
