"""Skip files that cannot hold a matching row: by their partition value, then by statistics.

A file's partition (`day=YYYY-MM-DD` of `_timestamp`, or `column=value` of a declared column) is
a range its rows lie in; its min/max statistics are a tighter one. A file is skipped only when
one of them proves no row satisfies the scan's conditions, and never when it holds upserts.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace

from lakehouse.catalog.lake import ColumnStats, DataFile
from lakehouse.optimizer.pruning import (
    Comparison,
    comparisons_of,
    has_upserts,
    may_match,
    stats_may_match,
)
from lakehouse.optimizer.state import OptimizerState

DAY_US = 86_400_000_000
NULL_PARTITION = "__null__"  # the partition of the rows whose partition column is NULL
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+(e-?[0-9]+)?")  # how str() writes a finite float
_CUT_AT = 100


def apply(state: OptimizerState) -> OptimizerState:
    for relation in state.relations:
        if relation.predicate is None:
            continue
        comparisons = comparisons_of(relation.predicate)
        if not comparisons:
            continue
        by_partition = by_stats = 0
        kept = []
        for file in relation.kept:
            if has_upserts(file):
                # Its upserts replace versions in other files: without it, the version an
                # upsert replaced would show wherever the new one fails the conditions.
                kept.append(file)
            elif not partition_may_match(file, comparisons):
                by_partition += 1
            elif not may_match(file, comparisons):
                by_stats += 1
            else:
                kept.append(file)
        state = state.with_relation(replace(relation, files=tuple(kept),
                                            pruned_by_partition=by_partition,
                                            pruned_by_stats=by_stats))
        state = state.decide("prune_files", f"{relation.table}: {len(kept)} of "
                             f"{len(relation.kept)} files kept ({by_partition} pruned by "
                             f"partition, {by_stats} by statistics)")
    return state


def partition_may_match(file: DataFile, comparisons: tuple[Comparison, ...]) -> bool:
    stats = partition_stats(file.partition, file.row_count)
    if stats is None:
        return True
    return all(stats_may_match(stats, c, file.row_count) for c in comparisons
               if c.column == stats.column)


def partition_stats(partition: str, rows: int) -> ColumnStats | None:
    """The range a partition's name guarantees, as statistics of its column."""
    column, sep, value = partition.partition("=")
    if not sep:
        return None
    if column == "day":
        try:
            day = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        except ValueError:
            return None
        start = int(day.timestamp() * 1_000_000)
        return ColumnStats("_timestamp", start, start + DAY_US - 1, 0, None)
    if value == NULL_PARTITION:
        return ColumnStats(column, None, None, rows, None)  # every row's value is NULL
    # A declared column's partition name is its value made safe for a path (lakehouse/ingest/
    # flush_rows.py): other characters than letters, digits, "-" and "." become "_", and a
    # long value is cut. A name with "_" or of the cut length may not be the value itself.
    if "_" in value or len(value) >= _CUT_AT:
        return None
    typed: int | float | str = value
    if _INTEGER.fullmatch(value):
        typed = int(value)
    elif _DECIMAL.fullmatch(value):
        typed = float(value)
    return ColumnStats(column, typed, typed, 0, 1)
