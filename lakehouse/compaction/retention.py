"""Which files retention drops: those whose rows are all older than the table's period.

A file is entirely older when its `_timestamp` maximum (a column statistic, microseconds) is
below the cutoff; without the statistic, a `day=` partition that ended before the cutoff says
the same. Rows older than the cutoff in files that stay are hidden by the scan (see
`lakehouse.catalog.options.TableOptions.retention_cutoff_us`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lakehouse.catalog.lake import DataFile
from lakehouse.compaction.state import TableFiles

TIME_COLUMN = "_timestamp"
DAY_US = 86_400_000_000


@dataclass(frozen=True, slots=True)
class RetentionDrop:
    tenant: str
    table: str
    cutoff_us: int
    files: tuple[DataFile, ...]
    partitions: tuple[str, ...]  # partitions left with no file at all

    @property
    def rows(self) -> int:
        return sum(f.row_count for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.byte_size for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "table": self.table, "cutoff_us": self.cutoff_us,
                "files": len(self.files), "rows": self.rows, "bytes": self.bytes,
                "partitions": list(self.partitions)}


def plan_retention(tables: Iterable[TableFiles], now: float) -> list[RetentionDrop]:
    drops = []
    for table in tables:
        cutoff = table.options.retention_cutoff_us(now)
        if cutoff is None:
            continue
        old: list[DataFile] = []
        emptied = []
        for part in table.partitions:
            expired = [f for f in part.files if entirely_older(f, cutoff)]
            old.extend(expired)
            if expired and len(expired) == len(part.files):
                emptied.append(part.partition)
        if old:
            drops.append(RetentionDrop(table.tenant, table.table, cutoff, tuple(old),
                                       tuple(emptied)))
    return drops


def entirely_older(file: DataFile, cutoff_us: int) -> bool:
    newest = newest_row_us(file)
    return newest is not None and newest < cutoff_us


def newest_row_us(file: DataFile) -> int | None:
    for stat in file.stats:
        if stat.column == TIME_COLUMN and isinstance(stat.max, int):
            return stat.max
    if file.partition.startswith("day="):
        try:
            day = dt.datetime.strptime(file.partition[4:], "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError:
            return None
        return int(day.timestamp() * 1_000_000) + DAY_US - 1
    return None
