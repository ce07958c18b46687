"""Per-table maintenance options (retention, compaction overrides) and the compaction policy.

Pure: options are parsed from JSON and merged with the settings' defaults; storing them is the
catalog's job (lakehouse/catalog/table_options.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lakehouse.errors import InvalidInput

MIB = 1024 * 1024
DAY_S = 86_400.0


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


@dataclass(frozen=True, slots=True)
class TableOptions:
    retention_s: float | None = None  # rows older than this are hidden, then dropped
    target_file_bytes: int | None = None
    min_files: int | None = None

    def policy(self, default: CompactionPolicy) -> CompactionPolicy:
        """The settings' policy with this table's overrides."""
        changes: dict[str, Any] = {}
        if self.target_file_bytes is not None:
            changes["target_file_bytes"] = self.target_file_bytes
        if self.min_files is not None:
            changes["min_files"] = self.min_files
        return replace(default, **changes) if changes else default

    def retention_cutoff_us(self, now: float) -> int | None:
        """Rows with `_timestamp` below this (microseconds since the epoch) are expired."""
        if self.retention_s is None:
            return None
        return int((now - self.retention_s) * 1_000_000)

    def to_json(self) -> dict[str, Any]:
        return {"retention_days": None if self.retention_s is None
                else self.retention_s / DAY_S,
                "target_file_mb": None if self.target_file_bytes is None
                else self.target_file_bytes / MIB,
                "min_files": self.min_files}


NO_OPTIONS = TableOptions()


def parse_options(spec: Mapping[str, Any]) -> TableOptions:
    """Options from their JSON form (`retention_days`, `target_file_mb`, `min_files`; null
    clears one); InvalidInput naming what is wrong."""
    unknown = sorted(set(spec) - {"retention_days", "target_file_mb", "min_files"})
    if unknown:
        raise InvalidInput("unknown table options; known: retention_days, target_file_mb, "
                           "min_files", code="invalid_options", details={"unknown": unknown})
    retention = _number(spec.get("retention_days"), "retention_days", low=1 / 1440,
                        high=365_000)
    target = _number(spec.get("target_file_mb"), "target_file_mb", low=1, high=4096)
    min_files = spec.get("min_files")
    if min_files is not None and (isinstance(min_files, bool) or not isinstance(min_files, int)
                                  or not 2 <= min_files <= 10_000):
        raise InvalidInput("min_files is a whole number from 2 to 10000",
                           code="invalid_options", details={"min_files": str(min_files)[:40]})
    return TableOptions(None if retention is None else retention * DAY_S,
                        None if target is None else int(target * MIB), min_files)


def _number(value: Any, name: str, *, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"{name} is a number from {low:g} to {high:g}",
                           code="invalid_options", details={name: str(value)[:40]})
    return float(value)
