"""A disk that loses unsynced writes at a power cut (tests/powerloss/volatile_fs.py), and the
cut itself: a writer appending to the write-ahead log on it, both killed at one instant, the log
opened again from what the disk kept. Used by tests/e2e/test_power_loss.py and
bench/resilience.py; needs /dev/fuse, root and libfuse 3 (`ensure_fuse3` installs Debian's).
"""

from __future__ import annotations

import ctypes.util
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lakehouse.wal.rocks import RocksWal

REPO = Path(__file__).resolve().parents[2]
WRITE_S = 3.0
Disk = tuple[Path, Path, "subprocess.Popen[bytes]"]  # mount point, backing folder, FUSE process

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



def fuse_available() -> bool:
    return os.path.exists("/dev/fuse") and os.geteuid() == 0


def ensure_fuse3() -> None:
    if ctypes.util.find_library("fuse3") is None or shutil.which("fusermount3") is None:
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "fuse3",
                        "libfuse3-3"], check=True, capture_output=True, timeout=600)


@contextmanager
def volatile_disk(folder: Path) -> Iterator[Disk]:
    """The volatile filesystem mounted under `folder`; unmounted at the end."""
    backing, mount = folder / "disk", folder / "mnt"
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


def power_cut(disk: Disk, sync: bool, write_s: float = WRITE_S) -> dict[str, int]:
    """Records acknowledged, present after the cut, and lost."""
    mount, backing, fs = disk
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(mount / "wal"),
                               "1" if sync else "0"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    try:
        opened = writer.stdout.readline().strip()
        assert opened == "open", writer.stderr.read() if writer.stderr else ""
        lines: list[str] = []
        # Read as it writes: a full pipe would stall the writer, not the disk.
        reader = threading.Thread(target=lambda: lines.extend(writer.stdout or ()))
        reader.start()
        time.sleep(write_s)
        # The power cut: the writer and the disk's cache go at the same instant.
        os.kill(writer.pid, signal.SIGKILL)
        os.kill(fs.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait(10)
    fs.wait(10)
    reader.join(10)
    subprocess.run(["fusermount3", "-u", "-z", str(mount)], check=False, capture_output=True)
    acked = [int(line) for line in lines if line.strip().isdigit()]
    assert acked, "nothing was acknowledged before the cut"
    wal = RocksWal.open(backing / "wal", sync=sync)  # what the disk kept
    try:
        present = {entry.seq for entry in wal.read()}
    finally:
        wal.close()
    return {"acknowledged": len(acked), "present": len(present),
            "lost": len(set(acked) - present)}


