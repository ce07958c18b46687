"""Reading the log files of the processes `lakehouse up` runs (LOG_DIR, one `<process>.log`
each) for GET /logs: the newest part of each file (TAIL_BYTES), parsed (log_lines), filtered,
newest first. Where no file is written (a service started on its own, tests), this process's
own recent lines (the ring buffer) stand in for it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lakehouse.telemetry.log_lines import Entry, Wanted, from_record, parse

TAIL_BYTES = 4 * 1024 * 1024  # per file: what a page can reach back through
MAX_FILES = 64
OWN_PROCESS = "control-plane"


def _lines(path: Path, tail_bytes: int) -> tuple[Iterator[tuple[int, str]], float]:
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        start = max(0, size - tail_bytes)
        handle.seek(start)
        data = handle.read(size - start)
        written_at = os.fstat(handle.fileno()).st_mtime
    if start > 0:  # the first line is cut: begin after it
        cut = data.find(b"\n")
        start, data = (start + cut + 1, data[cut + 1:]) if cut >= 0 else (size, b"")

    def split() -> Iterator[tuple[int, str]]:
        offset = start
        for raw in data.splitlines(keepends=True):
            yield offset, raw.decode("utf-8", errors="replace")
            offset += len(raw)
    return split(), written_at


def _newest_lines(path: Path, tail_bytes: int) -> list[tuple[Iterator[tuple[int, str]], float]]:
    """The last `tail_bytes` of a process's log: its file, and when that is shorter (just
    rotated, cli/log_rotation.py) the end of the copy before it. The file's offsets are
    counted after the copy's, so entries of one instant keep their order."""
    current = path.stat().st_size
    rotated = path.with_name(f"{path.name}.1")
    if current >= tail_bytes or not rotated.exists():
        return [_lines(path, tail_bytes)]
    before_lines, before_at = _lines(rotated, tail_bytes - current)
    lines, written_at = _lines(path, tail_bytes)
    shift = rotated.stat().st_size
    return [(before_lines, before_at), (((offset + shift, line) for offset, line in lines),
                                        written_at)]


def processes(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.log"))[:MAX_FILES]


def read(folder: Path, wanted: Wanted, limit: int,
         own: Callable[[], Sequence[dict[str, Any]]] = tuple,
         tail_bytes: int = TAIL_BYTES) -> list[Entry]:
    """Up to `limit` entries `wanted` keeps, newest first: from the files in `folder`, or
    from `own()` (this process's ring buffer, oldest first) when there are none."""
    found: list[Entry] = []
    names = processes(folder)
    for name in names:
        if wanted.processes and name not in wanted.processes:
            continue
        try:
            for lines, written_at in _newest_lines(folder / f"{name}.log", tail_bytes):
                found.extend(e for e in parse(lines, name, written_at) if wanted.keeps(e))
        except OSError:  # rotated or removed while read: the others still answer
            continue
    if not names:
        entries = (from_record(r, OWN_PROCESS, i) for i, r in enumerate(own()))
        found.extend(e for e in entries if e is not None and wanted.keeps(e))
    found.sort(key=lambda e: e.key, reverse=True)
    return found[:limit]
