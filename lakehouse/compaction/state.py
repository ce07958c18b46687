"""What the planners read: a table's live files, grouped by partition, as plain values."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lakehouse.catalog.lake import DataFile
from lakehouse.catalog.options import NO_OPTIONS, TableOptions


@dataclass(frozen=True, slots=True)
class PartitionFiles:
    partition: str
    files: tuple[DataFile, ...]
    last_added_at: float  # epoch seconds of the snapshot that added its newest file

    @property
    def bytes(self) -> int:
        return sum(f.byte_size for f in self.files)


@dataclass(frozen=True, slots=True)
class TableFiles:
    tenant: str
    table: str
    partitions: tuple[PartitionFiles, ...]
    sort_key: tuple[str, ...] = ()
    options: TableOptions = NO_OPTIONS


def group_by_partition(files: Iterable[DataFile],
                       added_at: dict[int, float]) -> tuple[PartitionFiles, ...]:
    """Files into partitions, ordered by name; `added_at` maps a snapshot id to its time."""
    found: dict[str, list[DataFile]] = {}
    for file in files:
        found.setdefault(file.partition, []).append(file)
    return tuple(
        PartitionFiles(name, tuple(members),
                       max(added_at.get(f.snapshot_added or 0, 0.0) for f in members))
        for name, members in sorted(found.items()))
