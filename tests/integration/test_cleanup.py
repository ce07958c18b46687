"""Cleanup deletes dead files only after the grace period, on the real catalog and disk."""

from __future__ import annotations

import time

from api.core import build_core
from flows.ingest import flush_here
from lakehouse.catalog.lake import Commit, RemoveFiles
from lakehouse.config import Settings
from lakehouse.storage.cleanup import delete_dead_files


def test_dead_files_wait_for_the_grace_period(settings: Settings) -> None:
    core = build_core(settings, ingest=True)
    assert core.ingest is not None and core.flusher is not None
    assert core.catalog is not None and core.storage is not None
    core.ingest.write("acme", [{"data_id": f"r{i}", "payload": {"i": i}} for i in range(10)]
                      ).answer(timeout_s=10)
    flush_here(core.flusher)
    [file] = core.catalog.files("acme", "records")
    assert file.file_id is not None
    on_disk = settings.data_dir / "warehouse" / file.path
    core.catalog.commit(Commit("compaction", (RemoveFiles("acme", "records", (file.file_id,)),),
                               data_change=False))
    now = time.time()

    kept = delete_dead_files(core.catalog, core.storage, grace_s=3600, now=now)
    assert kept.files_deleted == 0 and on_disk.exists()
    # Still readable at the snapshot that had it: time travel works during the grace period.
    assert [f.path for f in core.catalog.files("acme", "records", snapshot=1)] == [file.path]

    done = delete_dead_files(core.catalog, core.storage, grace_s=0, now=now + 1)
    assert (done.files_deleted, done.bytes_freed) == (1, file.byte_size)
    assert not on_disk.exists()
    assert core.catalog.dead_files(core.catalog.current_snapshot() + 1) == []
    again = delete_dead_files(core.catalog, core.storage, grace_s=0, now=now + 2)
    assert again.files_deleted == 0
    core.close()
