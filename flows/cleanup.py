"""Cleanup: files no live snapshot references are deleted once the grace period has passed."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.cleanup import delete_dead_files_task


@flow(name="cleanup", flow_run_name="cleanup",
      description="Delete data files that no live snapshot references, after the grace period.")
def cleanup(grace_s: float | None = None) -> dict[str, Any]:
    return delete_dead_files_task(grace_s)
