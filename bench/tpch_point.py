"""(e) of bench/tpch.py: a point query by record key on a table of many rows.

The table is loaded with POST /data/load in parts, then compacted with POST /optimize/compact,
which compacts every partition the way the scheduled compaction does: outputs sorted by
data_id, cut near 128 MiB. Record keys rise in arrival order (time-ordered ids), so each
compacted file holds one range of keys and its min/max statistics let the optimizer skip the
others. Each row carries a ~19-byte payload so the table is several files at the target size,
not one.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TABLE = "events"
FILES_TARGET, LATENCY_TARGET_MS = 2, 100.0
SOURCE_ROWS = 2_000_000  # rows per generated source file


def key(n: int) -> str:
    return f"rec-{n:010d}"


def source_rows(start: int, count: int, rng: np.random.Generator) -> pa.Table:
    numbers = pa.array(np.arange(start, start + count, dtype=np.int64))
    ids = pc.binary_join_element_wise("rec-", pc.utf8_lpad(pc.cast(numbers, pa.string()), 10,
                                                           "0"), "")
    return pa.table({
        "data_id": ids,
        "user_id": pa.array(rng.integers(0, 1_000_000, count)),
        "amount": pa.array(rng.random(count) * 1000),
        "kind": pa.array(np.array(["view", "click", "buy", "refund"])[rng.integers(0, 4,
                                                                                  count)]),
        "payload": pc.cast(pa.array(rng.integers(0, 2**62, count)), pa.string()),
    })


def write_sources(folder: Path, rows: int) -> None:
    """The source files, written before the platform starts (its LOAD_ROOTS name the folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    for first in range(0, rows, SOURCE_ROWS):
        pq.write_table(source_rows(first, min(SOURCE_ROWS, rows - first), rng),
                       folder / f"part-{first:010d}.parquet")


def build(bench: Any, folder: Path) -> None:
    started = time.perf_counter()
    loaded = bench.load(TABLE, folder).get("result") or {}
    print(f"  loaded {loaded.get('rows', 0):,} rows as {loaded.get('files', '?')} files "
          f"in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    compacted = bench.compact(TABLE).get("result") or {}
    print(f"  compacted ({compacted.get('files_before', '?')} files into "
          f"{compacted.get('files_after', '?')}) in {time.perf_counter() - started:.1f} s")


def run(bench: Any, folder: Path, rows: int, runs: int) -> None:
    print(f"\n(e) point query on a {rows:,}-row table")
    build(bench, folder)
    sql = f"SELECT * FROM {TABLE} WHERE data_id = '{key(rows * 2 // 3 + 7)}'"  # noqa: S608
    [scan] = bench.optimize(sql)["plan"]["scans"]
    body = bench.ours(sql)
    assert body["row_count"] == 1, body["row_count"]
    best = math.inf
    for _ in range(runs):
        started = time.perf_counter()
        bench.ours(sql)
        best = min(best, (time.perf_counter() - started) * 1000)
    print(f"  {sql}")
    print(f"  files read: {scan['files']} of {scan['files_total']} "
          f"(target <= {FILES_TARGET}) {'met' if scan['files'] <= FILES_TARGET else 'MISSED'}")
    print(f"  over HTTP, best of {runs} warm: {best:.1f} ms (target < {LATENCY_TARGET_MS:.0f} ms)"
          f" {'met' if best < LATENCY_TARGET_MS else 'MISSED'}")
