"""RocksWal beyond the shared contract: restarts, a second process, the acknowledged-sequence
marker, damaged files, a stuck open and a full disk. All against real RocksDB in tmp_path."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from rocksdict import Options, Rdict

from lakehouse.errors import StorageFull, WalCorrupted, WalUnavailable
from lakehouse.wal.codec import log_key
from lakehouse.wal.log_tail import BLOCK_BYTES, hang_offset
from lakehouse.wal.marker import MARKER_FILE
from lakehouse.wal.opening import CONFIG_FILE
from lakehouse.wal.port import LogEntry, StoredEntry, WalStats
from lakehouse.wal.rocks import RocksWal

ROOT = Path(__file__).resolve().parents[2]


def _marker(path: Path) -> int:
    return int.from_bytes((path / MARKER_FILE).read_bytes(), "big")


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_entries_index_and_last_seq_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    wal = RocksWal.open(path)
    wal.append([LogEntry(b"one"), LogEntry(b"many", 10)], {b"acme/a": b"1", b"acme/b": b"2"})
    wal.append([], {b"acme/b": None})
    wal.close()

    wal = RocksWal.open(path)
    assert list(wal.read()) == [StoredEntry(1, 1, b"one"), StoredEntry(2, 10, b"many")]
    assert wal.last_seq() == 11
    assert wal.index_get([b"acme/a", b"acme/b"]) == [b"1", None]
    assert wal.stats() == WalStats()  # counters are per open
    assert wal.trim(11) == 2
    wal.close()

    wal = RocksWal.open(path)
    assert list(wal.read()) == []
    assert (wal.last_seq(), wal.first_seq()) == (11, 12)
    assert wal.append([LogEntry(b"next")]) == 12
    wal.close()


def test_a_second_open_of_the_same_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    wal = RocksWal.open(path)
    wal.append([LogEntry(b"x")])
    with pytest.raises(WalUnavailable, match="another process holds the WAL at"):
        RocksWal.open(path)
    other = _run("""
        import sys
        from pathlib import Path
        from lakehouse.errors import WalUnavailable
        from lakehouse.wal.rocks import RocksWal
        try:
            RocksWal.open(Path(sys.argv[1]))
        except WalUnavailable as exc:
            print(exc.message)
    """, str(path))
    assert "another process holds the WAL at" in other.stdout, other.stderr
    assert wal.append([LogEntry(b"y")]) == 2  # the holder is unaffected
    wal.close()
    RocksWal.open(path).close()  # and once released, the directory opens


def test_a_reader_left_half_way_does_not_keep_the_database_open(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    wal = RocksWal.open(path)
    wal.append([LogEntry(b"r%d" % i) for i in range(1000)])
    reader = wal.read()
    assert next(reader).seq == 1
    wal.close()
    RocksWal.open(path).close()
    with pytest.raises(WalUnavailable, match="closed"):
        list(reader)


def test_the_marker_follows_synced_appends(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    wal = RocksWal.open(path)
    assert _marker(path) == 0
    wal.append([LogEntry(b"a", 3)])
    assert _marker(path) == 3
    wal.append([], {b"k": b"v"})
    wal.trim(3)
    assert _marker(path) == 3
    wal.append([LogEntry(b"b")])
    assert _marker(path) == 4
    wal.close()


def test_without_sync_there_is_no_marker_and_no_fsync(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    wal = RocksWal.open(path, sync=False)
    wal.append([LogEntry(b"a")])
    wal.trim(1)
    assert wal.stats() == WalStats(appends=1, entries=1, fsyncs=0, bytes_appended=1)
    assert not (path / MARKER_FILE).exists()
    wal.close()


def test_recovering_less_than_was_acknowledged_refuses_to_serve(tmp_path: Path) -> None:
    """Simulated: the lost tail is faked by writing a higher value into the marker by hand."""
    path = tmp_path / "wal"
    wal = RocksWal.open(path)
    wal.append([LogEntry(b"a"), LogEntry(b"b", 2)])
    wal.close()
    (path / MARKER_FILE).write_bytes((10).to_bytes(8, "big"))
    with pytest.raises(WalCorrupted, match="recovered up to sequence 3 but 10 was acknowledged"):
        RocksWal.open(path)
    # Refusing released the database: with the marker back in line, it opens.
    (path / MARKER_FILE).write_bytes((3).to_bytes(8, "big"))
    wal = RocksWal.open(path)
    assert wal.last_seq() == 3
    wal.close()


def test_a_damaged_marker_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "wal"
    RocksWal.open(path).close()
    (path / MARKER_FILE).write_bytes(b"\x00\x01")
    with pytest.raises(WalCorrupted, match="8 bytes, found 2"):
        RocksWal.open(path)


def test_an_undecodable_entry_is_reported_not_skipped(tmp_path: Path) -> None:
    """Simulated: the bad value is written straight into RocksDB, bypassing the codec."""
    path = tmp_path / "wal"
    wal = RocksWal.open(path)
    wal.append([LogEntry(b"a"), LogEntry(b"b"), LogEntry(b"c")])
    wal.close()
    db = Rdict(str(path), options=Options(raw_mode=True))
    db.put(log_key(2), b"\x07\x00\x00\x00\x01from the future")
    db.close()
    wal = RocksWal.open(path)
    with pytest.raises(WalCorrupted, match="codec version 7"):
        list(wal.read())
    assert wal.entry_containing(3) == StoredEntry(3, 1, b"c")
    wal.close()


@pytest.mark.parametrize("damage", ["garbage", "empty", "missing", "directory"])
def test_a_damaged_rocksdict_config_does_not_prevent_opening(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The damage is made by hand, as a power cut during rocksdict's unsynced write could
    leave it; `directory` stands for a config that cannot be read at all."""
    path = tmp_path / "wal"
    wal = RocksWal.open(path)
    wal.append([LogEntry(b"kept")], {b"k": b"v"})
    wal.close()
    config = path / CONFIG_FILE
    config.unlink()
    if damage == "garbage":
        config.write_bytes(b'{"raw_mode": fal\x00\xff')
    elif damage == "empty":
        config.write_bytes(b"")
    elif damage == "directory":
        config.mkdir()
    with caplog.at_level(logging.WARNING, logger="lakehouse.wal.opening"):
        wal = RocksWal.open(path)
    assert list(wal.read()) == [StoredEntry(1, 1, b"kept")]
    assert wal.index_get([b"k"]) == [b"v"]
    wal.close()
    if damage == "directory":
        assert any("retrying once" in r.getMessage() for r in caplog.records)
        assert config.is_file()


