"""A table's options: its retention period, its compaction overrides and its serving store.

Pure: options are parsed from their JSON form here, stored by lakehouse/catalog/table_options.py,
and applied by compaction (lakehouse/compaction/policy.py) and by queries (retention hides rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lakehouse.errors import InvalidInput

MIB = 1024 * 1024
DAY_S = 86_400.0
# The ranges each option takes (the API's schema states the same numbers).
RETENTION_DAYS = (1 / 1440, 365_000.0)  # a minute to a thousand years
TARGET_FILE_MB = (1.0, 4096.0)
MIN_FILES = (2, 10_000)
SERVING_STORES = ("clickhouse",)  # where a table may be mirrored for serving


@dataclass(frozen=True, slots=True)
class TableOptions:
    retention_s: float | None = None  # rows older than this are hidden, then dropped
    target_file_bytes: int | None = None
    min_files: int | None = None
    serving: str | None = None  # "clickhouse": mirrored there (lakehouse/serving/)

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
                "min_files": self.min_files, "serving": self.serving}


NO_OPTIONS = TableOptions()


def parse_options(spec: Mapping[str, Any]) -> TableOptions:
    """Options from their JSON form (`retention_days`, `target_file_mb`, `min_files`,
    `serving`; null clears one); InvalidInput naming what is wrong."""
    unknown = sorted(set(spec) - {"retention_days", "target_file_mb", "min_files", "serving"})
    if unknown:
        raise InvalidInput("unknown table options; known: retention_days, target_file_mb, "
                           "min_files, serving", code="invalid_options",
                           details={"unknown": unknown})
    serving = spec.get("serving")
    if serving is not None and serving not in SERVING_STORES:
        raise InvalidInput(f"serving is one of {', '.join(SERVING_STORES)}, or null",
                           code="invalid_options", details={"serving": str(serving)[:40]})
    retention = _number(spec.get("retention_days"), "retention_days", *RETENTION_DAYS)
    target = _number(spec.get("target_file_mb"), "target_file_mb", *TARGET_FILE_MB)
    min_files = spec.get("min_files")
    if min_files is not None and (isinstance(min_files, bool) or not isinstance(min_files, int)
                                  or not MIN_FILES[0] <= min_files <= MIN_FILES[1]):
        raise InvalidInput(f"min_files is a whole number from {MIN_FILES[0]} to {MIN_FILES[1]}",
                           code="invalid_options", details={"min_files": str(min_files)[:40]})
    return TableOptions(None if retention is None else retention * DAY_S,
                        None if target is None else int(target * MIB), min_files, serving)


def _number(value: Any, name: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"{name} is a number from {low:g} to {high:g}",
                           code="invalid_options", details={name: str(value)[:40]})
    return float(value)
