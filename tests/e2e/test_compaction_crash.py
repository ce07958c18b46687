"""Kill the compaction worker at any point: the table stays readable and complete, the next run
finishes the job, and cleanup removes what the dead run left behind.

The worker is a real `lakehouse compact` process on the same SQLite catalog and folder. It is
killed at the two crash points (outputs written, not committed; one group committed, the next
not started) and with SIGKILL at random moments, several times in a row.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.compute as pc
import pytest

from api.core import Core, build_core
from flows.ingest import flush_here
from lakehouse.config import Settings
from lakehouse.storage.cleanup import delete_dead_files, delete_orphans
from tests.snapshot_scan import scan_table

pytestmark = pytest.mark.slow

DAYS = ["2026-11-01", "2026-11-02", "2026-11-03"]
FLUSHES_PER_DAY = 6
ROWS = 50


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(Settings.for_tests(tmp_path), ingest=True)
    assert built.ingest is not None and built.flusher is not None
    for n in range(FLUSHES_PER_DAY):
        for day in DAYS:
            built.ingest.write("acme", [
                {"data_id": f"{day}-{n}-{i}", "timestamp": f"{day}T12:00:00Z",
                 "payload": {"i": i}} for i in range(ROWS)]).answer(timeout_s=10)
            flush_here(built.flusher)
    yield built
    built.close()


def _worker(core: Core, crash_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_"))}
    env.update({"DATA_DIR": str(core.settings.data_dir), "ENVIRONMENT": "test",
                "JWT_SECRET": core.settings.jwt_secret, "COMPACTION_MIN_FILES": "2",
                "COMPACTION_ACTIVE_WINDOW_S": "0", "COMPACTION_ON_DASK": "false"})
    if crash_at is not None:
        env["LAKEHOUSE_CRASH_AT"] = crash_at
    return subprocess.Popen([str(Path(sys.executable).parent / "lakehouse"), "compact"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _check_complete(core: Core) -> None:
    assert core.catalog is not None and core.storage is not None
    rows = scan_table(core.catalog, core.storage, "acme", "records").rows
    assert rows.num_rows == len(DAYS) * FLUSHES_PER_DAY * ROWS
    assert pc.count_distinct(rows.column("data_id")).as_py() == rows.num_rows


def test_kill_the_compaction_worker_anywhere(core: Core) -> None:
    assert core.catalog is not None and core.storage is not None
    killed = 0
    for point in ("compaction:after_rewrite", "compaction:after_commit"):
        proc = _worker(core, point)
        assert proc.wait(120) == 137, proc.stdout.read() if proc.stdout else ""
        killed += 1
        _check_complete(core)
    rng = random.Random(7)
    for _ in range(4):
        proc = _worker(core)
        time.sleep(rng.uniform(0.5, 2.5))  # start-up is ~1 s: some land mid-rewrite
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        killed += 1
        _check_complete(core)
    assert killed >= 5

    finished = _worker(core)
    output = finished.communicate(timeout=120)[0].decode()
    assert finished.returncode == 0, output
    _check_complete(core)
    per_day = {day: len([f for f in core.catalog.files("acme", "records")
                         if f.partition == f"day={day}"]) for day in DAYS}
    assert per_day == {day: 1 for day in DAYS}, per_day

    # What the dead runs wrote and never committed, and what compaction replaced, goes.
    now = time.time() + 1
    delete_orphans(core.catalog, core.storage, grace_s=0, now=now)
    delete_dead_files(core.catalog, core.storage, grace_s=0, now=now)
    on_disk = sorted(str(p.relative_to(core.settings.data_dir / "warehouse"))
                     for p in (core.settings.data_dir / "warehouse").rglob("*.parquet*"))
    assert on_disk == sorted(f.path for f in core.catalog.files("acme", "records"))
    _check_complete(core)
