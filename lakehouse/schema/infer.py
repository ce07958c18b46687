"""The type of one record's payload, checking names, depth and values on the way.

Runs once per ingested record, so scalars are dispatched on their exact type (what json and orjson
produce) before the general isinstance checks, and field names already seen are not re-checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lakehouse.errors import InvalidInput
from lakehouse.schema.evolve import Changes, merge_types
from lakehouse.schema.names import check_field_name
from lakehouse.schema.types import (
    BOOL_TYPE,
    EMPTY_LIST_TYPE,
    FLOAT_TYPE,
    INT_TYPE,
    NULL_TYPE,
    ROOT,
    STRING_TYPE,
    FieldType,
    list_of,
    struct_of,
)

MAX_DEPTH = 32  # levels of objects and arrays, the payload itself being level 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Names that passed the checks, per level; bounded so that a stream of random keys cannot grow it.
_KNOWN_TOP: set[str] = set()
_KNOWN_NESTED: set[str] = set()
_KNOWN_LIMIT = 16384
_SCALARS: dict[type, FieldType] = {
    str: STRING_TYPE,
    bool: BOOL_TYPE,
    type(None): NULL_TYPE,
}


def infer(payload: Mapping[str, Any]) -> FieldType:
    """The STRUCT type of one record's payload (a dict from json/orjson).

    Raises InvalidInput, with the offending path in `details["path"]`, for: a bad or reserved
    field name ("invalid_field_name"), nesting deeper than MAX_DEPTH ("too_deep"), an integer
    outside int64 ("integer_out_of_range"), NaN or infinity ("non_finite_number"), list items of
    conflicting types ("mixed_list"), and values JSON cannot carry ("unsupported_value").
    """
    if not isinstance(payload, Mapping):
        raise InvalidInput(
            "the payload must be a JSON object",
            code="invalid_payload",
            details={"path": ROOT, "type": _json_name(payload)},
        )
    return _struct(payload, ROOT, 1, _KNOWN_TOP)


def _struct(obj: Mapping[Any, Any], path: str, depth: int, known: set[str]) -> FieldType:
    if depth > MAX_DEPTH:
        raise _too_deep(path)
    fields: list[tuple[str, FieldType]] = []
    append = fields.append
    for name, value in obj.items():
        if name not in known:
            _learn_name(name, path, known)
        kind = type(value)
        if kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                raise _out_of_range(f"{path}.{name}")
            append((name, INT_TYPE))
        elif kind is float:
            if not math.isfinite(value):
                raise _non_finite(f"{path}.{name}")
            append((name, FLOAT_TYPE))
        elif kind in _SCALARS:
            append((name, _SCALARS[kind]))
        else:
            append((name, _value(value, f"{path}.{name}", depth + 1)))
    return struct_of(tuple(fields))


def _learn_name(name: Any, path: str, known: set[str]) -> None:
    check_field_name(name, f"{path}.{str(name)[:100]}")  # top level or not: told by the path
    if len(known) >= _KNOWN_LIMIT:
        known.clear()
    known.add(name)


def _value(value: Any, path: str, depth: int) -> FieldType:
    """The type of any value; `depth` is the level a container here would be at."""
    kind = type(value)
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise _out_of_range(path)
        return INT_TYPE
    if kind is float:
        if not math.isfinite(value):
            raise _non_finite(path)
        return FLOAT_TYPE
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return scalar
    if kind is dict:
        return _struct(value, path, depth, _KNOWN_NESTED)
    if kind is list:
        return _list(value, path, depth)
    return _unusual_value(value, path, depth)


def _unusual_value(value: Any, path: str, depth: int) -> FieldType:
    """Subclasses and other containers: rare, and never made by a JSON parser."""
    if isinstance(value, bool):
        return BOOL_TYPE
    if isinstance(value, int | float):  # an IntEnum, say: checked as the plain number
        return _value(int(value) if isinstance(value, int) else float(value), path, depth)
    if isinstance(value, str):
        return STRING_TYPE
    if isinstance(value, Mapping):
        return _struct(value, path, depth, _KNOWN_NESTED)
    if isinstance(value, list | tuple):
        return _list(value, path, depth)
    raise InvalidInput(
        f"{path}: a {_json_name(value)} is not a JSON value",
        code="unsupported_value",
        details={"path": path, "type": _json_name(value)},
    )


def _list(items: list[Any] | tuple[Any, ...], path: str, depth: int) -> FieldType:
    if depth > MAX_DEPTH:
        raise _too_deep(path)
    if not items:
        return EMPTY_LIST_TYPE
    item_path = path + "[]"
    kinds = set(map(type, items))
    if len(kinds) == 1:  # the common case: one scalar type, checked at C speed
        kind = kinds.pop()
        if kind is int:
            if min(items) < INT64_MIN or max(items) > INT64_MAX:
                raise _out_of_range(item_path)
            return list_of(INT_TYPE)
        if kind is float:
            if not all(map(math.isfinite, items)):
                raise _non_finite(item_path)
            return list_of(FLOAT_TYPE)
        if kind in _SCALARS:
            return list_of(_SCALARS[kind])
    element = NULL_TYPE
    changes = Changes()
    for item in items:
        item_type = _value(item, item_path, depth + 1)
        if item_type is not element:
            element = merge_types(element, item_type, item_path, changes)
            if changes.conflicts:
                raise _mixed(path, changes)
    return list_of(element)


def _json_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _too_deep(path: str) -> InvalidInput:
    return InvalidInput(
        f"{path}: nesting deeper than {MAX_DEPTH} levels is not supported",
        code="too_deep",
        details={"path": path, "max_depth": MAX_DEPTH},
    )


def _out_of_range(path: str) -> InvalidInput:
    # The value is not echoed: str() of a huge int is slow, and refused past 4300 digits.
    return InvalidInput(
        f"{path}: integers must fit in 64 bits (between {INT64_MIN} and {INT64_MAX})",
        code="integer_out_of_range",
        details={"path": path},
    )


def _non_finite(path: str) -> InvalidInput:
    return InvalidInput(
        f"{path}: NaN and infinity cannot be stored",
        code="non_finite_number",
        details={"path": path},
    )


def _mixed(path: str, changes: Changes) -> InvalidInput:
    conflict = changes.conflicts[0]
    return InvalidInput(
        f"{path}: the items of a list must share one type; {conflict.path} mixes "
        f"{conflict.column.short()} and {conflict.value.short()}",
        code="mixed_list",
        details={
            "path": path,
            "at": conflict.path,
            "types": [conflict.column.short(), conflict.value.short()],
        },
    )
