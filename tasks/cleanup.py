"""The cleanup tasks: delete files no live snapshot references after the grace period, and
files no snapshot ever referenced (a writer died before its commit) once they are old enough."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from lakehouse.storage.cleanup import delete_dead_files, delete_orphans
from tasks.logs import step_log
from tasks.maintenance import MaintenanceContext


@task(name="delete-dead-files", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def delete_dead_files_task(found: MaintenanceContext,
                           grace_s: float | None = None) -> dict[str, Any]:
    result = delete_dead_files(found.catalog, found.storage,
                               found.grace_s if grace_s is None else grace_s, time.time())
    step_log().info("deleted %d dead files (%d bytes); %d were already gone",
                          result.files_deleted, result.bytes_freed, result.already_gone)
    return asdict(result)


@task(name="delete-orphans", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def delete_orphans_task(found: MaintenanceContext,
                        orphan_age_s: float | None = None) -> dict[str, Any]:
    result = delete_orphans(found.catalog, found.storage,
                            found.orphan_age_s if orphan_age_s is None else orphan_age_s,
                            time.time())
    step_log().info("deleted %d orphan files (%d bytes)", result.files_deleted,
                          result.bytes_freed)
    return asdict(result)
