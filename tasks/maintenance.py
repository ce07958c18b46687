"""Prefect tasks of compaction and retention: plan, one coarse task per partition group, commit.

The tasks reach the catalog and storage through a named MaintenanceContext: the scheduled
deployments (a Prefect worker's subprocess) build it from the settings; a process that starts
a run itself (the CBO Engine, a test) registers its own. A group's rewrite runs on a Dask worker
when a scheduler answers, which gets the storage URI and the file paths, never a live handle.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from lakehouse.catalog.engine import catalog_engine
from lakehouse.catalog.lake import Catalog
from lakehouse.catalog.lake_sql import SqlCatalog
from lakehouse.catalog.options import MIB
from lakehouse.catalog.table_options import SqlTableOptions, TableOptionsStore
from lakehouse.cluster import Cluster
from lakehouse.compaction.planner import CompactionGroup, CompactionPlan, plan_compaction
from lakehouse.compaction.policy import CompactionPolicy
from lakehouse.compaction.retention import plan_retention
from lakehouse.config import Settings
from lakehouse.errors import Conflict
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.maintenance import (
    GroupResult,
    apply_retention,
    compact_group,
    table_files,
)
from lakehouse.storage.rewrite import RewriteResult, rewrite_group

log = logging.getLogger(__name__)

SETTINGS_CONTEXT = "settings"
RETENTION_RETRIES = 3


@dataclass(frozen=True)
class MaintenanceContext:
    catalog: Catalog
    storage: StorageRoot
    options: TableOptionsStore
    policy: CompactionPolicy
    dask_address: str = ""  # "" : rewrite here
    grace_s: float = 3600.0  # dead files stay readable this long
    orphan_age_s: float = 86_400.0  # never-committed files are deleted once this old


def policy_from(settings: Settings) -> CompactionPolicy:
    return CompactionPolicy(
        target_file_bytes=int(settings.compaction_target_file_mb * MIB),
        min_files=settings.compaction_min_files,
        max_files_active=settings.compaction_max_files_active,
        active_window_s=settings.compaction_active_window_s)


def maintenance_context_of(settings: Settings, catalog: Catalog, storage: StorageRoot,
                           options: TableOptionsStore) -> MaintenanceContext:
    return MaintenanceContext(
        catalog, storage, options, policy_from(settings),
        settings.dask_scheduler_address if settings.compaction_on_dask else "",
        settings.cleanup_grace_s, settings.cleanup_orphan_age_s)


def context_from(settings: Settings) -> MaintenanceContext:
    engine = catalog_engine(settings.catalog_url)
    return maintenance_context_of(settings, SqlCatalog(engine),
                                  StorageRoot.parse(settings.storage_root),
                                  SqlTableOptions(engine))


_CONTEXTS: dict[str, MaintenanceContext] = {}
_contexts_lock = threading.Lock()


def register_context(name: str, context: MaintenanceContext) -> None:
    with _contexts_lock:
        _CONTEXTS[name] = context


def maintenance_context(name: str = SETTINGS_CONTEXT) -> MaintenanceContext:
    """A registered context, or (by default) the one the settings describe: a deployment's run
    reads them from its environment, built once per distinct catalog and storage."""
    with _contexts_lock:
        if name != SETTINGS_CONTEXT:
            found = _CONTEXTS.get(name)
            if found is None:
                raise KeyError(f"no maintenance context {name!r} in this process")
            return found
        settings = Settings()
        key = f"{SETTINGS_CONTEXT}:{settings.catalog_url}|{settings.storage_root}"
        found = _CONTEXTS.get(key)
        if found is None:
            found = _CONTEXTS[key] = context_from(settings)
        return found


@task(name="plan-compaction", task_run_name="plan compaction", cache_policy=NO_CACHE)
def plan_compaction_task(context: str, tenant: str | None, table: str | None) -> CompactionPlan:
    found = maintenance_context(context)
    tables = table_files(found.catalog, found.options, tenant, table)
    plan = plan_compaction(tables, found.policy, time.time())
    get_run_logger().info("%d groups to merge: %d files, %d bytes; %d partitions skipped",
                          len(plan.groups), plan.files, plan.bytes, len(plan.skipped))
    return plan


@task(name="compact-group", task_run_name="compact {label}", cache_policy=NO_CACHE,
      retries=2, retry_delay_seconds=2)
def compact_group_task(context: str, group: CompactionGroup, label: str) -> GroupResult:
    found = maintenance_context(context)
    result = compact_group(found.catalog, found.storage, group, found.policy,
                           rewriter(found.dask_address))
    get_run_logger().info("%s: %d files (%d bytes) → %d files (%d bytes), snapshot %s",
                          label, result.files_before, result.bytes_before, result.files_after,
                          result.bytes_after, result.snapshot)
    return result


def rewriter(address: str) -> Any:
    """The rewrite, on the Dask cluster when one answers, else here (lakehouse/cluster.py)."""
    cluster = Cluster(address)

    def rewrite(root_uri: str, group: CompactionGroup) -> RewriteResult:
        return cluster.run(rewrite_group, root_uri, group,
                           name=f"compact-{group.tenant}-{group.table}")

    return rewrite


@task(name="apply-retention", task_run_name="retention", cache_policy=NO_CACHE)
def apply_retention_task(context: str, tenant: str | None) -> dict[str, Any]:
    """Plan and commit, per table; a conflict (a compaction replaced a file) plans again."""
    found = maintenance_context(context)
    dropped: list[dict[str, Any]] = []
    for attempt in range(RETENTION_RETRIES + 1):
        tables = table_files(found.catalog, found.options, tenant)
        drops = plan_retention(tables, time.time())
        try:
            for drop in drops:
                snapshot = apply_retention(found.catalog, drop)
                dropped.append({**drop.to_json(), "snapshot": snapshot})
            break
        except Conflict:
            if attempt == RETENTION_RETRIES:
                raise
    get_run_logger().info("retention removed %d files of %d tables",
                          sum(d["files"] for d in dropped), len(dropped))
    return {"tables": dropped, "files_removed": sum(d["files"] for d in dropped),
            "rows_removed": sum(d["rows"] for d in dropped),
            "bytes_removed": sum(d["bytes"] for d in dropped)}
