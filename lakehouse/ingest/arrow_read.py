"""NDJSON batches read by Arrow at once: the fast path of `/data/store` (pure, no I/O).

Checking records one by one costs tens of microseconds a record in Python (orjson builds a dict
per record, the envelope is checked, the payloads are converted to Arrow); `pyarrow.json` reads
the body straight into the columns the log stores. This module only ever answers for a batch the
per-record path would accept whole, as it is: one table, every record an object with a non-empty
`data_id` and an object `payload`, names and depth within the rules, no repeated data_id. For
anything else — a bad line, a reject, a `timestamp` or `upsert`, a value Arrow reads differently
from orjson — it answers None and the caller checks the records one by one, so that what is
stored and what is answered stay exactly those of the per-record path.
"""

from __future__ import annotations

import io
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import overload

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from lakehouse.ingest.batch import RecordBatch, strip_nulls
from lakehouse.ingest.batch_types import arrow_payload_type
from lakehouse.ingest.records import MAX_DATA_ID_BYTES, IncomingRecord
from lakehouse.schema import FieldType
from lakehouse.schema.names import is_valid_name

_ENVELOPE = frozenset({"data_id", "payload", "table"})
# Past this, an integer does not fit int64: Arrow reads it as a float, the per-record path
# refuses it. Floats this large are rare enough to send the batch to that path too.
_INT64_BOUND = float(2**63)
_MIN_BLOCK = 1 << 20
_BLANK_LINE = r"\n[ \t]*\n"


@dataclass(frozen=True, slots=True)
class ArrowBatch:
    """Records of one table, every one new to this batch and accepted by the envelope rules."""

    table: str
    data_ids: pa.StringArray
    payloads: pa.StructArray
    payload_type: FieldType

    def __len__(self) -> int:
        return len(self.data_ids)


