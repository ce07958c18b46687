"""The steps of compaction and retention: plan, one partition group merged, the summary.

The steps reach the catalog and storage through a MaintenanceContext: the scheduled
deployments (a Prefect worker's subprocess) build it from the settings (settings_context); a
process that starts a run itself (the CBO Engine, a test) gives its own. A group's rewrite runs
on a Dask worker when a scheduler answers, which gets the storage URI and the file paths, never
a live handle.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

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
from tasks.logs import step_log

log = logging.getLogger(__name__)

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


def settings_context() -> MaintenanceContext:
    """The context the settings describe (a scheduled deployment's run reads them from its
    environment), built once per distinct catalog and storage."""
    settings = Settings()
    return _context_of(settings.catalog_url, settings.storage_root)


@functools.lru_cache(maxsize=8)
def _context_of(catalog_url: str, storage_root: str) -> MaintenanceContext:
    return context_from(Settings(catalog_url=catalog_url, storage_root=storage_root))


def plan_compaction_step(context: MaintenanceContext, tenant: str | None,
                         table: str | None, *, include_active: bool = False) -> CompactionPlan:
    """`include_active`: merge the newest partition too, even while it receives flushes (an
    explicit request; a concurrent flush's commit is not lost, see compact_group)."""
    tables = table_files(context.catalog, context.options, tenant, table)
    policy = replace(context.policy, active_window_s=0) if include_active else context.policy
    plan = plan_compaction(tables, policy, time.time())
    step_log().info("%d groups to merge: %d files, %d bytes; %d partitions skipped",
                    len(plan.groups), plan.files, plan.bytes, len(plan.skipped))
    return plan


def compact_group_step(context: MaintenanceContext, group: CompactionGroup) -> GroupResult:
    """One group merged and committed in its own snapshot (not a data change)."""
    result = compact_group(context.catalog, context.storage, group, context.policy,
                           rewriter(context.dask_address))
    step_log().info("%s: %d files (%d bytes) → %d files (%d bytes), snapshot %s",
                    group.describe(), result.files_before, result.bytes_before,
                    result.files_after, result.bytes_after, result.snapshot)
    return result


def compaction_summary(plan: CompactionPlan, results: list[GroupResult],
                       dry_run: bool) -> dict[str, Any]:
    summary: dict[str, Any] = {"dry_run": dry_run, "plan": plan.to_json()}
    if dry_run:
        return summary
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
    return summary


def rewriter(address: str) -> Any:
    """The rewrite, on the Dask cluster when one answers, else here (lakehouse/cluster.py)."""
    def rewrite(root_uri: str, group: CompactionGroup) -> RewriteResult:
        return Cluster(address, root_uri).run(rewrite_group, root_uri, group,
                           name=f"compact-{group.tenant}-{group.table}")

    return rewrite


def apply_retention_step(context: MaintenanceContext, tenant: str | None) -> dict[str, Any]:
    """Plan and commit, per table; a conflict (a compaction replaced a file) plans again."""
    dropped: list[dict[str, Any]] = []
    for attempt in range(RETENTION_RETRIES + 1):
        tables = table_files(context.catalog, context.options, tenant)
        drops = plan_retention(tables, time.time())
        try:
            for drop in drops:
                snapshot = apply_retention(context.catalog, drop)
                dropped.append({**drop.to_json(), "snapshot": snapshot})
            break
        except Conflict:
            if attempt == RETENTION_RETRIES:
                raise
    step_log().info("retention removed %d files of %d tables",
                    sum(d["files"] for d in dropped), len(dropped))
    return {"tables": dropped, "files_removed": sum(d["files"] for d in dropped),
            "rows_removed": sum(d["rows"] for d in dropped),
            "bytes_removed": sum(d["bytes"] for d in dropped)}
