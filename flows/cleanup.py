"""Cleanup: files no live snapshot references are deleted once the grace period has passed, and
files no snapshot ever referenced once they are older than the orphan age."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from flows.run_results import publish
from tasks.cleanup import delete_dead_files_task, delete_orphans_task
from tasks.maintenance import SETTINGS_CONTEXT


@flow(name="cleanup", flow_run_name="cleanup",
      description="Delete data files that no live snapshot references, after the grace period.")
def cleanup(grace_s: float | None = None, orphan_age_s: float | None = None,
            context: str = SETTINGS_CONTEXT) -> dict[str, Any]:
    dead = delete_dead_files_task(grace_s, context)
    orphans = delete_orphans_task(orphan_age_s, context)
    summary = {"run_id": str(flow_run.id), "flow": "cleanup", **dead,
               "orphans_deleted": orphans["files_deleted"],
               "orphan_bytes_freed": orphans["bytes_freed"]}
    publish(summary["run_id"], summary)
    return summary
