"""Opening RocksDB safely, and turning its errors into ours.

RocksDB (through rocksdict) reports every failure as a bare `Exception` whose message carries the
cause, so the classification below reads messages; the strings are RocksDB's and the C library's.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from rocksdict import BlockBasedOptions, DBRecoveryMode, Options, Rdict

from lakehouse.errors import LakehouseError, StorageFull, WalCorrupted, WalUnavailable
from lakehouse.wal.log_tail import hang_offset

logger = logging.getLogger(__name__)

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
    # Nearly every idempotency lookup is for a data_id never seen before: bloom filters (in the
    # memtable and in each table file) answer those without searching the memtable or every
    # file's index, which halves the cost of a batch's multi-get once the log holds 100k keys.
    options.set_memtable_prefix_bloom_ratio(0.1)
    options.set_memtable_whole_key_filtering(True)
    tables = BlockBasedOptions()
    tables.set_bloom_filter(10, False)
    options.set_block_based_table_factory(tables)
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


def probe_open(path: Path, timeout_s: float) -> None:
    """Open and close the database once in a child process, killed after `timeout_s`.

    rocksdict holds the GIL for the whole of RocksDB's open, so an open that never returns (a
    garbage WAL tail can keep recovery spinning) freezes every thread of this process: a
    watchdog thread here could never fire. A child can be killed. When the child finishes, it
    has done the recovery (and RocksDB flushed what it replayed), so the open that follows in
    this process is quick; if the child failed, that open fails too, with the real reason.
    Before opening, the child sets aside the one kind of damaged tail known to hang RocksDB
    (log_tail.py), so that kind opens instead of being refused.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_SOURCE_ROOT, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-c", _PROBE, str(path)]
    try:
        # Our own interpreter running our own module: no untrusted input reaches the command.
        done = subprocess.run(command, env=env, timeout=timeout_s,  # noqa: S603
                              capture_output=True, text=True, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WalUnavailable(
            f"the WAL at {path} did not open in {timeout_s:g} s (RocksDB may be stuck "
            "recovering a damaged log); check the disk, and restore the directory from a "
            "backup if it still does not open",
            details={"path": str(path), "timeout_s": timeout_s},
        ) from exc
    said = done.stderr.strip()[-2000:]
    if done.returncode == _NOT_SET_ASIDE:  # opening here would hang on the tail: refuse
        raise WalUnavailable(
            f"the WAL at {path} has a damaged log tail RocksDB would hang on, and {said}; "
            "free space or fix permissions beside the WAL's folder, then start again",
            details={"path": str(path), "cause": said})
    if done.returncode != 0:
        logger.debug("the WAL open probe failed (the open here will say why): %s", said)
    elif said:
        # E.g. the child had to remove a damaged rocksdict config: worth an operator's look.
        logger.warning("opening the WAL at %s: %s", path, said, extra={"wal_path": str(path)})


class TailNotSetAside(Exception):
    """A tail RocksDB would hang on was found, and moving it aside failed."""


def set_aside_hanging_tails(path: Path) -> list[Path]:
    """Move the bytes RocksDB's replay would hang on (see log_tail.py) out of each log file.

    Runs only in the probe's child, holding RocksDB's own lock: no other process may be
    writing the log, and a child has no other opener whose POSIX lock closing ours would drop.
    The bytes go to a folder beside the WAL's, fsynced (file and folder) before the log is
    cut, so nothing is thrown away; what was in them was never replayable. Returns the files
    written; TailNotSetAside if a tail was found and could not be moved."""
    if not (path / "CURRENT").exists():
        return []  # a new database: no log to read yet
    saved: list[Path] = []
    try:
        lock = (path / "LOCK").open("a+b")  # RocksDB's own lock file (made if a restore lost it)
    except OSError:
        return []  # RocksDB's open then says what is wrong with the folder
    with lock:
        try:
            fcntl.lockf(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return []  # held elsewhere: RocksDB's open says so, with its own message
        for log in sorted(path.glob("*.log")):
            try:
                data = log.read_bytes()
            except OSError:
                continue  # RocksDB's open reports an unreadable log itself
            cut = hang_offset(data)
            if cut is None:
                continue
            try:
                saved.append(_move_aside(path, log, data, cut))
            except OSError as exc:
                raise TailNotSetAside(f"moving the tail of {log} (from byte {cut}) aside "
                                      f"failed: {exc}") from exc
    return saved


def _move_aside(path: Path, log: Path, data: bytes, cut: int) -> Path:
    folder = path.parent / f"{path.name}-damaged-tails"
    folder.mkdir(exist_ok=True)
    aside = folder / f"{log.name}-from-{cut}"
    with aside.open("wb") as out:
        out.write(data[cut:])
        out.flush()
        os.fsync(out.fileno())
    for directory in (folder, path.parent):  # the new names survive a power cut too
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
    with log.open("rb+") as cutting:
        cutting.truncate(cut)
        os.fsync(cutting.fileno())
    print(f"the log {log} held a record header RocksDB cannot replay (a damaged tail) at "
          f"byte {cut}; its last {len(data) - cut} bytes were moved to {aside}", file=sys.stderr)
    return aside


def probe_main(argv: list[str]) -> int:
    """The child's side of probe_open."""
    try:
        set_aside_hanging_tails(Path(argv[0]))
    except TailNotSetAside as exc:
        print(str(exc), file=sys.stderr)
        return _NOT_SET_ASIDE
    try:
        db = open_raw(Path(argv[0]))
    except LakehouseError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    db.close()
    return 0


_NOT_SET_ASIDE = 3
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])
_PROBE = ("import sys; from lakehouse.wal.opening import probe_main; "
          "sys.exit(probe_main(sys.argv[1:]))")
