"""A query's rows in the format the caller asked for: JSON, CSV, Arrow IPC or Parquet.

Answers are positional, as in Trino's protocol: every column the query selects, in its order,
named as the query names it — two columns may share a name (`SELECT a, -a AS a`, or `*` over a
self-join). JSON keeps the names as written and gives rows as arrays; the formats whose readers
key columns by name (CSV headers, Arrow and Parquet fields) get the repeats disambiguated as
DuckDB does in a subquery (`a`, `a_1`), never dropped. JSON decimals are strings (exact; whole
ones below 2^53 are numbers), dates and times ISO 8601, binary base64.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from fastapi.responses import Response

from lakehouse.errors import InvalidInput

FORMATS = ("json", "csv", "arrow", "parquet")
MEDIA = {"csv": "text/csv", "arrow": "application/vnd.apache.arrow.stream",
         "parquet": "application/vnd.apache.parquet"}


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
    raise TypeError(type(value).__name__)


def columns(table: pa.Table) -> list[dict[str, str]]:
    return [{"name": f.name, "type": str(f.type)} for f in table.schema]


def rows_json(table: pa.Table) -> list[list[Any]]:
    """The rows as arrays, by position (by name, a repeated name would keep one column)."""
    if table.num_columns == 0:
        return [[] for _ in range(table.num_rows)]
    return [list(row) for row in zip(*(c.to_pylist() for c in table.columns), strict=True)]


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
    names = unique_names(table.column_names)
    if names != table.column_names:
        table = table.rename_columns(names)
    sink = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, sink)
    elif fmt == "arrow":
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    else:
        pq.write_table(table, sink, compression="zstd")
    return Response(sink.getvalue(), media_type=MEDIA[fmt], headers=headers)
