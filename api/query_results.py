"""A query's rows in the format the caller asked for: JSON, CSV, Arrow IPC or Parquet.

Answers are positional, as in Trino's protocol: every column the query selects, in its order,
named as the query names it — two columns may share a name (`SELECT a, -a AS a`, or `*` over a
self-join). JSON keeps the names as written and gives rows as arrays; the formats whose readers
key columns by name (CSV headers, Arrow and Parquet fields) get the repeats disambiguated as
DuckDB does in a subquery (`a`, `a_1`), never dropped. JSON decimals are strings (exact; whole
ones below 2^53 are numbers), dates and times ISO 8601, binary base64. CSV cells are text: a
list, struct or map is its JSON text, binary base64. Infinity, years past 9999 and intervals:
api/result_values.py.

Every format but JSON streams: the answer is encoded a batch of rows at a time as it is sent
(JSON Lines a row object per line, CSV with its header once, Arrow IPC as a stream, Parquet a
row group per batch), so no encoded copy of a large result is ever held whole.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import itertools
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi.responses import Response, StreamingResponse

from api.result_values import (
    INT32_MAX,
    INT64_MAX,
    INTERVAL_STRUCT,
    PER_SECOND,
    has,
    is_temporal,
    iso_duration,
    json_values,
    rebuilt,
    stored_type,
    temporal_text,
    walked,
)
from lakehouse.errors import InvalidInput

FORMATS = ("json", "jsonl", "csv", "arrow", "parquet")
MEDIA = {"jsonl": "application/x-ndjson", "csv": "text/csv",
         "arrow": "application/vnd.apache.arrow.stream",
         "parquet": "application/vnd.apache.parquet"}
STREAM_BATCH_ROWS = 16_384  # rows encoded at a time: a few MiB at most for wide rows


def check_format(name: str) -> str:
    if name not in FORMATS:
        raise InvalidInput(f"format is one of {', '.join(FORMATS)}", code="invalid_format",
                           details={"format": name[:20]})
    return name


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        # Whole numbers (DuckDB sums integers as 128-bit decimals) stay numbers while JSON
        # readers can hold them; others are exact strings.
        if value.as_tuple().exponent == 0 and abs(value) < 2**53:
            return int(value)
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, pa.MonthDayNano):
        return iso_duration(value)
    if isinstance(value, dt.date):  # a subclass orjson leaves to us (pandas' Timestamp)
        return value.isoformat()
    raise TypeError(type(value).__name__)


def columns(table: pa.Table) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]


def rows_json(table: pa.Table) -> list[list[Any]]:
    """The rows as arrays, by position (by name, a repeated name would keep one column)."""
    if table.num_columns == 0:
        return [[] for _ in range(table.num_rows)]
    return [list(row) for row in zip(*(json_values(c) for c in table.columns), strict=True)]


def unique_names(names: list[str]) -> list[str]:
    """`names` with each repeat renamed `name_1`, `name_2`, … (a suffix no column has)."""
    taken = set(names)
    seen: set[str] = set()
    out = []
    for name in names:
        chosen = name
        n = 0
        while chosen in seen or (n and chosen in taken):
            n += 1
            chosen = f"{name}_{n}"
        taken.add(chosen)
        seen.add(chosen)
        out.append(chosen)
    return out


def json_bytes(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, default=_default,
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def binary_response(table: pa.Table, fmt: str, headers: dict[str, str]) -> Response:
    """The rows in `fmt` (any format but json), streamed as they are encoded."""
    names = unique_names(table.column_names)
    if names != table.column_names:
        table = table.rename_columns(names)
    if fmt == "parquet":
        _parquet_check(table)  # refused before the first byte is sent, not half-way
    encode = {"jsonl": _jsonl_chunks, "csv": _csv_chunks, "arrow": _arrow_chunks,
              "parquet": _parquet_chunks}[fmt]
    chunks = encode(table)
    # The first batch is encoded before the answer starts, so a value that cannot be encoded
    # there is an error answer rather than a cut-off 200 (X-Row-Count tells a short one).
    first = next(chunks, b"")
    # The rest is a plain iterator: Starlette runs it on a worker thread, off the event loop.
    return StreamingResponse(itertools.chain([first], chunks), media_type=MEDIA[fmt],
                             headers=headers)


def _batches(table: pa.Table) -> Iterator[pa.Table]:
    for batch in table.to_batches(max_chunksize=STREAM_BATCH_ROWS):
        yield pa.Table.from_batches([batch], table.schema)


def _drained(sink: io.BytesIO) -> bytes:
    out = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return out


def _jsonl_chunks(table: pa.Table) -> Iterator[bytes]:
    """A JSON object per row, keyed by the (disambiguated) column names."""
    names = table.column_names
    for part in _batches(table):
        rows = rows_json(part)
        yield b"".join(json_bytes(dict(zip(names, row, strict=True))) + b"\n" for row in rows)


def _csv_chunks(table: pa.Table) -> Iterator[bytes]:
    sink = io.BytesIO()
    first = True
    for part in _batches(table):
        pacsv.write_csv(_for_csv(part), sink, pacsv.WriteOptions(include_header=first))
        first = False
        yield _drained(sink)
    if first:  # no rows: the header alone
        pacsv.write_csv(_for_csv(table), sink)
        yield _drained(sink)


def _arrow_chunks(table: pa.Table) -> Iterator[bytes]:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=STREAM_BATCH_ROWS):
            writer.write_batch(batch)
            yield _drained(sink)
    yield _drained(sink)  # the end-of-stream marker


def _parquet_chunks(table: pa.Table) -> Iterator[bytes]:
    sink = io.BytesIO()
    writer: pq.ParquetWriter | None = None
    for part in _batches(table):
        converted = _for_parquet(part)
        if writer is None:
            writer = pq.ParquetWriter(sink, converted.schema, compression="zstd")
        writer.write_table(converted)
        yield _drained(sink)
    if writer is None:  # no rows: a file with the schema alone
        writer = pq.ParquetWriter(sink, _for_parquet(table).schema, compression="zstd")
    writer.close()
    yield _drained(sink)


def _for_csv(table: pa.Table) -> pa.Table:
    """Every column as pyarrow's CSV writer can write it (it has no text for nested values,
    intervals, bytes that are not UTF-8, infinity or the most distant years)."""
    return pa.table([_csv_column(c) for c in table.columns], names=table.column_names)


def _csv_column(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    kind = column.type
    if pa.types.is_nested(kind):
        return pa.array([None if v is None else json_bytes(v).decode()
                         for v in json_values(column)], pa.string())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or (
            pa.types.is_fixed_size_binary(kind)):
        return pa.array([None if v is None else base64.b64encode(v).decode()
                         for v in column.to_pylist()], pa.string())
    if pa.types.is_interval(kind):
        return pa.array([None if v is None else iso_duration(v) for v in column.to_pylist()],
                        pa.string())
    if is_temporal(kind):
        return _csv_temporal(column)
    return column


def _csv_temporal(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """pyarrow's text for years 1–9999; ours, in its form, for infinity and years beyond."""
    kind = column.type
    raw = column.cast(stored_type(kind))
    low, high = _ordinary(kind)
    limit = INT32_MAX if pa.types.is_date32(kind) else INT64_MAX
    special = pc.or_(pc.or_(pc.less(raw, low), pc.greater(raw, high)),
                     pc.equal(pc.abs(raw), limit))
    if not pc.any(special).as_py():
        return column
    text = pc.cast(pc.if_else(special, pa.scalar(None, kind), column), pa.string()).to_pylist()
    for i, (value, odd) in enumerate(zip(raw.to_pylist(), special.to_pylist(), strict=True)):
        if odd:
            text[i] = temporal_text(value, kind, csv=True)
    return pa.array(text, pa.string())


