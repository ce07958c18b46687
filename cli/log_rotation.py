"""Rotating the log files `lakehouse up` writes (LOG_DIR, one `<process>.log` each), so a
long-running platform does not fill its disk with them.

The children write to files the supervisor opened for them in append mode, and keep them open
across a rotation: so a full file is copied to `<process>.log.1` (older copies shifted up to
LOG_KEEP_FILES) and then emptied in place, and the child's next line lands at its new start
(appending, the child always writes at the end). A line written between the copy and the
emptying is lost: the copy is quick, and the alternative (the child reopening its file) would
need every child, Prefect's and Dask's included, to know how."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

CHECK_EVERY_S = 10.0


def due(sizes: Mapping[str, int], max_bytes: int) -> list[str]:
    """The files to rotate now: those past `max_bytes`."""
    return sorted(name for name, size in sizes.items() if size > max_bytes)


def sizes(folder: Path) -> dict[str, int]:
    found: dict[str, int] = {}
    for path in folder.glob("*.log"):
        try:
            found[path.name] = path.stat().st_size
        except OSError:  # removed meanwhile
            continue
    return found


def rotate(path: Path, keep: int) -> None:
    """`path` copied to `path.1` (`.1` to `.2`, … up to `keep`, the oldest dropped), then
    emptied in place."""
    for older in range(keep - 1, 0, -1):
        source = path.with_name(f"{path.name}.{older}")
        if source.exists():
            os.replace(source, path.with_name(f"{path.name}.{older + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    os.truncate(path, 0)


def rotate_due(folder: Path, max_bytes: int, keep: int) -> list[str]:
    """Rotates what is due in `folder`; the names rotated."""
    names = due(sizes(folder), max_bytes) if folder.is_dir() else []
    for name in names:
        rotate(folder / name, keep)
    return names
