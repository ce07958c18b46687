"""A query's rows in the format the caller asked for: JSON, CSV, Arrow IPC or Parquet.

JSON names each column with its type and gives rows as arrays; decimals are strings (exact;
whole ones below 2^53 are numbers),
dates and times ISO 8601, binary base64.
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
    names = table.column_names
    return [[row[n] for n in names] for row in table.to_pylist()]


def json_bytes(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, default=_default,
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def binary_response(table: pa.Table, fmt: str, headers: dict[str, str]) -> Response:
    sink = io.BytesIO()
    if fmt == "csv":
        pacsv.write_csv(table, sink)
    elif fmt == "arrow":
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    else:
        pq.write_table(table, sink, compression="zstd")
    return Response(sink.getvalue(), media_type=MEDIA[fmt], headers=headers)
