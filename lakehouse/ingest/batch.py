"""What one WAL entry holds: the accepted records of one request for one table.

Two versioned formats, told apart by their first byte:
- JSON rows (b"{"), written when records were checked one by one;
- Arrow (b"A"): a small JSON header, then an Arrow IPC stream with the columns `data_id`,
  `timestamp_us`, `upsert` and the `payload` struct. Written when a batch was typed at once by
  Arrow: the array built to type it is the one stored, so no per-record encoding is done, and the
  flush can hand it to Parquet as is.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from lakehouse.errors import WalCorrupted
from lakehouse.kept import Kept

JSON_VERSION = 1
ARROW_MAGIC = b"A"
_HEADER_LEN = struct.Struct(">I")

Row = tuple[str, int, dict[str, Any], bool]  # data_id, timestamp_us, payload, upsert


@dataclass(frozen=True, slots=True)
class StoredRecord:
    seq: int
    data_id: str
    timestamp_us: int
    payload: dict[str, Any]
    upsert: bool


@dataclass(frozen=True, slots=True)
class RecordBatch:
    tenant: str
    table: str
    request_id: str | None
    received_us: int
    rows: tuple[Row, ...] = ()  # record i has sequence number first_seq + i
    arrow: pa.Table | None = None  # instead of rows, for the Arrow format

    def __len__(self) -> int:
        return self.arrow.num_rows if self.arrow is not None else len(self.rows)

    def _header(self) -> dict[str, Any]:
        return {"v": JSON_VERSION, "t": self.tenant, "b": self.table, "r": self.request_id,
                "rx": self.received_us}

    def encode(self) -> bytes:
        if self.arrow is None:
            encoded: bytes = orjson.dumps({**self._header(), "d": self.rows})
            return encoded
        header = orjson.dumps(self._header())
        sink = pa.BufferOutputStream()
        # Options given, so ARROW_PRE_0_15_IPC_FORMAT in the environment cannot pick the old
        # format, whose stream ends without the marker `_read_stream` requires.
        with pa.ipc.new_stream(sink, self.arrow.schema,
                               options=pa.ipc.IpcWriteOptions()) as writer:
            writer.write_table(self.arrow)
        body: bytes = sink.getvalue().to_pybytes()
        return ARROW_MAGIC + _HEADER_LEN.pack(len(header)) + header + body

    @staticmethod
    def arrow_table(data_ids: list[str], timestamps_us: list[int], upserts: list[bool],
                    payloads: pa.StructArray) -> pa.Table:
        return RecordBatch.arrow_table_of(
            pa.array(data_ids, pa.string()), pa.array(timestamps_us, pa.int64()),
            pa.array(upserts, pa.bool_()), payloads)

    @staticmethod
    def arrow_table_of(data_ids: pa.Array, timestamps_us: pa.Array, upserts: pa.Array,
                       payloads: pa.StructArray) -> pa.Table:
        return pa.Table.from_arrays([data_ids, timestamps_us, upserts, payloads],
                                    names=["data_id", "timestamp_us", "upsert", "payload"])

    @staticmethod
    def decode(data: bytes) -> RecordBatch:
        try:
            if data[:1] == ARROW_MAGIC:
                (length,) = _HEADER_LEN.unpack_from(data, 1)
                header = orjson.loads(data[5:5 + length])
                # A copy: a slice of `data` would leave the columns' buffers unaligned (the
                # header's length varies), and Arrow's compute then warns or copies each time.
                table = _read_stream(pa.py_buffer(data[5 + length:]))
                return RecordBatch(header["t"], header["b"], header["r"], int(header["rx"]),
                                   arrow=table)
            obj = orjson.loads(data)
            if obj.get("v") != JSON_VERSION:
                raise WalCorrupted(f"unknown record batch format {obj.get('v')!r}")
            rows = tuple((str(d), int(ts), p, bool(u)) for d, ts, p, u in obj["d"])
            return RecordBatch(obj["t"], obj["b"], obj["r"], int(obj["rx"]), rows)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError,
                struct.error, pa.ArrowException, OSError) as exc:  # OSError: a stream cut short
            raise WalCorrupted("a WAL entry is not a readable record batch",
                               details={"problem": str(exc)[:200]}) from exc

    def records(self, first_seq: int) -> list[StoredRecord]:
        return [StoredRecord(first_seq + i, d, ts, p, u)
                for i, (d, ts, p, u) in enumerate(self._rows())]

    def record(self, first_seq: int, offset: int) -> StoredRecord:
        if self.arrow is None:
            d, ts, p, u = self.rows[offset]
        else:
            [(d, ts, p, u)] = _arrow_rows(self.arrow.slice(offset, 1))
        return StoredRecord(first_seq + offset, d, ts, p, u)

    def _rows(self) -> list[Row] | tuple[Row, ...]:
        return self.rows if self.arrow is None else _arrow_rows(self.arrow)


def _read_stream(body: pa.Buffer) -> pa.Table:
    """The table of an Arrow IPC stream. Every entry's stream starts with its schema, and a
    table's entries mostly share one: reading the messages with a schema already decoded for
    the same bytes takes a third less than opening each stream whole (a flush decodes tens of
    thousands of entries holding the interpreter lock). Anything but a schema followed by
    record batches (dictionaries, an unreadable message) is read the usual way. Every stream
    `encode` writes ends with Arrow's end-of-stream marker: one without it was cut, and reading
    the batches before the cut would lose the rest without a word."""
    if body.size < len(END_OF_STREAM) or body[-len(END_OF_STREAM):].to_pybytes() != END_OF_STREAM:
        raise pa.ArrowInvalid("the entry's Arrow stream is cut short: no end-of-stream marker")
    end = body.size - len(END_OF_STREAM)
    try:
        reader = pa.BufferReader(body)
        message = pa.ipc.read_message(reader)
        if message.type != "schema":
            raise ValueError(message.type)
        schema = _SCHEMAS.get(message.metadata.to_pybytes(),
                              lambda: pa.ipc.read_schema(message))
        batches = []
        while reader.tell() < end:
            message = pa.ipc.read_message(reader)
            if message.type != "record batch":
                raise ValueError(message.type)
            batches.append(pa.ipc.read_record_batch(message, schema))
    except (ValueError, OSError, EOFError, pa.ArrowException):
        return pa.ipc.open_stream(body).read_all()
    if reader.tell() != end:
        # The messages ran into the marker's bytes: the marker was only a value that looked like
        # one, and the stream was cut (pyarrow's own reader would stop there without a word).
        raise pa.ArrowInvalid("the entry's Arrow stream is cut short inside a message")
    return pa.Table.from_batches(batches, schema)


END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # a continuation marker, then length 0
# Schemas of entries' streams by their encoded bytes (`_read_stream`); equal bytes are the same
# schema. A platform has far fewer table shapes than the bound; past it they are decoded each time.
SCHEMAS_KEPT = 256
_SCHEMAS: Kept[bytes, pa.Schema] = Kept(SCHEMAS_KEPT)


def _arrow_rows(table: pa.Table) -> list[Row]:
    columns = table.to_pydict()
    return [(d, ts, strip_nulls(p), bool(u)) for d, ts, p, u in zip(
        columns["data_id"], columns["timestamp_us"], columns["payload"], columns["upsert"],
        strict=True)]


def strip_nulls(value: Any) -> Any:
    """A payload without null fields. Arrow stores the batch's columns for every record, so a
    record read back shows a field it never had as null; dropping nulls gives back what was
    written (an explicit null reads back as absent, which JSON readers treat alike)."""
    if isinstance(value, dict):
        return {k: strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_nulls(v) for v in value]
    return value


def canonical(payload: dict[str, Any], like: dict[str, Any] | None = None) -> bytes:
    """The payload as comparable bytes: nulls dropped, keys sorted, numbers by value. Two
    writes of one record are the same write exactly when these are equal.

    A record read back from its Parquet file holds its exact columns' values typed (Decimal,
    datetime, date, time), not as the JSON it was written with; `like` is such a stored
    version, and the payload's values where it holds typed ones are read as those types first,
    so a retry of what was written equals its flushed form."""
    value = _comparable(payload if like is None else _typed_like(payload, like))
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=_exact)


def _exact(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return f"decimal:{value.normalize()}"  # 1.50 and 1.5 are one value
    raise TypeError(type(value).__name__)


def _typed_like(value: Any, like: Any) -> Any:  # noqa: PLR0911 - one return per type
    """`value` (JSON) read as the types `like` (a flushed version) holds; what does not read
    stays as it is, and compares unequal."""
    if isinstance(like, dict) and isinstance(value, dict):
        return {k: _typed_like(v, like.get(k)) for k, v in value.items()}
    if isinstance(like, list) and isinstance(value, list) and len(like) == len(value):
        return [_typed_like(v, w) for v, w in zip(value, like, strict=True)]
    try:
        if isinstance(like, decimal.Decimal) and isinstance(value, int | float | str) and (
                not isinstance(value, bool)):
            return decimal.Decimal(str(value))
        if isinstance(like, dt.datetime) and isinstance(value, str):
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if like.tzinfo is not None and parsed.tzinfo is None:
                return parsed.replace(tzinfo=dt.UTC)  # a zone column reads naive text as UTC
            if like.tzinfo is None and parsed.tzinfo is not None:
                return parsed.astimezone(dt.UTC).replace(tzinfo=None)
            return parsed.astimezone(like.tzinfo) if parsed.tzinfo is not None else parsed
        if isinstance(like, dt.date) and not isinstance(like, dt.datetime) and isinstance(
                value, str):
            return dt.date.fromisoformat(value)
        if isinstance(like, dt.time) and isinstance(value, str):
            return dt.time.fromisoformat(value)
    except (ValueError, decimal.InvalidOperation):
        return value
    return value


_EXACT_FLOAT_INTS = float(2**53)


def _comparable(value: Any) -> Any:
    # A record stored in a float64 column reads back 1 as 1.0: a retry sending 1 again is the
    # same write, so integral floats compare as the integers they hold (exactly, up to 2**53).
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if type(value) is float and value.is_integer() and abs(value) < _EXACT_FLOAT_INTS:
        return int(value)
    return value
