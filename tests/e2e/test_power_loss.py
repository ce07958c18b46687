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

import ctypes.util
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.wal.rocks import RocksWal

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
Disk = tuple[Path, Path, "subprocess.Popen[bytes]"]  # mount point, backing folder, FUSE process
WRITE_S = 3.0

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from lakehouse.wal.port import LogEntry
    from lakehouse.wal.rocks import RocksWal

    wal = RocksWal.open(Path(sys.argv[1]), sync=sys.argv[2] == "1")
    print("open", flush=True)
    i = 0
    while True:
        first = wal.append([LogEntry(b"record-%d" % i)], {b"id/%d" % i: b"%d" % i})
        print(first, flush=True)  # acknowledged: append returned
        i += 1
""")


@pytest.fixture(scope="module")
def fuse3() -> None:
    if not os.path.exists("/dev/fuse") or os.geteuid() != 0:
        pytest.skip("needs /dev/fuse and root to mount a FUSE filesystem (CI has both)")
    if ctypes.util.find_library("fuse3") is None or shutil.which("fusermount3") is None:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "fuse3",
                        "libfuse3-3"], check=True, capture_output=True, timeout=600)


@pytest.fixture
def volatile_disk(fuse3: None, tmp_path: Path) -> Iterator[Disk]:
    """(the mount point, the backing folder, the filesystem's process)."""
    backing, mount = tmp_path / "disk", tmp_path / "mnt"
    backing.mkdir()
    mount.mkdir()
    fs = subprocess.Popen([sys.executable, "-m", "tests.powerloss.volatile_fs", str(backing),
                           str(mount)], cwd=REPO, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not os.path.ismount(mount):
        assert fs.poll() is None, fs.stderr.read() if fs.stderr else b""
        assert time.monotonic() < deadline, "the FUSE filesystem did not mount"
        time.sleep(0.1)
    try:
        yield mount, backing, fs
    finally:
        fs.kill()
        fs.wait(10)
        subprocess.run(["fusermount3", "-u", "-z", str(mount)], check=False,
                       capture_output=True)


def _power_cut(volatile_disk: Disk, sync: bool) -> dict[str, int]:
    mount, backing, fs = volatile_disk
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(mount / "wal"),
                               "1" if sync else "0"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "open", writer.stderr.read() if writer.stderr else ""
    time.sleep(WRITE_S)
    # The power cut: the writer and the disk's cache go at the same instant.
    os.kill(writer.pid, signal.SIGKILL)
    os.kill(fs.pid, signal.SIGKILL)
    writer.wait(10)
    fs.wait(10)
    subprocess.run(["fusermount3", "-u", "-z", str(mount)], check=False, capture_output=True)
    acked = [int(line) for line in writer.stdout.read().split() if line.isdigit()]
    assert acked, "nothing was acknowledged before the cut"
    wal = RocksWal.open(backing / "wal", sync=sync)  # what the disk kept
    try:
        present = {entry.seq for entry in wal.read()}
    finally:
        wal.close()
    return {"acknowledged": len(acked), "present": len(present),
            "lost": len(set(acked) - present)}


def test_with_sync_nothing_acknowledged_is_lost(
        volatile_disk: Disk) -> None:
    counts = _power_cut(volatile_disk, sync=True)
    print(f"power cut, WAL_SYNC=true: {counts}")
    assert counts["lost"] == 0, counts
    assert counts["present"] >= counts["acknowledged"]


def test_without_sync_acknowledged_records_are_lost(
        volatile_disk: Disk) -> None:
    """The same cut with WAL_SYNC=false: acknowledgements that were never durable."""
    counts = _power_cut(volatile_disk, sync=False)
    print(f"power cut, WAL_SYNC=false: {counts}")
    assert counts["lost"] > 0, counts
