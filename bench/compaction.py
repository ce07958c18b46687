"""Compaction benchmark: throughput against a bare pyarrow rewrite, and what it does for scans.

    .venv/bin/python bench/compaction.py                  # 2,000 flushes of 1,000 rows
    .venv/bin/python bench/compaction.py --flushes 300    # a quicker run

The table is made by the real write path: records go through the WAL and each batch of 1,000 is
flushed to its own Parquet file and snapshot. Then, on the same files, in the same process:
- reference: bare pyarrow — read every file, concatenate, sort by the key compaction sorts this
  table by (data_id: it declares no sort key), write one zstd file (best of two runs, before
  and after ours);
- ours: one compaction run — plan from the catalog, rewrite (read, drop replaced versions,
  sort, cut at the target size, statistics), commit a snapshot.
Scans before and after (DuckDB over the table's live files, best of 3): a count, a filtered
aggregate, a point lookup by data_id. Targets: ours >= 60% of the reference's bytes/s; <= 4 files
per partition after one run; every scan >= 5x faster.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from flows.ingest import flush_here

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import make_records

from api.core import build_core
from lakehouse.catalog.lake import Catalog
from lakehouse.catalog.table_options import SqlTableOptions
from lakehouse.compaction.planner import plan_compaction
from lakehouse.compaction.policy import CompactionPolicy
from lakehouse.config import Settings
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.maintenance import compact_group, table_files

SORT_KEY = "data_id"  # what compaction sorts a table without a declared sort key by
SCANS = {
    "count": "SELECT count(*) FROM t",
    "filtered aggregate": "SELECT city, count(*), avg(score), max(age) FROM t "
                          "WHERE age BETWEEN 30 AND 40 AND active GROUP BY city",
    "point lookup": "SELECT * FROM t WHERE data_id = ?",
}


def reference(paths: list[str], out: Path) -> float:
    """Seconds for a bare read + sort + write of the same files."""
    start = time.perf_counter()
    rows = pa.concat_tables([pq.read_table(p) for p in paths], promote_options="permissive")
    rows = rows.sort_by([(SORT_KEY, "ascending")])
    pq.write_table(rows, str(out), compression="zstd")
    return time.perf_counter() - start


def scan_times(catalog: Catalog, storage: StorageRoot, data_id: str) -> dict[str, float]:
    paths = [storage.full(f.path) for f in catalog.files("bench", "events")]
    times = {}
    with duckdb.connect() as con:
        con.execute("SET threads = 2")
        con.read_parquet(paths).create_view("t")
        for name, sql in SCANS.items():
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                con.execute(sql, [data_id] if "?" in sql else []).fetchall()
                best = min(best, time.perf_counter() - start)
            times[name] = best
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flushes", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1000, help="rows per flush")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-compaction-"))
    try:
        settings = Settings.for_tests(root, wal_sync=False, tenant_write_rate=0)
        core = build_core(settings, ingest=True)
        assert core.ingest and core.flusher and core.catalog and core.storage
        started = time.perf_counter()
        for n in range(args.flushes):
            records: list[dict[str, Any]] = make_records(args.rows, f"r{n}-", seed=n)
            for record in records:
                record["table"] = "events"
            core.ingest.write("bench", [orjson.loads(orjson.dumps(r)) for r in records]
                              ).answer(timeout_s=60)
            flush_here(core.flusher)
            if (n + 1) % 200 == 0:
                print(f"  {n + 1} flushes", file=sys.stderr)
        files = core.catalog.files("bench", "events")
        size = sum(f.byte_size for f in files)
        rows = sum(f.row_count for f in files)
        print(f"{args.flushes} flushes of {args.rows} rows: {len(files)} files, {rows:,} rows, "
              f"{size / 2**20:.1f} MiB in {time.perf_counter() - started:.0f}s")
        point = f"r{args.flushes // 2}-{args.rows // 3}"
        before = scan_times(core.catalog, core.storage, point)

        paths = [core.storage.full(f.path) for f in files]
        ref_first = reference(paths, root / "reference.parquet")

        policy = CompactionPolicy(active_window_s=settings.compaction_active_window_s)
        start = time.perf_counter()
        plan = plan_compaction(table_files(core.catalog, SqlTableOptions(core.engine)), policy,
                               time.time())
        results = [compact_group(core.catalog, core.storage, g, policy) for g in plan.groups]
        ours = time.perf_counter() - start
        ref_second = reference(paths, root / "reference.parquet")
        ref = min(ref_first, ref_second)
        after_files = core.catalog.files("bench", "events")
        after = scan_times(core.catalog, core.storage, point)

        rows_after = sum(f.row_count for f in after_files)
        assert rows_after == rows, (rows_after, rows)
        per_partition: dict[str, int] = {}
        for f in after_files:
            per_partition[f.partition] = per_partition.get(f.partition, 0) + 1
        print(f"\nreference (bare read + sort + write): {size / ref / 2**20:.1f} MiB/s "
              f"({ref:.2f}s; runs {ref_first:.2f}s, {ref_second:.2f}s)")
        print(f"compaction run: {size / ours / 2**20:.1f} MiB/s ({ours:.2f}s, "
              f"{len(results)} groups)")
        print(f"throughput ratio: {ref / ours:.0%} of the reference (target >= 60%)")
        print(f"files: {len(files)} before, {len(after_files)} after; per partition after: "
              f"{max(per_partition.values())} at most (target <= 4)")
        print(f"\n{'scan':<20}{'before':>10}{'after':>10}{'speed-up':>10}")
        for name in SCANS:
            print(f"{name:<20}{before[name] * 1000:>8.1f}ms{after[name] * 1000:>8.1f}ms"
                  f"{before[name] / after[name]:>9.1f}x")
        print("target: every scan >= 5x faster")
        core.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
