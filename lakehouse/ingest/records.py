"""Incoming records: parsing request bodies and checking each record's envelope (pure).

The envelope is `{"data_id", "payload", "table"?, "timestamp"?, "upsert"?}`. What is wrong with one
record of a batch becomes a `Rejected` with its index and reason; the good ones go on.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from lakehouse.errors import InvalidInput
from lakehouse.schema import FieldType, infer
from lakehouse.schema.names import check_table_name

DEFAULT_TABLE = "records"
MAX_DATA_ID_BYTES = 256
ENVELOPE_KEYS = frozenset({"data_id", "payload", "table", "timestamp", "upsert"})


class IncomingRecord(NamedTuple):
    """One checked record. A NamedTuple, not a frozen dataclass: one is built per ingested
    record, and a tuple is built in C, several times faster."""

    index: int  # type: ignore[assignment]  # position in the request (shadows tuple.index)
    data_id: str
    table: str
    timestamp_us: int
    payload: dict[str, Any]
    payload_type: FieldType | None  # None: typed later, with its batch (see batch_types)
    upsert: bool


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    data_id: str | None
    table: str | None
    reason: str
    code: str
    raw: Any  # the record as received, kept in the tenant's _rejects table

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "data_id": self.data_id, "error": self.code,
                "reason": self.reason}


def parse_timestamp(value: Any, received_us: int) -> int:
    """Microseconds since the epoch, UTC, from ISO-8601 text or epoch seconds."""
    if value is None:
        return received_us
    if isinstance(value, bool):
        raise InvalidInput("timestamp must be ISO-8601 text or epoch seconds, not a boolean",
                           code="invalid_timestamp")
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 <= value < 32503680000:  # year 3000
            raise InvalidInput("timestamp in epoch seconds must be between 1970 and 3000",
                               code="invalid_timestamp", details={"timestamp": value})
        return round(value * 1_000_000)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput("timestamp is not ISO-8601 (e.g. 2026-11-26T10:00:00Z)",
                               code="invalid_timestamp", details={"timestamp": value[:64]}
                               ) from exc
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return int(parsed.timestamp() * 1_000_000)
    raise InvalidInput("timestamp must be ISO-8601 text or epoch seconds",
                       code="invalid_timestamp")


def check_record(raw: Any, index: int, received_us: int,
                 default_table: str = DEFAULT_TABLE, *, typed: bool = True) -> IncomingRecord:
    """One record's envelope and payload, or InvalidInput saying what is wrong with it.

    With `typed` false the payload's type is left for the caller to work out with its batch.
    """
    if not isinstance(raw, dict):
        raise InvalidInput(f"a record is a JSON object, not {_json_kind(raw)}",
                           code="record_not_object")
    if not ENVELOPE_KEYS.issuperset(raw):
        unknown = set(raw) - ENVELOPE_KEYS
        raise InvalidInput("unknown top-level keys; fields go inside \"payload\"",
                           code="unknown_keys", details={"keys": sorted(unknown)[:10]})
    data_id = raw.get("data_id")
    if not isinstance(data_id, str) or not data_id:
        raise InvalidInput("data_id is required: a non-empty string", code="invalid_data_id")
    # At most 4 UTF-8 bytes a character: short ids need no encoding to be measured.
    too_long = len(data_id) * 4 > MAX_DATA_ID_BYTES and len(data_id.encode()) > MAX_DATA_ID_BYTES
    if too_long or "\x00" in data_id:
        raise InvalidInput(f"data_id must be at most {MAX_DATA_ID_BYTES} bytes, without NUL",
                           code="invalid_data_id")
    table = raw.get("table", default_table)
    if not isinstance(table, str):
        raise InvalidInput("table must be a string", code="invalid_table_name")
    if table is not default_table:
        check_table_name(table)
    payload = raw.get("payload")
    if not isinstance(payload, dict):
        raise InvalidInput(f"payload is required: a JSON object, not {_json_kind(payload)}",
                           code="invalid_payload")
    upsert = raw.get("upsert", False)
    if not isinstance(upsert, bool):
        raise InvalidInput("upsert must be true or false", code="invalid_upsert")
    payload_type = infer(payload) if typed else None
    timestamp = raw.get("timestamp")
    timestamp_us = received_us if timestamp is None else parse_timestamp(timestamp, received_us)
    return IncomingRecord(index, data_id, table, timestamp_us, payload, payload_type, upsert)


def check_records(raws: list[Any], received_us: int, default_table: str = DEFAULT_TABLE,
                  *, typed: bool = True) -> tuple[list[IncomingRecord], list[Rejected]]:
    good: list[IncomingRecord] = []
    bad: list[Rejected] = []
    check_table_name(default_table)
    for index, raw in enumerate(raws):
        try:
            good.append(check_record(raw, index, received_us, default_table, typed=typed))
        except InvalidInput as exc:
            bad.append(_rejected(raw, index, exc))
    return good, bad


def _rejected(raw: Any, index: int, exc: InvalidInput) -> Rejected:
    data_id = raw.get("data_id") if isinstance(raw, dict) else None
    table = raw.get("table") if isinstance(raw, dict) else None
    detail = exc.details.get("path") or exc.details.get("field")
    reason = f"{exc.message} ({detail})" if detail else exc.message
    return Rejected(index, data_id if isinstance(data_id, str) else None,
                    table if isinstance(table, str) else None, reason, exc.code, raw)


def parse_json_array(body: bytes) -> list[Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("the body is not valid JSON", code="malformed_json",
                           details={"problem": str(exc)[:200]}) from exc
    if not isinstance(parsed, list):
        raise InvalidInput("the body must be a JSON array of records (or NDJSON with "
                           "Content-Type: application/x-ndjson)", code="not_an_array")
    return parsed


MAX_KEPT_LINE = 64 * 1024


def parse_ndjson(body: bytes) -> Iterator[tuple[int, Any | InvalidInput]]:
    """Each non-blank line: its parsed value, or the error for that line alone (the line's text,
    cut at 64 KiB, is in the error's details so the reject can keep it)."""
    # Fast path: the lines joined into one JSON array parse in one call, several times faster
    # than a call per line. Any bad line sends us to the line-by-line path for its exact error;
    # a line with a top-level comma (never valid NDJSON) shows as a count that does not match.
    lines = body.strip()
    if b"\r" in lines:
        lines = lines.replace(b"\r\n", b"\n")
    while b"\n\n" in lines:  # blank lines
        lines = lines.replace(b"\n\n", b"\n")
    if lines:
        try:
            values = orjson.loads(b"[" + lines.replace(b"\n", b",") + b"]")
        except orjson.JSONDecodeError:
            values = None
        if values is not None and len(values) == lines.count(b"\n") + 1:
            yield from enumerate(values)
            return
    index = 0
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        try:
            yield index, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield index, InvalidInput("this line is not valid JSON", code="malformed_json",
                                      details={"problem": str(exc)[:200],
                                               "line": line[:MAX_KEPT_LINE].decode(
                                                   "utf-8", "replace")})
        index += 1


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)
