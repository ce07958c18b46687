"""The highest acknowledged sequence number, kept outside RocksDB in its own 8-byte file.

RocksDB recovers "up to the first bad record" without complaint, so it cannot tell us it lost
the tail. This file can: it is written (and fdatasync'ed) after every synced append, and on open
a log that recovered less than it says was acknowledged refuses to serve.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from lakehouse.wal.codec import decode_u64, encode_u64

MARKER_FILE = "acked"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_marker(directory: Path) -> int | None:
    """The acknowledged sequence recorded in `directory`, or None if there is no marker."""
    try:
        data = (directory / MARKER_FILE).read_bytes()
    except FileNotFoundError:
        return None
    return decode_u64(f"the acknowledged-sequence marker {directory / MARKER_FILE}", data)


class AckedMarker:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def open(cls, directory: Path, initial: int) -> AckedMarker:
        """Open the marker, creating it holding `initial` if it does not exist yet."""
        path = directory / MARKER_FILE
        if not path.exists():
            # Written whole under a temporary name and renamed, so a crash leaves either no
            # marker or a complete one, never a short file.
            tmp = directory / (MARKER_FILE + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, encode_u64(initial))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            fsync_dir(directory)
        return cls(os.open(path, os.O_RDWR))

    def write(self, seq: int) -> None:
        # 8 bytes at offset 0 of an 8-byte file: one sector, so a power cut leaves the old value
        # or the new one. The size never changes, so fdatasync suffices.
        data = encode_u64(seq)
        if os.pwrite(self._fd, data, 0) != len(data):
            raise OSError(errno.EIO, f"short write to the {MARKER_FILE} marker")
        os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
