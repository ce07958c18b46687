"""Power loss: acknowledged records survive losing every write that was not fsynced.

The write-ahead log runs on a filesystem that keeps unsynced writes in memory
(tests/powerloss/volatile_fs.py, a FUSE passthrough); a writer process appends records and
prints each acknowledged sequence number; then the writer and the filesystem's process are
SIGKILLed together (the power cut) and the log is opened again from the backing folder, which
holds exactly what a disk would. With WAL_SYNC on (the default), nothing acknowledged is lost;
with it off the same run loses acknowledged records, so the test can fail.

Needs /dev/fuse and root (to mount); the fixture installs Debian's fuse3 when libfuse 3 is
missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.powerloss.harness import Disk, ensure_fuse3, fuse_available, power_cut, volatile_disk

pytestmark = pytest.mark.slow


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    if not fuse_available():
        pytest.skip("needs /dev/fuse and root to mount a FUSE filesystem (CI has both)")
    ensure_fuse3()
    with volatile_disk(tmp_path) as made:
        yield made


def test_with_sync_nothing_acknowledged_is_lost(
        disk: Disk) -> None:
    counts = power_cut(disk, sync=True)
    print(f"power cut, WAL_SYNC=true: {counts}")
    assert counts["lost"] == 0, counts
    assert counts["present"] >= counts["acknowledged"]


def test_without_sync_acknowledged_records_are_lost(
        disk: Disk) -> None:
    """The same cut with WAL_SYNC=false: acknowledgements that were never durable."""
    counts = power_cut(disk, sync=False)
    print(f"power cut, WAL_SYNC=false: {counts}")
    assert counts["lost"] > 0, counts