def test_an_open_that_never_returns_times_out(tmp_path: Path) -> None:
    """A real stuck open, without a damaged WAL to hand: CURRENT (which RocksDB reads first)
    is replaced by a named pipe that nobody writes, so the open blocks inside RocksDB."""
    path = tmp_path / "wal"
    wal = RocksWal.open(path)
    wal.append([LogEntry(b"x")])
    wal.close()
    current = (path / "CURRENT").read_bytes()
    (path / "CURRENT").unlink()
    os.mkfifo(path / "CURRENT")

    started = time.monotonic()
    with pytest.raises(WalUnavailable, match=r"did not open in 1\.5 s") as caught:
        RocksWal.open(path, open_timeout_s=1.5)
    assert 1.5 <= time.monotonic() - started < 10
    assert "restore the directory from a backup" in caught.value.message

    # Nothing of the stuck attempt lingers: with CURRENT back, the WAL opens.
    (path / "CURRENT").unlink()
    (path / "CURRENT").write_bytes(current)
    wal = RocksWal.open(path)
    assert wal.last_seq() == 1
    wal.close()


FULL_DISK = """
    import hashlib, json, os, resource, signal, sys
    from pathlib import Path
    from lakehouse.errors import LakehouseError
    from lakehouse.wal.port import LogEntry
    from lakehouse.wal.rocks import RocksWal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit gets EFBIG instead
    wal = RocksWal.open(Path(sys.argv[1]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))
    acked, i = 0, 0
    while True:
        payload = hashlib.sha256(str(i).encode()).digest() * 200  # as _payload() in the test
        try:
            first = wal.append([LogEntry(payload, 3)], {b"id/%d" % i: str(i).encode()})
        except LakehouseError as exc:
            error = exc.code
            break
        acked, i = first + 2, i + 1
    try:
        wal.append([LogEntry(b"again")])
        again = "accepted"
    except LakehouseError as exc:
        again = exc.code
    print(json.dumps({"acked": acked, "error": error, "again": again,
                      "degraded": wal.degraded}), flush=True)
    os._exit(0)  # die without closing anything, as a crash would
"""


