"""Retention: files whose rows are all older than their table's retention period are removed in
a snapshot (cleanup deletes the objects after the grace period). Rows older than the period in
files that stay are hidden from reads at once, by the scan."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from flows.run_results import publish
from tasks.maintenance import SETTINGS_CONTEXT, apply_retention_task


@flow(name="retention", flow_run_name="retention",
      description="Remove data files older than their table's retention period.")
def retention(tenant: str | None = None, context: str = SETTINGS_CONTEXT) -> dict[str, Any]:
    result = apply_retention_task(context, tenant)
    summary = {"run_id": str(flow_run.id), "flow": "retention", **result}
    publish(summary["run_id"], summary)
    return summary
