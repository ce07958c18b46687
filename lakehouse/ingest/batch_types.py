"""The type of a whole batch of payloads at once, computed by Arrow.

Checking each record alone costs about 11 µs in Python; Arrow's conversion types 1,000 payloads
in about 3 µs each. It is only a fast path: whenever Arrow cannot decide exactly as the per-record
rules would (values of conflicting types within the batch, names to refuse, deep nesting,
integers beyond int64), it answers None and the records are checked one by one.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from lakehouse.schema import MAX_DEPTH, FieldType, Kind
from lakehouse.schema.names import RESERVED_COLUMNS, is_valid_name

_SCALARS = {pa.int64(): FieldType(Kind.INT), pa.float64(): FieldType(Kind.FLOAT),
            pa.bool_(): FieldType(Kind.BOOL), pa.string(): FieldType(Kind.STRING),
            pa.null(): FieldType(Kind.NULL)}


class _Undecided(Exception):
    pass


def batch_type(payloads: list[dict[str, Any]]) -> FieldType | None:
    typed = batch_array(payloads)
    return typed[0] if typed is not None else None


def batch_array(payloads: list[dict[str, Any]]) -> tuple[FieldType, pa.StructArray] | None:
    """The batch's type and the Arrow array of its payloads (stored as is in the WAL)."""
    try:
        array = pa.array(payloads)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        return None
    payload_type = arrow_payload_type(array.type)
    return (payload_type, array) if payload_type is not None else None


def arrow_payload_type(arrow_type: pa.DataType) -> FieldType | None:
    """The payload type an Arrow struct type stands for, or None if the per-record rules must
    decide (see the module's docstring)."""
    if not pa.types.is_struct(arrow_type):
        return None
    try:
        return _from_arrow(arrow_type, depth=1, top=True)
    except _Undecided:
        return None


def _from_arrow(arrow_type: pa.DataType, depth: int, *, top: bool = False) -> FieldType:
    if depth >= MAX_DEPTH:  # near the limit the per-record check gives the exact error
        raise _Undecided
    scalar = _SCALARS.get(arrow_type)
    if scalar is not None:
        return scalar
    if pa.types.is_list(arrow_type):
        return FieldType(Kind.LIST, element=_from_arrow(arrow_type.value_type, depth + 1))
    if pa.types.is_struct(arrow_type):
        fields = []
        for i in range(arrow_type.num_fields):
            child = arrow_type.field(i)
            if not is_valid_name(child.name) or (top and child.name in RESERVED_COLUMNS):
                raise _Undecided
            fields.append((child.name, _from_arrow(child.type, depth + 1)))
        return FieldType(Kind.STRUCT, fields=tuple(fields))
    raise _Undecided  # uint64, timestamps, …: not what JSON gives the per-record rules