def _payload(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * 200


def test_a_full_disk_stops_acknowledging_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """The full disk is simulated with RLIMIT_FSIZE in a child process: RocksDB's write(2)
    fails with EFBIG ("File too large"), as it fails with ENOSPC on a really full disk."""
    path = tmp_path / "wal"
    child = _run(FULL_DISK, str(path))
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    acked = report["acked"]
    assert acked >= 30  # it wrote until the limit, then stopped
    assert report["error"] == report["again"] == StorageFull.code
    assert "File too large" in report["degraded"]

    wal = RocksWal.open(path)
    assert _marker(path) == acked
    entries = list(wal.read())
    # Every acknowledged entry is there, whole; the failed one is either wholly there or absent.
    assert wal.last_seq() in (acked, acked + 3)
    assert [e.seq for e in entries] == list(range(1, wal.last_seq() + 1, 3))
    for i, entry in enumerate(entries):
        assert (entry.width, entry.payload) == (3, _payload(i))
    ids = [b"id/%d" % i for i in range(len(entries) + 1)]
    assert wal.index_get(ids) == [str(i).encode() for i in range(len(entries))] + [None]
    assert wal.degraded is None
    assert wal.append([LogEntry(b"after")]) == wal.last_seq()
    wal.close()


def test_reads_never_run_ahead_of_the_synced_last_seq(tmp_path: Path) -> None:
    """A batch is in RocksDB a moment before its sync returns (see rocks.py); no read may hand
    out an entry in that moment, or a reader could see a record that a crash then takes away."""
    wal = RocksWal.open(tmp_path / "wal")
    stop = threading.Event()

    def append() -> None:
        while not stop.is_set():
            wal.append([LogEntry(b"x" * 100)])

    writer = threading.Thread(target=append)
    writer.start()
    ahead: list[tuple[str, int, int]] = []
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and wal.last_seq() < 2000:
            newest = max((e.last_seq for e in wal.read(after=max(wal.last_seq() - 3, 0))),
                         default=0)
            if newest > (last := wal.last_seq()):
                ahead.append(("read", newest, last))
            reverse = next(iter(wal.read_reverse(limit=1)), None)
            if reverse is not None and reverse.last_seq > (last := wal.last_seq()):
                ahead.append(("read_reverse", reverse.last_seq, last))
            probe = wal.last_seq() + 1
            if wal.entry_containing(probe) is not None and probe > wal.last_seq():
                ahead.append(("entry_containing", probe, probe - 1))
    finally:
        stop.set()
        writer.join()
        wal.close()
    assert ahead == []


CRASHED_WRITER = """
    import os, sys
    from pathlib import Path
    from lakehouse.wal.port import LogEntry
    from lakehouse.wal.rocks import RocksWal

    wal = RocksWal.open(Path(sys.argv[1]))
    for i in range(200):
        wal.append([LogEntry(b"record-%d" % i * 20)])
    print(wal.last_seq(), flush=True)
    os._exit(0)  # a crash: the records stay in RocksDB's log file, nothing is flushed
"""
TAIL_LIMIT_S = 30.0
RECORDS = [b"record-%d" % i * 20 for i in range(200)]


@pytest.fixture(scope="module")
def crashed_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """One WAL left by a crashed writer; each case damages its own copy."""
    path = tmp_path_factory.mktemp("crashed") / "wal"
    child = _run(CRASHED_WRITER, str(path))
    assert child.returncode == 0, child.stderr
    return path, int(child.stdout)


def _garbage(seed: int) -> bytes:
    # Seeded, so a failure names the bytes that caused it.
    return random.Random(seed).randbytes(4096)


def _recyclable_header(kind: int) -> bytes:
    # A header of a type only a recycled log has, as garbage starts about once in 64 cases:
    # RocksDB's replay loops on it for ever unless it is set aside first.
    return bytes(4) + (100).to_bytes(2, "little") + bytes([kind]) + bytes(4089)


def _damage(log: Path, how: str) -> None:
    data = log.read_bytes()
    if how.startswith("garbage"):  # random bytes after the last record, as a torn sector leaves
        log.write_bytes(data + _garbage(int(how.removeprefix("garbage"))))
    elif how.startswith("recyclable"):
        log.write_bytes(data + _recyclable_header(int(how.removeprefix("recyclable"))))
    elif how == "zeros":  # a preallocated, never-written tail
        log.write_bytes(data + bytes(32 * 1024))
    elif how == "zeros_then_recyclable":  # the reader skips the zeros' block, then reads on
        log.write_bytes(data + bytes(-len(data) % BLOCK_BYTES) + _recyclable_header(5))
    elif how == "torn":  # the last record cut short: acknowledged bytes gone
        log.write_bytes(data[:-7])
    elif how == "torn_then_garbage":
        log.write_bytes(data[:-100] + _garbage(0)[:1000])


@pytest.mark.parametrize(("how", "recovers"), [
    # Seed 17's garbage starts with a header RocksDB would loop on; the others do not.
    *((f"garbage{seed}", True) for seed in (*range(12), 17)),
    *((f"recyclable{kind}", True) for kind in (5, 6, 7, 8, 11)),
    ("zeros", True), ("zeros_then_recyclable", True), ("torn", False),
    ("torn_then_garbage", False)])
def test_a_damaged_log_tail_recovers_the_synced_prefix_or_refuses_in_time(
        crashed_log: tuple[Path, int], tmp_path: Path, how: str, recovers: bool) -> None:
    """A tail after the last synced record is dropped and every acknowledged record comes
    back; a tail that cuts into acknowledged records is refused with the reason (never served
    short); either way within TAIL_LIMIT_S, never a hang. A tail RocksDB would loop on is set
    aside beside the WAL, byte for byte, and the log opens."""
    shutil.copytree(crashed_log[0], path := tmp_path / "wal")
    acked = crashed_log[1]
    [log] = sorted(path.glob("*.log"))
    whole = log.read_bytes()
    _damage(log, how)
    damaged = log.read_bytes()
    started = time.monotonic()
    if recovers:
        wal = RocksWal.open(path, open_timeout_s=TAIL_LIMIT_S)
        assert wal.last_seq() == acked
        assert [e.payload for e in wal.read()] == RECORDS
        wal.close()
    else:
        with pytest.raises(WalCorrupted) as caught:  # refused, not timed out
            RocksWal.open(path, open_timeout_s=TAIL_LIMIT_S)
        assert caught.value.details["recovered"] < caught.value.details["acknowledged"] == acked
    assert time.monotonic() - started < TAIL_LIMIT_S + 5
    aside = sorted((tmp_path / "wal-damaged-tails").glob("*"))
    cut = hang_offset(damaged)
    if how.startswith("recyclable") or how in ("garbage17", "zeros_then_recyclable"):
        assert cut is not None and cut >= len(whole)
        assert [a.name for a in aside] == [f"{log.name}-from-{cut}"]
        assert aside[0].read_bytes() == damaged[cut:]  # (the log itself is replayed and gone)
    elif how != "torn_then_garbage":
        assert cut is None and aside == []  # RocksDB gets past these by itself
