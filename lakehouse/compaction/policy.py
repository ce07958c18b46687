"""The compaction policy: the settings' defaults, and a table's overrides applied to them.

Pure. The options themselves (retention, overrides) are the catalog's: lakehouse/catalog/options.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from lakehouse.catalog.options import MIB, TableOptions


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    target_file_bytes: int = 128 * MIB  # outputs are cut near this size
    min_files: int = 4  # fewer small files than this in a partition are not worth a rewrite
    # The newest partition still receives flushes: it is left alone, unless it holds more files
    # than this (then scans suffer more than a rewrite that may soon be repeated costs).
    max_files_active: int = 64
    active_window_s: float = 600.0  # a partition that got a file this recently is receiving
    small_fraction: float = 0.75  # a file under this share of the target is "small"

    def __post_init__(self) -> None:
        if self.target_file_bytes < 1 or self.min_files < 2 or self.max_files_active < 1:
            raise ValueError(f"invalid compaction policy {self}")
        if not 0 < self.small_fraction <= 1 or self.active_window_s < 0:
            raise ValueError(f"invalid compaction policy {self}")

    @property
    def small_file_bytes(self) -> int:
        return int(self.target_file_bytes * self.small_fraction)


def table_policy(options: TableOptions, default: CompactionPolicy) -> CompactionPolicy:
    """The settings' policy with the table's overrides."""
    changes: dict[str, Any] = {}
    if options.target_file_bytes is not None:
        changes["target_file_bytes"] = options.target_file_bytes
    if options.min_files is not None:
        changes["min_files"] = options.min_files
    return replace(default, **changes) if changes else default
