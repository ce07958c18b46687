"""The columns of a relation a query reads no rows of, typed as the schema view types them.

A relation's Arrow schema usually comes from its files or from the log's rows. A table with
neither — declared and not written yet, or with every file pruned by the query's conditions —
still has columns: without them `SELECT *` would answer no columns and every column would be
typed NULL. The view already holds each column's DuckDB type (from the catalog's schema, or the
newest file's), so DuckDB itself turns those types into Arrow: one source of truth for types,
no second mapping to keep in step.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa

from lakehouse.executor.sandbox import run_sql
from lakehouse.ingest.flush_rows import SYSTEM_FIELDS
from lakehouse.sql.schema_view import SchemaView

# Files store `_timestamp` in UTC; DuckDB hands TIMESTAMPTZ over in its session's zone.
_STORED_ZONE = "UTC"


def empty_relations(view: SchemaView, tables: Mapping[str, str]) -> dict[str, pa.Schema]:
    """relation → the Arrow schema of its table's columns, for each (relation, table) whose
    table the view knows. One DuckDB statement types them all."""
    casts: list[str] = []
    wanted: dict[str, list[tuple[str, int]]] = {}
    for relation, name in tables.items():
        table = view.table(name)
        if table is None:
            continue
        for column in table.columns:
            wanted.setdefault(relation, []).append((column.name, len(casts)))
            # The type is the view's own DuckDB type text and the alias a number: nothing a
            # caller wrote reaches this SQL.
            casts.append(f"CAST(NULL AS {column.type}) AS c{len(casts)}")
    if not casts:
        return {}
    typed = run_sql({}, f"SELECT {', '.join(casts)} LIMIT 0", 1).schema
    out = {}
    for relation, columns in wanted.items():
        fields = [_stored(typed.field(index).with_name(name)) for name, index in columns]
        # The files' own columns the view does not offer (`_seq`, what a count(*) reads).
        fields += [f for f in SYSTEM_FIELDS if f.name not in {g.name for g in fields}]
        out[relation] = pa.schema(fields)
    return out


def _stored(field: pa.Field) -> pa.Field:
    if pa.types.is_timestamp(field.type) and field.type.tz is not None:
        return field.with_type(pa.timestamp(field.type.unit, _STORED_ZONE))
    return field
