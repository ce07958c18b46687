"""How a Dataset reaches the platform, as a list of steps any target can carry out (pure).

- LOAD tables: one Parquet file per batch, each loaded in its own snapshot (several files per
  partition, row groups of a few rows), partitioned by the day of a timestamp column when the
  table has one, or by a declared partition column.
- RECORDS tables: declared first (exact types: decimals, dates, timestamps), then records in
  batches with a flush after each; record times spread over several days (several day
  partitions), or a declared partition column. Some rows are first written with other values
  and then upserted, so only their newest version may be seen.
- MIXED tables: a load first, then records in the load's types; every batch but the last is
  flushed, so the last one is still in the write-ahead log when the queries run.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tools.sqlgen.schema import KEY, Dataset, Path, Row, Table, stale_value


@dataclass(frozen=True)
class Declare:
    table: str
    spec: dict[str, Any]  # the body of POST /metadata/tables


@dataclass(frozen=True)
class Load:
    table: str
    file: str  # a file name, relative to the target's import folder
    rows: tuple[Row, ...]
    timestamp_column: str | None


@dataclass(frozen=True)
class Write:
    table: str
    records: tuple[dict[str, Any], ...]  # the bodies of POST /data (NDJSON lines of /data/store)


@dataclass(frozen=True)
class Flush:
    pass


Step = Declare | Load | Write | Flush


def json_value(value: Any) -> Any:
    """A value as a record carries it (README, "One type system")."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def record(table: Table, index: int, row: Row, *, upsert: bool = False) -> dict[str, Any]:
    payload = {c.name: json_value(v) for c, v in zip(table.columns, row, strict=True)
               if c.name != KEY}
    key = row[0] if table.keyed else f"{table.name}-r{index}"
    body: dict[str, Any] = {"data_id": key, "table": table.name, "payload": payload}
    if table.partition_by is None:  # spread over day partitions
        body["timestamp"] = f"2026-01-0{1 + index % 3}T0{index % 10}:00:00Z"
    if upsert:
        body["upsert"] = True
    return body


def table_steps(table: Table, rng: random.Random) -> list[Step]:
    steps: list[Step] = []
    if table.declared:
        steps.append(Declare(table.name, table.declaration()))
    bounds = []
    start = 0
    for size in table.batches:
        bounds.append((start, start + size))
        start += size
    loaded = len(bounds) if table.path is Path.LOAD else table.loaded_batches
    for n, (lo, hi) in enumerate(bounds[:loaded]):
        steps.append(Load(table.name, f"{table.name}-{n}.parquet", table.rows[lo:hi],
                          table.timestamp_column))
    written = bounds[loaded:]
    if not written:
        return steps
    if table.upserted:  # the versions an upsert replaces, flushed before it
        stale = []
        for index in table.upserted:
            row = table.rows[index]
            position = rng.randrange(1 if table.keyed else 0, len(row))
            changed = list(row)
            changed[position] = stale_value(rng, table.columns[position], row[position])
            stale.append(record(table, index, tuple(changed)))
        steps += [Write(table.name, tuple(stale)), Flush()]
    for n, (lo, hi) in enumerate(written):
        records = tuple(record(table, i, table.rows[i], upsert=i in table.upserted)
                        for i in range(lo, hi))
        if records:
            steps.append(Write(table.name, records))
        last = n == len(written) - 1
        if not (last and table.path is Path.MIXED):
            steps.append(Flush())
    return steps


def setup_steps(dataset: Dataset) -> list[Step]:
    """Every table's steps. A flush flushes every table, so the MIXED tables' last batches are
    written after every other step: they stay in the log."""
    body: list[Step] = []
    tail: list[Step] = []
    for index, table in enumerate(dataset.tables):  # by position: names carry a prefix
        mine = table_steps(table, random.Random(f"steps:{dataset.seed}:{index}"))
        if table.path is Path.MIXED and mine and isinstance(mine[-1], Write):
            tail.append(mine.pop())
        body += mine
    return body + tail
