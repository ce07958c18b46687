"""Compaction and retention against the catalog: read its state, commit the changes.

The planners (lakehouse/compaction) are pure; this module feeds them the catalog's live files
and commits what they decide. A compaction commit says "replace exactly these input files with
these outputs" and does not count as a data change; a flush or load into the same partition
adds other files, so it never conflicts. When an input was removed meanwhile (another
compaction, retention, a drop), the group is planned again from fresh metadata and retried.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lakehouse.catalog.lake import AddFiles, Catalog, Commit, RemoveFiles
from lakehouse.catalog.options import NO_OPTIONS
from lakehouse.catalog.table_options import TableOptionsStore
from lakehouse.compaction.planner import CompactionGroup, pack
from lakehouse.compaction.policy import CompactionPolicy
from lakehouse.compaction.retention import RetentionDrop
from lakehouse.compaction.state import TableFiles, group_by_partition
from lakehouse.errors import Conflict
from lakehouse.faults import crash_point
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.rewrite import RewriteResult, rewrite_group

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 3
# (root URI, group) → result: on a Dask worker, or here.
Rewrite = Callable[[str, CompactionGroup], RewriteResult]


def table_files(catalog: Catalog, options: TableOptionsStore, tenant: str | None = None,
                table: str | None = None) -> list[TableFiles]:
    """Live files of every table (or one tenant's, or one table), by partition."""
    added_at = {s.snapshot_id: s.created_at for s in catalog.snapshots(limit=1_000_000)}
    every = options.all()
    found = []
    for info in catalog.tables(tenant):
        if table is not None and info.name != table:
            continue
        files = catalog.files(info.tenant, info.name)
        found.append(TableFiles(info.tenant, info.name, group_by_partition(files, added_at),
                                info.sort_key, every.get((info.tenant, info.name), NO_OPTIONS)))
    return found


@dataclass(frozen=True, slots=True)
class GroupResult:
    group: CompactionGroup
    snapshot: int | None  # None: nothing was left to merge after a conflict
    files_before: int
    files_after: int
    bytes_before: int
    bytes_after: int
    rows_before: int
    rows_after: int
    attempts: int

    def to_json(self) -> dict[str, Any]:
        return {"table": f"{self.group.tenant}/{self.group.table}",
                "partition": self.group.partition, "snapshot": self.snapshot,
                "files_before": self.files_before, "files_after": self.files_after,
                "bytes_before": self.bytes_before, "bytes_after": self.bytes_after,
                "rows_before": self.rows_before, "rows_after": self.rows_after,
                "attempts": self.attempts}


def compact_group(catalog: Catalog, storage: StorageRoot, group: CompactionGroup,
                  policy: CompactionPolicy, rewrite: Rewrite = rewrite_group) -> GroupResult:
    """Rewrite and commit one group; on a conflict, re-plan it from the live files and retry."""
    current: CompactionGroup | None = group
    for attempt in range(1, CONFLICT_RETRIES + 2):
        if current is None:
            break
        result = rewrite(storage.uri, current)
        crash_point("compaction:after_rewrite")
        try:
            snapshot = catalog.commit(Commit(
                "compaction",
                (RemoveFiles(current.tenant, current.table, current.file_ids),
                 AddFiles(current.tenant, current.table, result.outputs)),
                summary={"table": f"{current.tenant}/{current.table}",
                         "partition": current.partition, "files_in": len(current.inputs),
                         "files_out": len(result.outputs), "bytes_in": result.bytes_in,
                         "bytes_out": result.bytes_out},
                data_change=False))
        except Conflict as exc:
            discard(storage, [f.path for f in result.outputs])
            log.info("compaction conflict; planning the group again",
                     extra={"group": current.describe(), "attempt": attempt,
                            "reason": exc.details.get("reason")})
            if attempt > CONFLICT_RETRIES:
                raise
            current = _replan(catalog, current, policy)
            continue
        crash_point("compaction:after_commit")
        return GroupResult(current, snapshot, len(current.inputs), len(result.outputs),
                           result.bytes_in, result.bytes_out, result.rows_in, result.rows_out,
                           attempt)
    return GroupResult(group, None, 0, 0, 0, 0, 0, 0, CONFLICT_RETRIES + 1)


def _replan(catalog: Catalog, group: CompactionGroup,
            policy: CompactionPolicy) -> CompactionGroup | None:
    """The group's inputs that are still live, packed again (None: no longer worth it)."""
    wanted = set(group.file_ids)
    live = [f for f in catalog.files(group.tenant, group.table)
            if f.partition == group.partition and f.file_id in wanted]
    runs = pack(live, replace(policy, target_file_bytes=group.target_file_bytes))
    return replace(group, inputs=runs[0]) if runs else None


def discard(storage: StorageRoot, paths: Sequence[str]) -> None:
    """Best effort: files no commit references (cleanup's orphan sweep gets any left)."""
    for path in paths:
        with contextlib.suppress(OSError):
            storage.fs.delete_file(storage.full(path))


def apply_retention(catalog: Catalog, drop: RetentionDrop) -> int:
    """Remove the expired files in one snapshot; cleanup deletes their objects later."""
    return catalog.commit(Commit(
        "retention",
        (RemoveFiles(drop.tenant, drop.table,
                     tuple(f.file_id for f in drop.files if f.file_id is not None)),),
        summary={"table": f"{drop.tenant}/{drop.table}", "files": len(drop.files),
                 "rows": drop.rows, "partitions": list(drop.partitions)}))
