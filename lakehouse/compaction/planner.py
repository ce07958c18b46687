"""Which small files to merge: a pure plan per tenant, table and partition.

A partition's small files (under a share of the target size) are packed, in sequence order,
into groups of at most the target size; a group is worth a rewrite when it has at least
`min_files` files. The table's newest partition is skipped while it still receives flushes,
unless it has piled up more than `max_files_active` files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lakehouse.catalog.lake import DataFile, file_order
from lakehouse.compaction.policy import CompactionPolicy, table_policy
from lakehouse.compaction.state import PartitionFiles, TableFiles


@dataclass(frozen=True, slots=True)
class CompactionGroup:
    tenant: str
    table: str
    partition: str
    inputs: tuple[DataFile, ...]
    sort_key: tuple[str, ...]
    target_file_bytes: int

    @property
    def bytes(self) -> int:
        return sum(f.byte_size for f in self.inputs)

    @property
    def rows(self) -> int:
        return sum(f.row_count for f in self.inputs)

    @property
    def file_ids(self) -> tuple[int, ...]:
        return tuple(f.file_id for f in self.inputs if f.file_id is not None)

    def describe(self) -> str:
        where = f"{self.tenant}/{self.table}/{self.partition}".rstrip("/")
        return f"{where}: {len(self.inputs)} files"

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "table": self.table, "partition": self.partition,
                "files": len(self.inputs), "bytes": self.bytes, "rows": self.rows}


@dataclass(frozen=True, slots=True)
class Skipped:
    tenant: str
    table: str
    partition: str
    files: int
    reason: str  # "active", "too_few_small_files"

    def to_json(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "table": self.table, "partition": self.partition,
                "files": self.files, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class CompactionPlan:
    groups: tuple[CompactionGroup, ...]
    skipped: tuple[Skipped, ...]

    @property
    def files(self) -> int:
        return sum(len(g.inputs) for g in self.groups)

    @property
    def bytes(self) -> int:
        return sum(g.bytes for g in self.groups)

    def to_json(self) -> dict[str, Any]:
        return {"groups": [g.to_json() for g in self.groups], "files": self.files,
                "bytes": self.bytes, "skipped": [s.to_json() for s in self.skipped]}


def plan_compaction(tables: Iterable[TableFiles], default: CompactionPolicy,
                    now: float) -> CompactionPlan:
    groups: list[CompactionGroup] = []
    skipped: list[Skipped] = []
    for table in tables:
        policy = table_policy(table.options, default)
        newest = _newest(table.partitions)
        for part in table.partitions:
            where = (table.tenant, table.table, part.partition)
            if (part is newest and now - part.last_added_at < policy.active_window_s
                    and len(part.files) <= policy.max_files_active):
                skipped.append(Skipped(*where, len(part.files), "active"))
                continue
            found = [CompactionGroup(*where, members, table.sort_key, policy.target_file_bytes)
                     for members in pack(part.files, policy)]
            if found:
                groups.extend(found)
            elif len(part.files) > 1:
                skipped.append(Skipped(*where, len(part.files), "too_few_small_files"))
    return CompactionPlan(tuple(groups), tuple(skipped))


def pack(files: Sequence[DataFile], policy: CompactionPolicy) -> list[tuple[DataFile, ...]]:
    """Small files in sequence order, cut into runs of at most the target size; runs shorter
    than `min_files` are left as they are."""
    small = sorted((f for f in files if f.byte_size < policy.small_file_bytes), key=file_order)
    runs: list[tuple[DataFile, ...]] = []
    # Bulk-loaded files (no sequence range) and flushed ones are merged apart, so an output
    # is one or the other and the record reader still knows which files hold WAL records.
    for loaded in (True, False):
        current: list[DataFile] = []
        size = 0
        for file in (f for f in small if (f.seq_min is None) is loaded):
            if current and size + file.byte_size > policy.target_file_bytes:
                runs.append(tuple(current))
                current, size = [], 0
            current.append(file)
            size += file.byte_size
        runs.append(tuple(current))
    return [run for run in runs if len(run) >= policy.min_files]


def backlog(tables: Iterable[TableFiles], default: CompactionPolicy) -> dict[str, dict[str, int]]:
    """Per tenant: small files and their bytes, and how many of them a run would merge now
    (ignoring the newest partition's grace)."""
    out: dict[str, dict[str, int]] = {}
    for table in tables:
        policy = table_policy(table.options, default)
        mine = out.setdefault(table.tenant, {"small_files": 0, "small_bytes": 0,
                                             "mergeable_files": 0, "mergeable_bytes": 0})
        for part in table.partitions:
            small = [f for f in part.files if f.byte_size < policy.small_file_bytes]
            mine["small_files"] += len(small)
            mine["small_bytes"] += sum(f.byte_size for f in small)
            for run in pack(part.files, policy):
                mine["mergeable_files"] += len(run)
                mine["mergeable_bytes"] += sum(f.byte_size for f in run)
    return out


def _newest(partitions: Sequence[PartitionFiles]) -> PartitionFiles | None:
    """The partition that received a file last (the one flushes still write to)."""
    return max(partitions, key=lambda p: (p.last_added_at, p.partition), default=None)
