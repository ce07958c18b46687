"""The cleanup task: delete files no live snapshot references after the grace period."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from prefect import get_run_logger, task

from lakehouse.catalog.engine import catalog_engine
from lakehouse.catalog.lake_sql import SqlCatalog
from lakehouse.config import Settings
from lakehouse.storage.cleanup import delete_dead_files
from lakehouse.storage.location import StorageRoot


@task(name="delete-dead-files", retries=2, retry_delay_seconds=5)
def delete_dead_files_task(grace_s: float | None = None) -> dict[str, Any]:
    settings = Settings()
    engine = catalog_engine(settings.catalog_url)
    try:
        result = delete_dead_files(SqlCatalog(engine), StorageRoot.parse(settings.storage_root),
                                   settings.cleanup_grace_s if grace_s is None else grace_s,
                                   time.time())
    finally:
        engine.dispose()
    get_run_logger().info("deleted %d dead files (%d bytes); %d were already gone",
                          result.files_deleted, result.bytes_freed, result.already_gone)
    return asdict(result)
