"""One part of a load: source rows become data files (written, durable, not yet committed).

A part runs anywhere: in the control-plane process or on a Dask worker, which receives the
`LoadSpec` and the `LoadPart` (URIs, paths, names and types; no live handle) and returns the
`DataFile`s it wrote. Files are named from the load id, the part and the chunk, so a retried part
overwrites its own files instead of leaving a second copy; files of a load that fails before its
commit are referenced by no snapshot and are left for the cleanup of unreferenced files.

Rows get the flush's system columns, so every file of a table has one layout: `data_id` (a
source column, or "{file stem}:{row number}", counted from 1), `_seq` = 0 (no WAL sequence: 0 is
never one, and the catalog marks the files as bulk loads by seq_min/seq_max None), `_timestamp`
(a source column, or the load's start) and `_upsert` = false.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.catalog.lake import ColumnStats, DataFile
from lakehouse.errors import InvalidInput
from lakehouse.ingest.flush_rows import SYSTEM_FIELDS, day_of, partitions
from lakehouse.load.columns import text_into_exact
from lakehouse.load.reading import read_chunks
from lakehouse.load.sources import SourceFile
from lakehouse.schema.coerce import coerce_value
from lakehouse.schema.conform import conform as conform_array
from lakehouse.schema.declared import DeclaredTable
from lakehouse.schema.types import ROOT, from_arrow
from lakehouse.schema.value_checks import failing_records
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.parquet_files import column_stats, write_file

DAY_US = 86_400_000_000
CHUNK_ROWS = 1024 * 1024  # rows converted and written at once: bounds a part's memory
UTC_MICROS = pa.timestamp("us", tz="UTC")
_SHOWN_FAILURES = 5
_SAMPLE_ROWS = 65_536


@dataclass(frozen=True)
class LoadSpec:
    """What every part of one load needs; small, and sent to the workers as it is."""

    tenant: str
    table: str
    load_id: str
    storage_uri: str
    columns: pa.Schema  # the table's user columns after this load, exact types, in order
    partition_by: str | None
    data_id_column: str | None
    timestamp_column: str | None
    loaded_at_us: int  # the `_timestamp` of rows without a timestamp column
    declared: DeclaredTable | None = None  # for its required columns and value checks
    chunk_rows: int = CHUNK_ROWS


@dataclass(frozen=True)
class LoadPart:
    index: int
    file: SourceFile
    row_groups: tuple[int, ...] | None  # Parquet: the row groups of this part; None: all
    first_row: int  # rows of the file before this part
    id_prefix: str  # generated data_ids are "{id_prefix}:{row number}"
    # Text formats: the types to parse each column in (see reading.read_chunks)
    parse_types: tuple[tuple[str, pa.DataType], ...] = ()


@dataclass(frozen=True)
class PartResult:
    index: int
    rows: int
    files: tuple[DataFile, ...]


def load_file_path(spec: LoadSpec, partition: str, part: int, chunk: int) -> str:
    """Named from the load, the part and the chunk: a retried part writes the same names."""
    folder = f"{spec.tenant}/{spec.table}/{partition}" if partition else (
        f"{spec.tenant}/{spec.table}")
    return f"{folder}/load-{spec.load_id}-{part:05d}-{chunk:04d}.parquet"


def load_part(spec: LoadSpec, part: LoadPart) -> PartResult:
    """Read, convert, check, partition and write one part; raises InvalidInput on bad data."""
    root = StorageRoot.parse(spec.storage_uri)
    row = part.first_row
    files: list[DataFile] = []
    for chunk_index, chunk in enumerate(read_chunks(part.file, part.row_groups,
                                                    dict(part.parse_types), spec.chunk_rows)):
        rows = file_rows(spec, part, chunk, row)
        for name, rows_of_partition in split(rows, spec.partition_by):
            path = load_file_path(spec, name, part.index, chunk_index)
            size = write_file(root, path, rows_of_partition)
            files.append(DataFile(path, name, rows_of_partition.num_rows, size, None, None,
                                  stats=load_stats(rows_of_partition)))
        row += chunk.num_rows
    return PartResult(part.index, row - part.first_row, tuple(files))


def file_rows(spec: LoadSpec, part: LoadPart, chunk: pa.Table, first_row: int) -> pa.Table:
    """A chunk of source rows as the rows of a data file: system columns, then the table's
    user columns (missing ones as nulls) in its types."""
    count = chunk.num_rows
    where = part.file.name
    columns = [_column(chunk, field, where) for field in spec.columns]
    if spec.data_id_column is not None:
        data_ids = _required(chunk, spec.data_id_column, where, first_row).cast(pa.string())
    else:
        numbers = pa.array(np.arange(first_row + 1, first_row + count + 1, dtype=np.int64))
        data_ids = pc.binary_join_element_wise(f"{part.id_prefix}:",
                                               numbers.cast(pa.string()), "")
    if spec.timestamp_column is not None:
        timestamps = _timestamps(_required(chunk, spec.timestamp_column, where, first_row),
                                 spec.timestamp_column, where)
    else:
        timestamps = pa.array(np.full(count, spec.loaded_at_us, dtype=np.int64)).cast(
            UTC_MICROS)
    system = [data_ids, pa.array(np.zeros(count, dtype=np.int64)), timestamps,
              pa.array(np.zeros(count, dtype=np.bool_))]
    schema = pa.schema([*SYSTEM_FIELDS, *spec.columns])
    rows = pa.Table.from_arrays([*system, *columns], schema=schema)
    if spec.declared is not None:
        _check_declared(spec.declared, rows, where, first_row)
    return rows


def _column(chunk: pa.Table, field: pa.Field, where: str) -> pa.ChunkedArray:
    index = chunk.schema.get_field_index(field.name)
    if index < 0:
        return pa.chunked_array([pa.nulls(chunk.num_rows, field.type)], type=field.type)
    try:
        return conform(chunk.column(index), field.type, field.name)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, InvalidInput) as exc:
        problem = (exc.message if isinstance(exc, InvalidInput) else str(exc))[:300]
        raise InvalidInput(f"column {field.name} of {where} does not fit {field.type}: "
                           f"{problem}", code="unparsable_source",
                           details={"column": field.name, "file": where,
                                    "type": str(field.type), "problem": problem}) from exc


def conform(column: pa.ChunkedArray, target: pa.DataType, name: str = "column",
            ) -> pa.ChunkedArray:
    """`column` in the target type: casts (exact ones: an integer that does not fit fails),
    nested structs matched by field name, nanosecond timestamps truncated to microseconds."""
    if column.type == target:
        return column
    if pa.types.is_struct(target) or pa.types.is_list(target):
        return pa.chunked_array([conform_array(c, target) for c in column.chunks],
                                type=target)
    if text_into_exact(column.type, target):
        return _text_into_exact(column, target, name)
    return column.cast(target, safe=not pa.types.is_timestamp(target))


def _text_into_exact(column: pa.ChunkedArray, target: pa.DataType, name: str,
                     ) -> pa.ChunkedArray:
    """Text into a decimal, timestamp, date or time column, by the rules records follow: Arrow's
    cast where it reads the text (it takes the common ISO forms and exact decimals, and refuses
    what it would have to round), else value by value with `coerce_value`, which converts
    the rest (an offset into a naive timestamp) or refuses naming the value."""
    try:
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        kind = from_arrow(target)
        path = f"{ROOT}.{name}"
        values = [coerce_value(v, kind, path) for v in column.to_pylist()]
        return pa.chunked_array([pa.array(values, target)], target)


def _required(chunk: pa.Table, name: str, where: str, first_row: int) -> pa.ChunkedArray:
    column = chunk.column(name) if name in chunk.column_names else pa.chunked_array(
        [pa.nulls(chunk.num_rows)])
    if column.null_count:
        row = first_row + pc.index(column.is_null(), True).as_py() + 1
        raise InvalidInput(f"column {name} of {where} has no value in row {row}",
                           code="missing_value", details={"column": name, "file": where,
                                                          "row": row})
    return column


def _timestamps(column: pa.ChunkedArray, name: str, where: str) -> pa.ChunkedArray:
    """A timestamp column as UTC microseconds: naive values and dates are taken as UTC."""
    kind = column.type
    try:
        if pa.types.is_string(kind) or pa.types.is_large_string(kind) or (
                pa.types.is_string_view(kind)):
            try:
                column = column.cast(pa.timestamp("us"))
            except pa.ArrowInvalid:  # ISO text with a zone offset
                column = column.cast(UTC_MICROS)
            kind = column.type
        if pa.types.is_date(kind):
            column = column.cast(pa.timestamp("us"))
        elif not pa.types.is_timestamp(kind):
            raise InvalidInput(f"the timestamp column {name} has type {kind}; it must hold "
                               "timestamps, dates or ISO 8601 text", code="invalid_option",
                               details={"column": name, "type": str(kind)})
        return column.cast(pa.timestamp("us", tz=column.type.tz), safe=False).cast(UTC_MICROS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInput(f"the timestamp column {name} of {where} is not all timestamps: "
                           f"{str(exc)[:200]}", code="unparsable_source",
                           details={"column": name, "file": where}) from exc


def _check_declared(declared: DeclaredTable, rows: pa.Table, where: str, first_row: int,
                    ) -> None:
    for name in declared.required:
        if rows.column(name).null_count:
            _required(rows, name, where, first_row)
    if not declared.checks:
        return
    columns = sorted({c.column for c in declared.checks})
    failures = failing_records(declared, rows.select(columns).to_pylist())
    if failures:
        shown = {f"row {first_row + i + 1}": reason
                 for i, reason in sorted(failures.items())[:_SHOWN_FAILURES]}
        raise InvalidInput(f"{len(failures)} rows of {where} fail the table's checks",
                           code="check_failed", details={"file": where, "failures": shown})


def split(rows: pa.Table, partition_by: str | None) -> list[tuple[str, pa.Table]]:
    """Partitions as the flush makes them: by day of `_timestamp`, or by the declared column.
    A chunk within one day (every chunk stamped with the load time) is not copied."""
    if rows.num_rows == 0:
        return []
    if partition_by is None:
        bounds = pc.min_max(rows.column("_timestamp").cast(pa.int64()))
        low, high = int(bounds["min"].as_py()), int(bounds["max"].as_py())
        if low // DAY_US == high // DAY_US:
            return [(f"day={day_of(low)}", rows)]
    return [(p.name, p.rows) for p in partitions(rows, partition_by)]


def load_stats(rows: pa.Table) -> tuple[ColumnStats, ...]:
    """The storage's column statistics, plus min/max of decimals (as floats, moved outward
    where rounding would move them in, so a bound never prunes a matching row) and of dates
    (as microseconds since the epoch at midnight UTC, the form timestamp statistics take)."""
    stats = []
    for found in column_stats(rows):
        column = rows.column(found.column)
        kind = column.type
        if found.min is not None or found.null_count == len(column) or not (
                pa.types.is_decimal(kind) or pa.types.is_date(kind)):
            stats.append(found)
            continue
        if pa.types.is_decimal(kind):
            bounds = pc.min_max(column)
            low, high = _float_bounds(bounds["min"].as_py(), bounds["max"].as_py())
            stats.append(ColumnStats(found.column, low, high, found.null_count,
                                     _distinct(column)))
        else:
            days = column.cast(pa.date32()).cast(pa.int32())
            bounds = pc.min_max(days)
            stats.append(ColumnStats(found.column, int(bounds["min"].as_py()) * DAY_US,
                                     int(bounds["max"].as_py()) * DAY_US, found.null_count,
                                     _distinct(days)))
    return tuple(stats)


def _float_bounds(low: Decimal, high: Decimal) -> tuple[float, float]:
    """Float bounds that still enclose [low, high]: a bound the float rounds inwards moves
    out by one step."""
    low_f, high_f = float(low), float(high)
    if Decimal(low_f) > low:
        low_f = math.nextafter(low_f, -math.inf)
    if Decimal(high_f) < high:
        high_f = math.nextafter(high_f, math.inf)
    return low_f, high_f


def _distinct(column: pa.ChunkedArray) -> int:
    """Exact for small files; beyond, from an evenly spread sample (an estimate is all the
    optimizer asks for, and an exact count of millions of decimals costs more than the write)."""
    rows = len(column)
    if rows <= _SAMPLE_ROWS:
        return int(pc.count_distinct(column).as_py())
    sample = pc.take(column, pa.array(np.arange(0, rows, rows // _SAMPLE_ROWS)))
    seen = int(pc.count_distinct(sample).as_py())
    return min(rows, round(seen * rows / len(sample))) if seen > 0.9 * len(sample) else seen


def source_types(columns: pa.Schema) -> Mapping[str, str]:
    """The exact types, as text, for a load snapshot's summary."""
    return {field.name: str(field.type) for field in columns}
