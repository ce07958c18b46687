"""Group commit: requests that arrive while one synced write runs share the next one.

One thread owns the WAL's write side. It takes whatever is queued — a lone request at once, never
waiting for a batch to fill — assigns sequence numbers, asks each request to build its entries and
index keys for those numbers, and writes them all in one atomic, synced append.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from lakehouse.ingest.meter import NoMeter, WriteMeter
from lakehouse.wal.port import LogEntry, WriteAheadLog

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prepared:
    entries: list[LogEntry]
    index: dict[bytes, bytes | None] = field(default_factory=dict)


Prepare = Callable[[int], Prepared]  # first sequence number → what to write


@dataclass(slots=True)
class _Pending:
    width: int
    prepare: Prepare
    future: Future[int]
    queued: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True, slots=True)
class CommitStats:
    commits: int
    requests: int
    records: int
    largest_group: int
    started: float

    @property
    def mean_group(self) -> float:
        return self.requests / self.commits if self.commits else 0.0


_STOP = object()


class GroupCommitter:
    def __init__(self, wal: WriteAheadLog, *, max_group_records: int = 100_000,
                 meter: WriteMeter | None = None) -> None:
        self._wal = wal
        self._meter = meter or NoMeter()
        self._max_group_records = max_group_records
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._commits = self._requests = self._records = self._largest = 0
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="wal-group-commit", daemon=True)
        self._thread.start()

    def submit(self, width: int, prepare: Prepare) -> Future[int]:
        """Queue a write of `width` records; the future gives its first sequence number once
        it is durable, or the error that stopped it."""
        future: Future[int] = Future()
        self._queue.put(_Pending(width, prepare, future))
        return future

    def stats(self) -> CommitStats:
        return CommitStats(self._commits, self._requests, self._records, self._largest,
                           self._started)

    def close(self, timeout_s: float = 10.0) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout_s)

    def _take_group(self, first: _Pending) -> tuple[list[_Pending], bool]:
        group, records, stop = [first], first.width, False
        while records < self._max_group_records:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            if isinstance(item, _Pending):
                group.append(item)
                records += item.width
        return group, stop

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if not isinstance(item, _Pending):  # the stop marker
                return
            group, stop = self._take_group(item)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Pending]) -> None:
        next_seq = self._wal.last_seq() + 1
        entries: list[LogEntry] = []
        index: dict[bytes, bytes | None] = {}
        ready: list[tuple[_Pending, int]] = []
        for pending in group:
            try:
                prepared = pending.prepare(next_seq)
                if sum(e.width for e in prepared.entries) != pending.width:
                    raise ValueError("prepared entries do not add up to the declared width")
            except Exception as exc:  # this request's own fault; the rest of the group goes on
                pending.future.set_exception(exc)
                continue
            entries.extend(prepared.entries)
            index.update(prepared.index)
            ready.append((pending, next_seq))
            next_seq += pending.width
        if not ready:
            return
        started = time.perf_counter()
        try:
            self._wal.append(entries, index)
        except Exception as exc:  # nothing of the group is durable: every request hears why
            log.error("group commit failed", extra={"requests": len(ready), "error": str(exc)})
            for pending, _ in ready:
                pending.future.set_exception(exc)
            return
        self._commits += 1
        self._requests += len(ready)
        self._records += sum(p.width for p, _ in ready)
        self._largest = max(self._largest, len(ready))
        ended = time.perf_counter()
        try:
            self._meter.committed(ended - started, ended - min(p.queued for p, _ in ready),
                                  len(ready))
        except Exception:  # a meter's fault must not fail durable writes
            log.exception("the write meter failed")
        for pending, first_seq in ready:
            pending.future.set_result(first_seq)
