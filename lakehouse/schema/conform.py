"""Bringing an Arrow array to a table's type: shared by the flush and the bulk load (pure)."""

from __future__ import annotations

import pyarrow as pa


def _list_like(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind)
                or pa.types.is_fixed_size_list(kind)
                or getattr(pa.types, "is_list_view", lambda _k: False)(kind)
                or getattr(pa.types, "is_large_list_view", lambda _k: False)(kind))


def conform(  # noqa: PLR0911 - one return per kind of type
        array: pa.Array, target: pa.DataType) -> pa.Array:
    """`array` as `target`: struct fields matched by name (missing → nulls), lists element-wise
    (large, fixed-size and view lists become plain lists), scalars cast (int64 → float64,
    views → strings; timestamps may lose sub-microsecond digits); nulls fit any type."""
    if array.type == target:
        return array
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), target)
    mask = array.is_null() if array.null_count else None
    if pa.types.is_struct(target):
        if not pa.types.is_struct(array.type):
            return pa.nulls(len(array), target)
        children = []
        for i in range(target.num_fields):
            field = target.field(i)
            index = array.type.get_field_index(field.name)
            child = array.field(index) if index >= 0 else pa.nulls(len(array), field.type)
            children.append(conform(child, field.type))
        return pa.StructArray.from_arrays(children, fields=list(target), mask=mask)
    if pa.types.is_list(target):
        if not _list_like(array.type):
            return pa.nulls(len(array), target)
        plain = array.cast(pa.list_(array.type.value_type))
        values = conform(plain.values, target.value_type)
        return pa.ListArray.from_arrays(plain.offsets, values, type=target, mask=mask)
    return array.cast(target, safe=not pa.types.is_timestamp(target))
