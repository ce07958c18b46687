"""Which string columns a scan reads as dictionaries (pure: from the catalog's statistics).

Arrow builds a plain string column value by value, but a Parquet column of few distinct
values is stored as a dictionary and can be read as one: codes plus a short list of strings,
several times cheaper to read and to hand to DuckDB, which sees VARCHAR either way. A column
qualifies when every file kept says it is a string column of few distinct values (a column
with many would be re-encoded value by value, which costs more than it saves).
"""

from __future__ import annotations

from lakehouse.catalog.lake import DataFile

MAX_DISTINCT = 10_000  # per file
MAX_DISTINCT_SHARE = 0.1  # of a file's rows: a value repeats ten times on average, or more
SYSTEM_COLUMNS = frozenset({"data_id", "_seq", "_upsert", "_timestamp"})


def dictionary_columns(files: tuple[DataFile, ...],
                       columns: tuple[str, ...] | None) -> tuple[str, ...]:
    if not files:
        return ()
    agreed = set.intersection(*({s.column for s in f.stats if s.column not in SYSTEM_COLUMNS
                                 and _fits(s.min, s.distinct_estimate, f.row_count)}
                                for f in files))
    order = columns if columns is not None else tuple(s.column for s in files[0].stats)
    return tuple(c for c in order if c in agreed)


def _fits(low: object, distinct: int | None, rows: int) -> bool:
    return (isinstance(low, str) and distinct is not None
            and distinct <= min(MAX_DISTINCT, rows * MAX_DISTINCT_SHARE))
