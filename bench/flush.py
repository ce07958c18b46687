"""Flush benchmark: rows/s from the log to committed Parquet, against a bare pyarrow write.

    .venv/bin/python bench/flush.py                # 1,000,000 rows (the issue's figure)
    .venv/bin/python bench/flush.py --rows 200000

Both sides write the same rows with the same codec (LZ4), in the same process on the same disk:
the reference is `pyarrow.parquet.write_table` of the rows already in one Arrow table; the flush
reads them from a real RocksDB WAL, conforms, partitions, writes with statistics, commits to a
SQLite catalog and trims the log. Target: the flush at >= 50% of the reference.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from flows.ingest import flush_here

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import make_records

from api.core import build_core
from lakehouse.config import Settings
from lakehouse.ingest.flush_rows import entries_table
from lakehouse.ingest.keys import TableRef
from lakehouse.storage.parquet_files import CODEC


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-flush-"))
    try:
        settings = Settings.for_tests(root, wal_sync=False, tenant_write_rate=0,
                                      ingest_max_unflushed_bytes=64 * 1024**3)
        core = build_core(settings, ingest=True)
        assert core.ingest is not None and core.flusher is not None
        started = time.perf_counter()
        for offset in range(0, args.rows, 10_000):
            chunk = make_records(min(10_000, args.rows - offset), f"r{offset}-", seed=offset)
            core.ingest.write("bench", [orjson.loads(orjson.dumps(r)) for r in chunk]
                              ).answer(timeout_s=120)
        print(f"loaded {args.rows:,} rows into the WAL in {time.perf_counter() - started:.1f}s")

        plan = core.flusher.plan()
        assert plan is not None
        [work] = plan.tables
        rows = entries_table(work.entries, core.ingest.table_schema(TableRef("bench", "records"))
                             or work.schema)
        start = time.perf_counter()
        pq.write_table(rows, str(root / "reference.parquet"), compression=CODEC)
        reference = rows.num_rows / (time.perf_counter() - start)

        start = time.perf_counter()
        result = flush_here(core.flusher)
        flushed = result["rows"] / (time.perf_counter() - start)
        core.close()
        print(f"reference: pyarrow.parquet.write_table  {reference:,.0f} rows/s")
        print(f"flush (WAL -> Parquet -> catalog -> trim) {flushed:,.0f} rows/s, "
              f"{result['files']} files, {result['bytes'] / 2**20:,.1f} MiB")
        print(f"ratio {flushed / reference:.0%} (target >= 50%)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