class ArrowRows(Sequence[IncomingRecord]):
    """An ArrowBatch as the records of a write plan, received at `received_us`. A record
    object is built only when one is asked for (the answer to a one-record batch, a later
    write of the same data_id compared with it): the batch is stored as its columns."""

    def __init__(self, batch: ArrowBatch, data_ids: list[str], received_us: int) -> None:
        self.batch = batch
        self.data_ids = data_ids
        self.received_us = received_us

    def __len__(self) -> int:
        return len(self.data_ids)

    @overload
    def __getitem__(self, index: int) -> IncomingRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[IncomingRecord]: ...

    def __getitem__(self, index: int | slice) -> IncomingRecord | Sequence[IncomingRecord]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        payload = strip_nulls(self.batch.payloads[index].as_py())
        return IncomingRecord(index, self.data_ids[index], self.batch.table, self.received_us,
                              payload, None, False)

    def stored_table(self) -> pa.Table:
        """The columns of the log's Arrow format (see batch.py)."""
        count = len(self.data_ids)
        # Built from buffers: pyarrow's conversions from Python objects import pandas on
        # first use, a one-second stall of the first request.
        times = pa.Array.from_buffers(pa.int64(), count, [
            None, pa.py_buffer(array("q", [self.received_us]) * count)])
        upserts = pa.Array.from_buffers(pa.bool_(), count, [None, pa.py_buffer(
            bytes((count + 7) // 8))])
        return RecordBatch.arrow_table_of(self.batch.data_ids, times, upserts,
                                          self.batch.payloads)


def read_ndjson(body: bytes, default_table: str, max_records: int) -> ArrowBatch | None:
    """The body's records read by Arrow, or None: check them one by one (see the module)."""
    lines = _line_count(body)
    # One record alone is stored as JSON by the per-record path (explicit nulls kept): left to it.
    table = _read(body) if lines is not None and 1 < lines <= max_records else None
    if (table is None or table.num_rows != lines or "payload" not in table.column_names
            or not _ENVELOPE.issuperset(table.column_names)):
        return None
    data_ids = _string_column(table, "data_id")
    name = _table_name(table, default_table)
    payloads = _single(table.column("payload"))
    if (data_ids is None or name is None or not _good_ids(data_ids)
            or not isinstance(payloads, pa.StructArray) or payloads.null_count):
        return None
    payload_type = arrow_payload_type(payloads.type)
    if payload_type is None or not _numbers_as_orjson_reads_them(payloads):
        return None
    return ArrowBatch(name, data_ids, payloads, payload_type)


def _table_name(table: pa.Table, default_table: str) -> str | None:
    """The one table every record names (or none names), if it is a valid name."""
    if "table" not in table.column_names:
        return default_table
    names = _string_column(table, "table")
    if names is None or pc.count_distinct(names).as_py() != 1:
        return None
    name = names[0].as_py()
    return name if is_valid_name(name) else None


def _line_count(body: bytes) -> int | None:
    """How many records the per-record path would see, if every line is one (else None).

    Only bodies whose lines are plain are counted: blank or whitespace-only lines (skipped by
    the per-record path), a stray carriage return or a byte-order mark send the batch there.
    """
    lines = body.strip()
    if b"\r" in lines:
        lines = lines.replace(b"\r\n", b"\n")
        if b"\r" in lines:
            return None
    if not lines.startswith(b"{"):
        return None
    try:
        # Arrow does not check UTF-8 inside strings; orjson refuses a line that is not UTF-8.
        lines.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # RE2 over the body in place: ten times faster here than searching the bytes in Python.
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [
        None, pa.py_buffer(array("q", [0, len(lines)])), pa.py_buffer(lines)])
    if pc.any(pc.match_substring_regex(whole, _BLANK_LINE)).as_py():
        return None
    return lines.count(b"\n") + 1


def _read(body: bytes) -> pa.Table | None:
    """The body as an Arrow table, strings kept as strings (Arrow's inference would read text
    that looks like a date as a timestamp: such columns are read again with an explicit type)."""
    # One block: the whole body is typed together, as the per-record path types the batch.
    options = pj.ReadOptions(use_threads=False, block_size=max(len(body) + 1, _MIN_BLOCK))
    try:
        table = pj.read_json(io.BytesIO(body), read_options=options)
        if _has_times(table.schema):
            explicit = pa.schema([pa.field(f.name, _times_as_text(f.type)) for f in table.schema])
            parse = pj.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="error")
            table = pj.read_json(io.BytesIO(body), read_options=options, parse_options=parse)
        # The reader can build arrays that break Arrow's own invariants (a list whose first
        # item is null, then a number: its offsets overrun its values). Checked, never stored.
        table.validate(full=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError):
        return None
    return table


def _has_times(schema: pa.Schema) -> bool:
    return any(_times_as_text(f.type) != f.type for f in schema)


def _times_as_text(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        return pa.string()
    if pa.types.is_list(kind):
        return pa.list_(_times_as_text(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _times_as_text(f.type)) for f in kind])
    return kind


def _single(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _string_column(table: pa.Table, name: str) -> pa.StringArray | None:
    if name not in table.column_names:
        return None
    column = _single(table.column(name))
    if column.type != pa.string() or column.null_count:
        return None
    return column


def _good_ids(data_ids: pa.StringArray) -> bool:
    """Non-empty, at most MAX_DATA_ID_BYTES, no NUL, and no data_id twice in the batch."""
    lengths = pc.min_max(pc.binary_length(data_ids)).as_py()
    if lengths["min"] < 1 or lengths["max"] > MAX_DATA_ID_BYTES:
        return False
    if pc.any(pc.match_substring(data_ids, "\x00")).as_py():
        return False
    return bool(pc.count_distinct(data_ids).as_py() == len(data_ids))


def _numbers_as_orjson_reads_them(values: pa.Array) -> bool:
    """No NaN or infinity (Arrow reads them, orjson refuses them) and no float column that may
    hold an integer too large for int64 (Arrow reads it as a float, the per-record path refuses
    it)."""
    kind = values.type
    if pa.types.is_floating(kind):
        if values.null_count == len(values):
            return True
        if not pc.all(pc.is_finite(values)).as_py():
            return False
        return bool(pc.max(pc.abs(values)).as_py() < _INT64_BOUND)
    if pa.types.is_struct(kind):
        return all(_numbers_as_orjson_reads_them(values.field(i))
                   for i in range(kind.num_fields))
    if pa.types.is_list(kind):
        return _numbers_as_orjson_reads_them(values.flatten())
    return True
