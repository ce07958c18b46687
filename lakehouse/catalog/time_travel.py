"""Which snapshots a caller may name: every one that was committed, and, to read its data, one
whose files cleanup cannot have deleted yet.

Snapshot ids start at 1 and grow by 1 without gaps, so any id from 1 to the current one was
committed. Its file list stays a query forever, but the files themselves do not: a file a later
snapshot removed is deleted CLEANUP_GRACE_S after that snapshot (lakehouse/storage/cleanup.py),
and the catalog then forgets it. A read of an older snapshot would then fail halfway or, worse,
silently miss the forgotten files' rows, so it is refused before anything is read.
"""

from __future__ import annotations

from lakehouse.catalog.lake import Catalog
from lakehouse.errors import InvalidInput, NotFound


def require_snapshot(catalog: Catalog, snapshot: int) -> int:
    """`snapshot` if it was committed; NotFound (404) naming the current one if not."""
    current = catalog.current_snapshot()
    if not 1 <= snapshot <= current:
        raise NotFound(f"snapshot {snapshot} does not exist (the current snapshot is "
                       f"{current})", code="snapshot_not_found",
                       details={"snapshot": snapshot, "current_snapshot": current})
    return snapshot


def require_readable(catalog: Catalog, snapshot: int, *, grace_s: float, now: float) -> int:
    """`snapshot` if its files are all still there: it is the current snapshot, or the one
    after it is younger than the grace period (every file it holds was removed at that one or
    later, so cleanup keeps it). NotFound (404) otherwise."""
    require_snapshot(catalog, snapshot)
    after = catalog.snapshot(snapshot + 1)
    if after is not None and after.created_at <= now - grace_s:
        raise NotFound(
            f"snapshot {snapshot} can no longer be read: it was replaced more than "
            f"CLEANUP_GRACE_S ({grace_s:g} s) ago, and files it holds may be deleted; query a "
            "newer snapshot", code="snapshot_expired",
            details={"snapshot": snapshot, "replaced_at": after.created_at,
                     "grace_s": grace_s})
    return snapshot


def one_snapshot(*given: int | None) -> int | None:
    """The snapshot a request names, where it can name one in several places (a query
    parameter and the body; the body and the SQL): they must agree."""
    named = {s for s in given if s is not None}
    if len(named) > 1:
        raise InvalidInput(f"the request names snapshots {sorted(named)}; a request reads one "
                           "snapshot", code="conflicting_snapshots",
                           details={"snapshots": sorted(named)})
    return named.pop() if named else None
