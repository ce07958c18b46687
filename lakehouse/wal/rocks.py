"""The durable WriteAheadLog: RocksDB through rocksdict, in raw mode.

One append is one RocksDB WriteBatch (the entries, the index changes and the new last_seq
together), atomic, and durable once the log is synced; then the acknowledged-sequence marker
moves forward (see marker.py).

The sync is a separate `flush_wal(sync=True)` after an unsynced write, not a write with
`sync=True`: rocksdict holds the GIL through a synced write, which stalls every other thread
(the event loop answering requests) for each fsync, and `flush_wal` lets go of it. The
difference: the batch is in RocksDB before it is durable. So reads stop at `last_seq`, which
moves only once the sync returned; record and request keys of a write being synced are in the
ingest service's in-flight set, which it consults before the index.

Concurrency: appends and trims are serialised by `_write_lock`, because sequence numbers and
the marker must advance in order; reads run alongside them (RocksDB is safe for that) and are
counted, so close() can wait for the ones in flight (see iteration.py for why that is short).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import NoReturn, cast

from rocksdict import Rdict, WriteBatch, WriteOptions

from lakehouse.errors import LakehouseError, WalCorrupted, WalUnavailable
from lakehouse.wal.codec import (
    INDEX_TAG,
    LOG_FIRST_KEY,
    LOG_PAST_END,
    META_LAST_SEQ,
    decode_entry,
    decode_u64,
    encode_entry,
    encode_u64,
    index_key,
    is_log_key,
    log_key,
    seq_of,
)
from lakehouse.wal.iteration import count_log_keys_before, entry_at_or_before, first_log_seq, scan
from lakehouse.wal.marker import AckedMarker, fsync_dir, read_marker
from lakehouse.wal.opening import open_raw, probe_open, write_error
from lakehouse.wal.port import LogEntry, StoredEntry, WalStats, check_index, check_limit

logger = logging.getLogger(__name__)


class RocksWal:
    def __init__(self, db: Rdict, path: Path, *, sync: bool, last_seq: int,
                 marker: AckedMarker | None) -> None:
        self._path = path
        self._sync = sync
        self._marker = marker
        self._write_options = WriteOptions()
        self._write_options.sync = False  # synced by flush_wal: see the module's docstring
        self._write_lock = threading.Lock()
        self._cond = threading.Condition()  # guards the fields below; close() waits on it
        self._db: Rdict | None = db
        self._readers = 0
        self._last_seq = last_seq
        self._stats = WalStats()
        self._degraded: LakehouseError | None = None
        self._unsynced: LakehouseError | None = None  # a sync failed: reads are refused too

    @classmethod
    def open(cls, path: Path, *, sync: bool = True, open_timeout_s: float = 30.0) -> RocksWal:
        """Open (creating if needed) the WAL in directory `path`.

        WalUnavailable if another process holds it or it does not open within `open_timeout_s`;
        WalCorrupted if it recovered less than was acknowledged or cannot be decoded.
        """
        path = Path(path)
        _ensure_dir(path)
        probe_open(path, open_timeout_s)
        db = open_raw(path)
        try:
            last_seq = _recover_last_seq(db, path)
            # Checked even with sync=False: the marker only ever holds synced, acknowledged seqs.
            acked = read_marker(path)
            if acked is not None and acked > last_seq:
                raise WalCorrupted(
                    f"the WAL at {path} recovered up to sequence {last_seq} but {acked} was "
                    "acknowledged; refusing to serve less than was acknowledged. Restore the "
                    "directory from a backup (or, to accept the loss, delete its `acked` file)",
                    details={"path": str(path), "recovered": last_seq, "acknowledged": acked})
            marker = AckedMarker.open(path, last_seq) if sync else None
        except BaseException:
            db.close()
            raise
        return cls(db, path, sync=sync, last_seq=last_seq, marker=marker)

    def append(
        self, entries: Sequence[LogEntry], index: Mapping[bytes, bytes | None] | None = None
    ) -> int:
        check_index(index)
        with self._write_lock:
            db = self._writable()
            first = self._last_seq + 1
            if not entries and not index:
                return first
            batch = WriteBatch(raw_mode=True)
            seq = first
            for entry in entries:
                batch.put(log_key(seq), encode_entry(entry.width, entry.payload))
                seq += entry.width
            put, delete = batch.put, batch.delete  # per index key: kept to one call each
            for key, value in (index or {}).items():
                if value is None:
                    delete(INDEX_TAG + key)
                else:
                    put(INDEX_TAG + key, value)
            last = seq - 1
            if entries:
                # In the same batch, so last_seq survives trimming every entry.
                batch.put(META_LAST_SEQ, encode_u64(last))
            self._write(db, batch)
            with self._cond:
                self._last_seq = last
                self._stats = replace(
                    self._stats,
                    appends=self._stats.appends + 1,
                    entries=self._stats.entries + len(entries),
                    fsyncs=self._stats.fsyncs + int(self._sync),
                    bytes_appended=self._stats.bytes_appended + sum(len(e.payload)
                                                                    for e in entries),
                )
            if entries and self._marker is not None:
                try:
                    self._marker.write(last)
                except OSError as exc:
                    self._fail(exc)
            return first

    def read(self, after: int = 0, limit: int | None = None) -> Iterator[StoredEntry]:
        check_limit(limit)
        last = self.last_seq()  # raises now if closed, not at the first next()
        if after >= last:
            return iter(())
        end = log_key(last)  # an entry starting past it is written but not yet synced
        pairs = scan(self._reading, log_key(max(after, 0) + 1), forward=True,
                     accept=lambda key: is_log_key(key) and key <= end, limit=limit)
        return (decode_entry(seq_of(key), value) for key, value in pairs)

    def read_reverse(
        self, before: int | None = None, limit: int | None = None
    ) -> Iterator[StoredEntry]:
        check_limit(limit)
        last = self.last_seq()
        if (before is not None and before <= 1) or last < 1:
            return iter(())
        start = log_key(last if before is None else min(before - 1, last))
        pairs = scan(self._reading, start, forward=False, accept=is_log_key, limit=limit)
        return (decode_entry(seq_of(key), value) for key, value in pairs)

    def entry_containing(self, seq: int) -> StoredEntry | None:
        last = self.last_seq()
        with self._reading() as db:
            if not 1 <= seq <= last:
                return None
            entry = entry_at_or_before(db, log_key(seq))
        return entry if entry is not None and seq <= entry.last_seq else None

    def trim(self, through: int) -> int:
        with self._write_lock:
            db = self._writable()
            through = min(through, self._last_seq)
            if through < 1:
                return 0
            end = through + 1
            # An entry straddling `through` holds records not yet covered: it stays whole.
            straddler = entry_at_or_before(db, log_key(through))
            if straddler is not None and straddler.last_seq > through:
                end = straddler.seq
            count = count_log_keys_before(db, log_key(end))
            if count == 0:
                return 0
            batch = WriteBatch(raw_mode=True)
            # One range tombstone, however many entries: cheap to write and to iterate past.
            batch.delete_range(LOG_FIRST_KEY, log_key(end))
            self._write(db, batch)
            with self._cond:
                self._stats = replace(self._stats, fsyncs=self._stats.fsyncs + int(self._sync))
            return count

    def last_seq(self) -> int:
        with self._cond:
            self._handle()
            return self._last_seq

    def first_seq(self) -> int:
        last = self.last_seq()  # before the lookup: an append in between must not hide an entry
        with self._reading() as db:
            first = first_log_seq(db)
        return last + 1 if first is None else first

    def index_get(self, keys: Sequence[bytes]) -> list[bytes | None]:
        if not keys:
            self._check_open()
            return []
        with self._reading() as db:
            # One multi-get: a batch of idempotency keys costs one call, not one per key.
            values = cast(list[bytes | None], db.get([INDEX_TAG + key for key in keys]))
        return list(values)

    def index_scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        start = index_key(prefix)
        pairs = scan(self._reading, start, forward=True,
                     accept=lambda key: key.startswith(start), limit=None)
        return ((key[len(INDEX_TAG):], value) for key, value in pairs)

    def stats(self) -> WalStats:
        with self._cond:
            return self._stats

    @property
    def degraded(self) -> str | None:
        with self._cond:
            return None if self._degraded is None else self._degraded.message

    def close(self) -> None:
        with self._write_lock, self._cond:
            db, self._db = self._db, None
            if db is None:
                return
            while self._readers:
                self._cond.wait()
            degraded = self._degraded
        if self._marker is not None:
            self._marker.close()
        try:
            db.close()
        except Exception as exc:
            if degraded is None:
                raise WalUnavailable(f"closing the WAL at {self._path} failed: {exc}") from exc
            # RocksDB repeats the write error that degraded the log; the handle is released.
            logger.warning("closing the degraded WAL at %s: %s", self._path, exc)

    # --- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        with self._cond:
            self._handle()

    def _handle(self) -> Rdict:
        # Called with `_cond` held.
        if self._db is None:
            raise WalUnavailable(f"the WAL at {self._path} is closed")
        return self._db

    def _writable(self) -> Rdict:
        with self._cond:
            db = self._handle()
            if self._degraded is not None:
                # A fresh exception each time: re-raising one instance would pile up tracebacks.
                raise type(self._degraded)(self._degraded.message, details=self._degraded.details)
            return db

    def _write(self, db: Rdict, batch: WriteBatch) -> None:
        try:
            db.write(batch, write_opt=self._write_options)
        except Exception as exc:
            self._fail(exc)
        if self._sync:
            try:
                db.flush_wal(True)
            except Exception as exc:
                self._fail(exc, unsynced=True)

    def _fail(self, exc: Exception, *, unsynced: bool = False) -> NoReturn:
        """Degrade the log. An `unsynced` batch (its sync failed) is in RocksDB yet may never
        reach the disk: reads are refused too (an index key could point at it) until a restart
        recovers what is durable. Any failed sync degrades; any other failure only when it is
        the storage's (else it is a bug, raised as is)."""
        error = write_error(self._path, exc)
        if error is None:
            if not unsynced:
                raise exc
            error = WalUnavailable(
                f"syncing the WAL at {self._path} failed ({exc}); check the disk, then restart "
                "the service", details={"path": str(self._path), "cause": str(exc)})
        with self._cond:
            self._degraded = error
            if unsynced:
                self._unsynced = error
        logger.error("the WAL at %s is degraded: %s", self._path, error.message)
        raise error from exc

    @contextmanager
    def _reading(self) -> Iterator[Rdict]:
        with self._cond:
            db = self._handle()
            if self._unsynced is not None:
                raise WalUnavailable(self._unsynced.message, details=self._unsynced.details)
            self._readers += 1
        try:
            yield db
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()


def _ensure_dir(path: Path) -> None:
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        fsync_dir(path.parent)


def _recover_last_seq(db: Rdict, path: Path) -> int:
    stored = db.get(META_LAST_SEQ)
    recorded = 0 if stored is None else decode_u64(f"last_seq of the WAL at {path}", stored)
    tail = entry_at_or_before(db, LOG_PAST_END)
    if tail is not None and tail.last_seq > recorded:
        # Both are written in one batch, so this should not happen; never reuse a seq anyway.
        logger.warning("the WAL at %s records last_seq %d but holds entries up to %d",
                       path, recorded, tail.last_seq)
        return tail.last_seq
    return recorded
