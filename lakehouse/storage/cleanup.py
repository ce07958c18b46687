"""Deleting data files no live snapshot references, once a grace period has passed.

A file removed from the table (by compaction, retention or a drop) stays readable for the
grace period, so a query pinned to an older snapshot still finds it; then its object is deleted
and the catalog forgets it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow.fs as pafs

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


@dataclass(frozen=True, slots=True)
class OrphanResult:
    files_deleted: int
    bytes_freed: int


def delete_orphans(catalog: Catalog, storage: StorageRoot, grace_s: float,
                   now: float) -> OrphanResult:
    """Delete data files no snapshot ever referenced — outputs of a flush, load or compaction
    that died before its commit — once they are older than the grace period, so a writer
    between its write and its commit never loses its file.

    The listing comes first and the catalog is read after it: a file committed in between is
    then known, never taken for an orphan.
    """
    selector = pafs.FileSelector(storage.base, recursive=True, allow_not_found=True)
    candidates = [info for info in storage.fs.get_file_info(selector)
                  if info.type == pafs.FileType.File
                  and info.path.endswith((".parquet", ".parquet.tmp"))
                  and info.mtime is not None and info.mtime.timestamp() < now - grace_s]
    if not candidates:
        return OrphanResult(0, 0)
    known = {f.path for f in catalog.dead_files(catalog.current_snapshot() + 1)}
    for table in catalog.tables(None):
        known.update(f.path for f in catalog.files(table.tenant, table.name))
    deleted = freed = 0
    prefix = storage.base.rstrip("/") + "/"
    for info in candidates:
        relative = info.path[len(prefix):] if info.path.startswith(prefix) else info.path
        if relative in known or relative.count("/") < 2:  # not under {tenant}/{table}/
            continue
        try:
            storage.fs.delete_file(info.path)
        except FileNotFoundError:
            continue
        deleted += 1
        freed += int(info.size or 0)
    if deleted:
        log.info("orphan files deleted", extra={"deleted": deleted, "bytes": freed})
    return OrphanResult(deleted, freed)
