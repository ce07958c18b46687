"""Load benchmark: TPC-H at scale factor 1, through the load path, against bare pyarrow.

    .venv/bin/python bench/load.py                  # generates SF1 with tpchgen-cli first
    .venv/bin/python bench/load.py --data DIR       # reuse Parquet files tpchgen-cli wrote
    .venv/bin/python bench/load.py --flow           # (c) through the Prefect `load` flow

Measured in this process on the same files:
(a) reference: a bare pyarrow read-and-write of lineitem (pq.read_table, then pq.write_table
    with zstd), rows/s;
(b) lineitem through the load path (plan, parts converted and written in threads, one
    commit; local storage, SQLite catalog in a temporary DATA_DIR), rows/s and its ratio to
    (a), target >= 50%;
(c) all 8 tables loaded one after another, target < 3 minutes.
(a) and (b) use the domain's load path (Loader.run); the Prefect flow runs the same steps as
tasks and adds its bookkeeping (about 0.2 s a task), which `--flow` shows for (c), on the
Prefect server PREFECT_API_URL names (or a temporary one Prefect starts, counted in (c)).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from flows.load import start_load
from lakehouse.catalog.declarations import SqlDeclarations
from lakehouse.catalog.engine import catalog_engine
from lakehouse.catalog.lake_sql import SqlCatalog
from lakehouse.config import Settings
from lakehouse.load.loader import Loader, LoadRequest
from lakehouse.load.sources import roots_for
from lakehouse.storage.location import StorageRoot

TABLES = ("region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem")
RATIO_TARGET = 0.5
ALL_TABLES_TARGET_S = 180.0
RUNS = 2


def generate(folder: Path, scale: float) -> None:
    tool = shutil.which("tpchgen-cli") or str(Path(sys.executable).parent / "tpchgen-cli")
    started = time.perf_counter()
    subprocess.run([tool, "parquet", "--scale-factor", str(scale), "--output-dir",
                    str(folder), "--no-progress", "--quiet"], check=True)
    print(f"generated TPC-H SF{scale:g} Parquet in {time.perf_counter() - started:.1f} s")


def bare(source: Path, scratch: Path) -> tuple[int, float]:
    started = time.perf_counter()
    table = pq.read_table(source)
    pq.write_table(table, scratch / "bare.parquet", compression="zstd")
    took = time.perf_counter() - started
    (scratch / "bare.parquet").unlink()
    return table.num_rows, took


def loader(data_dir: Path, sources: Path) -> Loader:
    settings = Settings.for_tests(data_dir, load_roots=str(sources))
    engine = catalog_engine(settings.catalog_url)
    storage = StorageRoot.parse(settings.storage_root)
    storage.fs.create_dir(storage.base, recursive=True)
    return Loader(SqlCatalog(engine), storage, roots_for(settings),
                  SqlDeclarations(engine))


def timed_load(data_dir: Path, sources: Path, table: str) -> tuple[int, float]:
    target = loader(data_dir, sources)
    started = time.perf_counter()
    result = target.run(LoadRequest("bench", table, str(sources / f"{table}.parquet")))
    return result.rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="TPC-H Parquet files to reuse")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--flow", action="store_true",
                        help="load the 8 tables through the Prefect flow")
    args = parser.parse_args()
    # A temporary Prefect server would otherwise try to send usage data out of this machine.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        scratch = Path(tmp)
        sources = args.data.resolve() if args.data else scratch / "tpch"
        if args.data is None:
            sources.mkdir()
            generate(sources, args.scale)
        lineitem = sources / "lineitem.parquet"
        pq.read_table(lineitem)  # both sides then read from the page cache
        # Best of two runs each, alternating, so a passing disturbance hits both sides alike.
        rows, bare_s, load_s = 0, float("inf"), float("inf")
        for attempt in range(RUNS):
            rows, took = bare(lineitem, scratch)
            bare_s = min(bare_s, took)
            loaded, took = timed_load(scratch / f"lineitem-{attempt}", sources, "lineitem")
            assert loaded == rows, (loaded, rows)
            load_s = min(load_s, took)
            shutil.rmtree(scratch / f"lineitem-{attempt}")
        ratio = bare_s / load_s
        print(f"lineitem: {rows:,} rows (best of {RUNS})")
        print(f"  (a) bare pyarrow read + zstd write: {bare_s:6.2f} s "
              f"{rows / bare_s:12,.0f} rows/s")
        print(f"  (b) load path (plan, parts, commit): {load_s:6.2f} s "
              f"{rows / load_s:12,.0f} rows/s   ratio {ratio:.0%} "
              f"(target >= {RATIO_TARGET:.0%}) {'ok' if ratio >= RATIO_TARGET else 'MISSED'}")

        started = time.perf_counter()
        everything = loader(scratch / "all", sources)
        total_rows = 0
        for table in TABLES:
            began = time.perf_counter()
            request = LoadRequest("bench", table, str(sources / f"{table}.parquet"))
            done = (start_load(request, everything).wait() if args.flow
                    else everything.run(request).to_dict())
            total_rows += done["rows"]
            print(f"    {table:9s} {done['rows']:>10,} rows {done['files']:>3} files "
                  f"{time.perf_counter() - began:6.2f} s")
        all_s = time.perf_counter() - started
        how = "the Prefect flow" if args.flow else "the load path"
        print(f"  (c) all 8 tables through {how}: {total_rows:,} rows in {all_s:.1f} s "
              f"(target < {ALL_TABLES_TARGET_S:.0f} s) "
              f"{'ok' if all_s < ALL_TABLES_TARGET_S else 'MISSED'}")


if __name__ == "__main__":
    main()
