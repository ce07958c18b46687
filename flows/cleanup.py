"""Cleanup: files no live snapshot references are deleted once the grace period has passed, and
files no snapshot ever referenced once they are older than the orphan age."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from flows.run_results import publish
from flows.runs import filed
from tasks.cleanup import delete_dead_files_task, delete_orphans_task
from tasks.maintenance import settings_context


@flow(name="cleanup", flow_run_name="cleanup",
      description="Delete data files that no live snapshot references, after the grace period.")
def cleanup(grace_s: float | None = None, orphan_age_s: float | None = None,
            context: str = "") -> dict[str, Any]:
    """`context`: a MaintenanceContext filed in this process (flows/runs.py); none: the one
    the settings name."""
    found = filed(context) or settings_context()
    dead = delete_dead_files_task(found, grace_s)
    orphans = delete_orphans_task(found, orphan_age_s)
    summary = {"run_id": str(flow_run.id), "flow": "cleanup", **dead,
               "orphans_deleted": orphans["files_deleted"],
               "orphan_bytes_freed": orphans["bytes_freed"]}
    publish(summary["run_id"], summary)
    return summary
