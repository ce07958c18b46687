"""The request bodies of `POST /data` and `POST /data/store` as the OpenAPI documents declare them.

The write path reads these bodies itself, before routing and under its own limits
(api/write_door.py, api/fast_writes.py), so FastAPI never parses them and would declare none.
This module declares them from the same constants the write path checks
(lakehouse/ingest/records.py, lakehouse/schema/names.py), so the documents and the checks
agree: `/docs` can send a record, and a generated client has a body type to fill.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.bodies import component
from lakehouse.ingest.records import DEFAULT_TABLE, MAX_DATA_ID_BYTES
from lakehouse.schema.names import NAME_PATTERN

EPOCH_SECONDS_MAX = 32503680000  # the year 3000, as parse_timestamp bounds it

RECORD_EXAMPLE: dict[str, Any] = {
    "data_id": "user-001", "table": "records",
    "payload": {"name": "John Doe", "age": 30, "profile": {"skills": ["Go"]}}}
NDJSON_EXAMPLE = ('{"data_id": "a", "payload": {"x": 1}}\n'
                  '{"data_id": "b", "payload": {"x": 2}, "upsert": true}\n')


_NO_NUL_CHARS = "[^\\u0000]*"  # a body as bytes holds no NUL (UTF-8 JSON never does)
# Keys hold any text but NUL (the write-ahead log's keys are NUL-separated).
NO_NUL = "^[^\\u0000]*$"


_FIELD_NAME = {"pattern": f"^{NAME_PATTERN.pattern}$"}
_NULL = {"type": "null"}
_TEXT = {"type": "string"}


def _list_of(*items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": {"anyOf": [*items, _NULL]}}


# A payload's values, recursively, as the write path checks them (lakehouse/schema/infer.py):
# field names at every level follow the name rule, and a list's items share one type (numbers
# may mix integers and decimals; null fits anywhere). What no JSON Schema can say is in the
# descriptions: integers fit 64 bits, nesting stops at 32 levels, and the items of a list of
# lists or of objects agree with each other in their own items and fields.
PAYLOAD_SCHEMAS: dict[str, dict[str, Any]] = {
    "PayloadValue": {"description": "A field's value: null, true/false, a number (integers "
                                    "within 64 bits), text, an object, or a list of one type "
                                    "(the lists or objects in a list agree in their own items' "
                                    "and fields' types)",
                     "anyOf": [_NULL, {"type": "boolean"}, {"type": "number"}, _TEXT,
                               component("PayloadObject"), _list_of({"type": "boolean"}),
                               _list_of({"type": "number"}), _list_of(_TEXT),
                               _list_of(component("PayloadObject")),
                               # Deeper lists are not typed here: client generators cannot
                               # read a union that refers to itself.
                               _list_of({"type": "array", "items": {}})]},
    "PayloadObject": {"type": "object", "description": "Nested fields, named as columns are",
                      "propertyNames": _FIELD_NAME,
                      "additionalProperties": component("PayloadValue")},
}


class Record(BaseModel):
    """One record: its key, its table, its fields."""

    model_config = ConfigDict(extra="forbid", title="Record",
                              json_schema_extra={"examples": [RECORD_EXAMPLE]})

    data_id: str = Field(min_length=1, max_length=MAX_DATA_ID_BYTES,
                         json_schema_extra={"pattern": NO_NUL}, description=(
        f"The record's key in its table: at most {MAX_DATA_ID_BYTES} bytes of UTF-8, no NUL. "
        "The same record again is a harmless duplicate; a different one under the same key "
        "is 409 unless `upsert`"))
    table: str = Field(default=DEFAULT_TABLE, pattern=f"^{NAME_PATTERN.pattern}$",
                       description="1-63 ASCII letters, digits and '_', a letter first")
    payload: dict[str, Any] = Field(
        description="The record's fields: its table's columns, named as tables are "
                    "(`data_id` is the key, not a column)",
        json_schema_extra={"propertyNames": {**_FIELD_NAME, "not": {"const": "data_id"}},
                           "additionalProperties": component("PayloadValue")})
    upsert: bool = Field(default=False, description="Replace the record stored under data_id")
    timestamp: (Annotated[str, Field(json_schema_extra={"format": "date-time"})]
                | Annotated[float, Field(ge=0, lt=EPOCH_SECONDS_MAX)]
                | None) = Field(default=None, description=(
        "When it happened: ISO-8601 text, or epoch seconds from 0 to "
        f"{EPOCH_SECONDS_MAX}; default: when it was received. Partitions by its day"))


class WriteAnswer(BaseModel):
    """The answer to one record written."""

    data_id: str
    table: str
    seq: int = Field(description="Its sequence number in the write-ahead log")
    status: str = Field(description="`durable` (201: fsynced now) or `duplicate` (200: the "
                                    "same record was stored before, under this seq)")


WRITE_ANSWERS: dict[int | str, dict[str, Any]] = {
    201: {"model": WriteAnswer, "description": "Stored and fsynced: it survives a crash"},
    200: {"model": WriteAnswer, "description": "A retry of a record stored before"},
}


def _record_schema() -> dict[str, Any]:
    return Record.model_json_schema()


def one_record_body() -> dict[str, Any]:
    """`openapi_extra` of POST /data."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": _record_schema(), "example": RECORD_EXAMPLE}}}}


def batch_body() -> dict[str, Any]:
    """`openapi_extra` of POST /data/store. (How many records a request may hold is a setting,
    INGEST_MAX_RECORDS, so the description says it rather than the schema.)"""
    return {"requestBody": {"required": True, "content": {
        "application/json": {
            "schema": {"type": "array", "items": _record_schema(), "minItems": 1,
                       "description": "At most INGEST_MAX_RECORDS records (default 10,000)"},
            "example": [{"data_id": "user-002", "payload": {"name": "Ada", "age": 36}},
                        {"data_id": "user-003", "table": "records", "upsert": True,
                         "payload": {"name": "Grace", "age": 45}}]},
        "application/x-ndjson": {
            "schema": {"type": "string", "description": (
                "One record (as application/json's items) per line; a bad line is reported "
                "in the answer's rejects, the others are kept"),
                       "pattern": f"^{_NO_NUL_CHARS}[^\\s\\u0000]{_NO_NUL_CHARS}$"},
            "example": NDJSON_EXAMPLE}}}}
