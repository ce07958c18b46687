"""A FUSE passthrough filesystem that loses, on "power off", every write not yet fsynced.

    python -m tests.powerloss.volatile_fs BACKING MOUNTPOINT

File data written through MOUNTPOINT is kept in this process's memory, per file, as the list of
writes and truncations since the file's last fsync (reads see them, as a page cache would);
fsync or fdatasync applies them to the file in BACKING and fsyncs it. Killing this process is the
power cut: what was not synced is gone, BACKING holds exactly what a disk would after it.
Directory changes (create, rename, unlink, mkdir) go to BACKING at once: kinder than a real
filesystem, which may also lose an unsynced directory entry, so a loss this one shows is a loss
any would.

Used by tests/e2e/test_power_loss.py (mfusepy over libfuse 3; the test installs both).
"""

from __future__ import annotations

import errno
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import mfusepy


@dataclass
class Dirty:
    """What a file has had since its last fsync."""

    size: int  # its size as readers see it
    ops: list[tuple[int, int, bytes]] = field(default_factory=list)  # (offset, length, data):
    # a write when data is not empty, else a truncation to `length` (offset unused)


class VolatileFS(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, backing: str) -> None:
        self.backing = backing
        self.dirty: dict[str, Dirty] = {}
        self._guard = threading.Lock()

    def _real(self, path: str) -> str:
        return os.path.join(self.backing, path.lstrip("/"))

    def _state(self, path: str) -> Dirty:
        found = self.dirty.get(path)
        if found is None:
            found = self.dirty[path] = Dirty(os.path.getsize(self._real(path)))
        return found

    # --- metadata, at once -------------------------------------------------------------
    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        with self._guard:
            try:
                st = os.lstat(self._real(path))
            except OSError as exc:
                raise mfusepy.FuseOSError(exc.errno) from None
            attrs = {key: getattr(st, key) for key in (
                "st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime_ns",
                "st_mtime_ns", "st_ctime_ns")}
            for key in ("st_atime", "st_mtime", "st_ctime"):
                attrs[key] = attrs.pop(f"{key}_ns")
            if path in self.dirty:
                attrs["st_size"] = self.dirty[path].size
            return attrs

    def readdir(self, path: str, fh: Any) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._real(path), amode):
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._real(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._real(path))
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def utimens(self, path: str, times: Any = None) -> int:
        os.utime(self._real(path), ns=times)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self._real(path))
        return {key: getattr(st, key) for key in (
            "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail", "f_files", "f_ffree",
            "f_favail", "f_flag", "f_namemax")}

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        with self._guard:
            os.close(os.open(self._real(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode))
            self.dirty.pop(path, None)
            return 0

    def open(self, path: str, flags: int) -> int:
        if not os.path.exists(self._real(path)):
            raise mfusepy.FuseOSError(errno.ENOENT)
        return 0

    def rename(self, old: str, new: str) -> int:
        with self._guard:
            os.rename(self._real(old), self._real(new))
            self.dirty.pop(new, None)
            if old in self.dirty:
                self.dirty[new] = self.dirty.pop(old)
            return 0

    def unlink(self, path: str) -> int:
        with self._guard:
            os.unlink(self._real(path))
            self.dirty.pop(path, None)
            return 0

    def fallocate(self, path: str, mode: int, offset: int, size: int, fh: Any) -> int:
        raise mfusepy.FuseOSError(errno.EOPNOTSUPP)  # RocksDB goes on without it

    # --- data, in memory until fsync ---------------------------------------------------
    def write(self, path: str, data: bytes, offset: int, fh: Any) -> int:
        with self._guard:
            state = self._state(path)
            state.ops.append((offset, len(data), bytes(data)))
            state.size = max(state.size, offset + len(data))
            return len(data)

    def truncate(self, path: str, length: int, fh: Any = None) -> int:
        with self._guard:
            state = self._state(path)
            state.ops.append((0, length, b""))
            state.size = length
            return 0

    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        with self._guard:
            with open(self._real(path), "rb") as file:
                file.seek(offset)
                view = bytearray(file.read(size))
            state = self.dirty.get(path)
            if state is None:
                return bytes(view)
            view.extend(bytes(size - len(view)))
            for at, length, data in state.ops:
                if not data:  # a truncation: what lay past it reads as zeros from now on
                    cut = max(0, length - offset)
                    view[cut:] = bytes(max(0, len(view) - cut))
                    continue
                start, end = max(at, offset), min(at + length, offset + size)
                if start < end:
                    view[start - offset:end - offset] = data[start - at:end - at]
            return bytes(view[:max(0, min(size, state.size - offset))])

    def fsync(self, path: str, datasync: int, fh: Any) -> int:
        with self._guard:
            state = self.dirty.pop(path, None)
            if state is None:
                return 0
            fd = os.open(self._real(path), os.O_WRONLY)
            try:
                for at, length, data in state.ops:
                    if data:
                        os.pwrite(fd, data, at)
                    else:
                        os.ftruncate(fd, length)
                os.fsync(fd)
            finally:
                os.close(fd)
            return 0

    def fsyncdir(self, path: str, datasync: int, fh: Any) -> int:
        return 0  # directory changes are on the backing filesystem already

    def flush(self, path: str, fh: Any) -> int:
        return 0  # close() is no durability point

    def release(self, path: str, fh: Any) -> int:
        return 0


def main() -> None:
    backing, mountpoint = sys.argv[1], sys.argv[2]
    mfusepy.FUSE(VolatileFS(os.path.abspath(backing)), mountpoint, foreground=True,
                 nothreads=True)


if __name__ == "__main__":
    main()
