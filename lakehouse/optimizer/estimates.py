"""Row estimates from file statistics (pure): how many rows a scan's conditions keep."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lakehouse.catalog.lake import ColumnStats, DataFile, StatValue
from lakehouse.optimizer.pruning import Comparison

UNKNOWN_SELECTIVITY = 0.33  # a condition the statistics say nothing about


def merged_stats(files: Sequence[DataFile]) -> dict[str, ColumnStats]:
    """One set of statistics for many files: the widest range, nulls summed, and the largest
    distinct count (a lower bound of the union's)."""
    out: dict[str, ColumnStats] = {}
    for file in files:
        for s in file.stats:
            seen = out.get(s.column)
            if seen is None:
                out[s.column] = s
                continue
            out[s.column] = ColumnStats(
                s.column, _pick(seen.min, s.min, min), _pick(seen.max, s.max, max),
                seen.null_count + s.null_count,
                max(seen.distinct_estimate or 0, s.distinct_estimate or 0) or None)
    return out


def _pick(a: StatValue, b: StatValue, choose: Callable[..., Any]) -> StatValue:
    if a is None:
        return b
    if b is None:
        return a
    try:
        return choose(a, b)  # type: ignore[no-any-return]
    except TypeError:  # values of two types: keep the first
        return a


def selectivity(comparison: Comparison, stats: ColumnStats | None,  # noqa: PLR0911
                rows: int) -> float:
    if stats is None or rows == 0:
        return UNKNOWN_SELECTIVITY
    if comparison.op == "is_null":
        return stats.null_count / rows
    if comparison.op == "not_null":
        return 1 - stats.null_count / rows
    distinct = max(1, stats.distinct_estimate or 1)
    if comparison.op == "=":
        return 1 / distinct
    if comparison.op == "in":
        return min(1.0, len(comparison.values) / distinct)
    low, high = stats.min, stats.max
    if not (isinstance(low, int | float) and isinstance(high, int | float)) or high <= low:
        return UNKNOWN_SELECTIVITY
    width = float(high) - float(low)
    values = [v for v in comparison.values if isinstance(v, int | float)]
    if not values:
        return UNKNOWN_SELECTIVITY
    if comparison.op in ("<", "<="):
        return _clamp((values[0] - float(low)) / width)
    if comparison.op in (">", ">="):
        return _clamp((float(high) - values[0]) / width)
    if comparison.op == "between" and len(values) == 2:
        return _clamp((min(values[1], float(high)) - max(values[0], float(low))) / width)
    return UNKNOWN_SELECTIVITY


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))
