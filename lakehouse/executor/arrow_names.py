"""A result's names as DuckDB has them, not as its Arrow export writes them.

DuckDB hands names to Arrow as C strings, so a name holding a NUL (`SELECT 1 AS "\\u0000x"`, a
struct key `{'k\\u0000': 1}`) comes out cut at it: `""`, `"k"`. The relation still knows the
whole names (its `columns`, and its types' children), and the Arrow layout does not depend on
them, so the columns are relabelled in place (`Array.view`). Arrow's `cast` would not do:
between structs it matches fields by name, and fields whose names differ come out null.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa


def as_duckdb_names(table: pa.Table, names: Sequence[str], types: Sequence[Any]) -> pa.Table:
    """`table` (a relation's Arrow export) with `names` (its `columns`) and the field names of
    `types` (its `types`, DuckDBPyType), wherever the export cut them; `table` itself when it
    cut nothing."""
    if len(names) != table.num_columns or len(types) != table.num_columns:
        return table
    fields = [pa.field(name, _named(field.type, kind), field.nullable, field.metadata)
              for field, name, kind in zip(table.schema, names, types, strict=True)]
    schema = pa.schema(fields, table.schema.metadata)
    if schema.equals(table.schema, check_metadata=True):
        return table
    columns = [column if column.type.equals(field.type) else
               pa.chunked_array([chunk.view(field.type) for chunk in column.chunks], field.type)
               for column, field in zip(table.columns, fields, strict=True)]
    return pa.Table.from_arrays(columns, schema=schema)


def _children(kind: Any) -> list[tuple[str, Any]]:
    try:
        return list(kind.children)
    except duckdb.Error:  # a type without children (INTEGER, VARCHAR): nothing to rename
        return []


def _field(old: pa.Field, name: str, kind: Any) -> pa.Field:
    return pa.field(name, _named(old.type, kind), old.nullable, old.metadata)


def _named(arrow: pa.DataType, kind: Any) -> pa.DataType:
    """`arrow` with the names of DuckDB's `kind` at every depth where the two agree in shape."""
    children = _children(kind)
    if pa.types.is_union(arrow):
        children = children[1:]  # the first is the tag
    if pa.types.is_struct(arrow) or pa.types.is_union(arrow):
        if len(children) != arrow.num_fields:
            return arrow
        fields = [_field(arrow.field(i), name, child) for i, (name, child) in enumerate(children)]
        return (pa.struct(fields) if pa.types.is_struct(arrow)
                else pa.union(fields, arrow.mode, arrow.type_codes))
    kinds = dict(children)
    if pa.types.is_map(arrow) and "key" in kinds and "value" in kinds:
        return pa.map_(_field(arrow.key_field, arrow.key_field.name, kinds["key"]),
                       _field(arrow.item_field, arrow.item_field.name, kinds["value"]),
                       arrow.keys_sorted)
    if _is_list(arrow) and "child" in kinds:
        value = _field(arrow.value_field, arrow.value_field.name, kinds["child"])
        if pa.types.is_fixed_size_list(arrow):
            return pa.list_(value, arrow.list_size)
        return pa.large_list(value) if pa.types.is_large_list(arrow) else pa.list_(value)
    return arrow


def _is_list(arrow: pa.DataType) -> bool:
    return bool(pa.types.is_list(arrow) or pa.types.is_large_list(arrow)
                or pa.types.is_fixed_size_list(arrow))