_YEAR_1_S, _YEAR_10000_S = -62_135_596_800, 253_402_300_800  # seconds from 1970-01-01


def _ordinary(kind: pa.DataType) -> tuple[int, int]:
    """The stored values of years 1–9999 in `kind`, first and last."""
    if pa.types.is_date32(kind):
        return _YEAR_1_S // 86_400, _YEAR_10000_S // 86_400 - 1
    per = 1_000 if pa.types.is_date64(kind) else PER_SECOND[kind.unit]
    # Nanoseconds reach only 1677–2262: every value but infinity is ordinary.
    return max(_YEAR_1_S * per, -INT64_MAX), min(_YEAR_10000_S * per - 1, INT64_MAX)


def _parquet_check(table: pa.Table) -> None:
    """A union has no Parquet form: refused, naming the column."""
    for field in table.schema:
        if has(field.type, pa.types.is_union):
            raise InvalidInput(f"column {field.name[:60]!r} is a UNION, which Parquet cannot "
                               "hold; cast it, or ask for format json, jsonl, csv or arrow",
                               code="unsupported_result_type",
                               details={"column": field.name[:60],
                                        "type": str(field.type)[:200]})


def _for_parquet(table: pa.Table) -> pa.Table:
    """Every column in a type Parquet has: an interval as a struct of its three parts, seconds
    as milliseconds (Parquet has no seconds; infinity stays the largest value)."""
    columns = []
    for column in table.columns:
        kind = column.type
        if has(kind, _not_in_parquet):
            target = rebuilt(kind, _parquet_type)
            values = walked(column, _parquet_value)
            columns.append(pa.array(values, rebuilt(target, stored_type)).cast(target))
        else:
            columns.append(column)
    return pa.table(columns, names=table.column_names)


def _not_in_parquet(kind: pa.DataType) -> bool:
    return bool(pa.types.is_interval(kind) or (
        pa.types.is_timestamp(kind) and kind.unit == "s"))


def _parquet_type(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_interval(kind):
        return INTERVAL_STRUCT
    if pa.types.is_timestamp(kind) and kind.unit == "s":
        return pa.timestamp("ms", kind.tz)
    return kind


def _parquet_value(value: Any, kind: pa.DataType) -> Any:
    if isinstance(value, pa.MonthDayNano):
        return {"months": value.months, "days": value.days, "nanoseconds": value.nanoseconds}
    if pa.types.is_timestamp(kind) and kind.unit == "s":
        return value if abs(value) == INT64_MAX else value * 1_000
    return value
