"""Deleting data files no live snapshot references, once a grace period has passed.

A file removed from the table (by compaction, retention or a drop) stays readable for the
grace period, so a query pinned to an older snapshot still finds it; then its object is deleted
and the catalog forgets it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lakehouse.catalog.lake import Catalog
from lakehouse.storage.location import StorageRoot

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CleanupResult:
    files_deleted: int
    bytes_freed: int
    already_gone: int
    removed_before_snapshot: int


def first_snapshot_after(catalog: Catalog, cutoff: float) -> int:
    """The oldest snapshot made after `cutoff` (epoch seconds); files removed before it have
    been dead for at least the grace period."""
    newer = [s.snapshot_id for s in catalog.snapshots(limit=100_000) if s.created_at > cutoff]
    return min(newer) if newer else catalog.current_snapshot() + 1


def delete_dead_files(catalog: Catalog, storage: StorageRoot, grace_s: float,
                      now: float) -> CleanupResult:
    boundary = first_snapshot_after(catalog, now - grace_s)
    dead = catalog.dead_files(boundary)
    deleted = gone = freed = 0
    for file in dead:
        try:
            storage.fs.delete_file(storage.full(file.path))
            deleted += 1
            freed += file.byte_size
        except FileNotFoundError:
            gone += 1  # deleted by an earlier run that died before the catalog forgot it
    catalog.forget_files([f.file_id for f in dead if f.file_id is not None])
    log.info("dead files deleted", extra={"deleted": deleted, "already_gone": gone,
                                          "bytes": freed, "before_snapshot": boundary})
    return CleanupResult(deleted, freed, gone, boundary)
