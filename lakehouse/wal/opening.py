"""Opening RocksDB safely, and turning its errors into ours.

RocksDB (through rocksdict) reports every failure as a bare `Exception` whose message carries the
cause, so the classification below reads messages; the strings are RocksDB's and the C library's.
"""

from __future__ import annotations

import errno
import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from rocksdict import DBRecoveryMode, Options, Rdict

from lakehouse.errors import LakehouseError, StorageFull, WalCorrupted, WalUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

CONFIG_FILE = "rocksdict-config.json"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_FULL_MESSAGES = ("No space left on device", "File too large", "Disk quota exceeded")


def raw_options() -> Options:
    options = Options(raw_mode=True)  # bytes in, bytes out: never rocksdict's pickling
    options.create_if_missing(True)
    # RocksDB's default, stated because durability rests on it: replay the WAL up to the first
    # torn or corrupt record and stop there. Losing an acknowledged write that way is caught by
    # the acknowledged-sequence marker, not hidden.
    options.set_wal_recovery_mode(DBRecoveryMode.point_in_time())
    options.set_keep_log_file_num(5)
    return options


def open_raw(path: Path) -> Rdict:
    """Open (creating if needed) the RocksDB at `path` in raw mode; our errors on failure."""
    try:
        return Rdict(str(path), options=raw_options())
    except Exception as first:
        if is_lock_error(first):
            raise _held_elsewhere(path, first) from first
        config = path / CONFIG_FILE
        if not (config.exists() or config.is_symlink()):
            raise open_error(path, first) from first
        # rocksdict rewrites this file on every open without fsync, so a power cut can leave it
        # truncated, garbage, or something that cannot be read at all. We pass every option
        # explicitly and never need it, so removing it is safe; retry once, then give up.
        logger.warning("opening the WAL failed (%s); removing %s and retrying once", first, config,
                       extra={"wal_path": str(path)})
        if config.is_dir() and not config.is_symlink():
            shutil.rmtree(config)
        else:
            config.unlink()
    try:
        return Rdict(str(path), options=raw_options())
    except Exception as second:
        raise open_error(path, second) from second


def is_lock_error(exc: BaseException) -> bool:
    # Another process: "While lock file: <path>/LOCK: Resource temporarily unavailable".
    # This process: "lock hold by current process ... <path>/LOCK: No locks available".
    return "/LOCK:" in str(exc) or "lock hold by current process" in str(exc)


def _held_elsewhere(path: Path, exc: BaseException) -> WalUnavailable:
    return WalUnavailable(
        f"another process holds the WAL at {path} (RocksDB allows one writer per directory); "
        "stop it, or give this instance its own DATA_DIR",
        details={"path": str(path), "cause": str(exc)},
    )


def open_error(path: Path, exc: BaseException) -> LakehouseError:
    if is_lock_error(exc):
        return _held_elsewhere(path, exc)
    if "Corruption" in str(exc):
        return WalCorrupted(
            f"the WAL at {path} is corrupted and RocksDB refuses to open it: {exc}; "
            "restore the directory from a backup",
            details={"path": str(path), "cause": str(exc)},
        )
    return WalUnavailable(f"the WAL at {path} could not be opened: {exc}",
                          details={"path": str(path), "cause": str(exc)})


def write_error(path: Path, exc: BaseException) -> LakehouseError | None:
    """What a failed write means for callers, or None if it is not a storage failure (a bug)."""
    if (isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS) or any(
        text in str(exc) for text in _FULL_MESSAGES
    ):
        return StorageFull(
            f"the disk under the WAL at {path} is full ({exc}); nothing more is acknowledged. "
            "Free space, then restart the service to resume writes",
            details={"path": str(path), "cause": str(exc)},
        )
    if isinstance(exc, OSError) or "IO error" in str(exc):
        # RocksDB stops accepting writes after a failed WAL write; only a reopen clears that.
        return WalUnavailable(
            f"writing the WAL at {path} failed ({exc}); check the disk, then restart the service",
            details={"path": str(path), "cause": str(exc)},
        )
    return None


class _Outcome(Generic[T]):
    """What the opening thread produced, handed over under a lock so a late result is never lost
    (and never leaked: the side that comes second disposes of it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.result: tuple[T] | None = None  # boxed, so a function returning None still counts
        self.error: BaseException | None = None
        self.abandoned = False


def call_with_watchdog(
    fn: Callable[[], T],
    timeout_s: float,
    *,
    on_timeout: Callable[[], LakehouseError],
    dispose: Callable[[T], None],
) -> T:
    """`fn()` in a daemon thread, waiting at most `timeout_s`; on timeout raise `on_timeout()`.

    RocksDB cannot be interrupted: a garbage WAL tail can keep it spinning in recovery forever.
    The daemon thread lets the caller give up (and the process exit); if `fn` finishes after
    all, `dispose` releases its result (e.g. closes the database so its lock is freed).
    """
    outcome: _Outcome[T] = _Outcome()

    def run() -> None:
        try:
            value = fn()
        except BaseException as exc:  # handed to the caller, who re-raises it
            with outcome.lock:
                outcome.error = exc
        else:
            with outcome.lock:
                late = outcome.abandoned
                if not late:
                    outcome.result = (value,)
            if late:
                logger.warning("a timed-out open finished after all; releasing it")
                dispose(value)
        finally:
            outcome.done.set()

    threading.Thread(target=run, name="wal-open-watchdog", daemon=True).start()
    outcome.done.wait(timeout_s)
    with outcome.lock:
        if outcome.error is not None:
            raise outcome.error
        if outcome.result is not None:
            return outcome.result[0]
        outcome.abandoned = True
    raise on_timeout()
