"""The SchemaView: stored schemas become typed columns, lookups ignore case like DuckDB."""

from __future__ import annotations

from typing import Any

import pytest

from lakehouse.errors import InvalidInput
from lakehouse.ingest.flush_rows import SYSTEM_FIELDS
from lakehouse.schema.types import (
    BOOL_TYPE,
    FLOAT_TYPE,
    INT_TYPE,
    NULL_TYPE,
    STRING_TYPE,
    FieldType,
    list_of,
    struct_of,
)
from lakehouse.sql.schema_view import SYSTEM_COLUMNS, SchemaView, sql_type


def test_system_columns_match_what_data_files_hold() -> None:
    arrow = {f.name: str(f.type) for f in SYSTEM_FIELDS}
    expected = {"data_id": "string", "_timestamp": "timestamp[us, tz=UTC]"}
    assert {name: arrow[name] for name, _ in SYSTEM_COLUMNS} == expected
    assert dict(SYSTEM_COLUMNS) == {"data_id": "VARCHAR", "_timestamp": "TIMESTAMPTZ"}


@pytest.mark.parametrize(("field", "expected"), [
    (BOOL_TYPE, "BOOLEAN"), (INT_TYPE, "BIGINT"), (FLOAT_TYPE, "DOUBLE"),
    (STRING_TYPE, "VARCHAR"), (NULL_TYPE, "NULL"), (list_of(INT_TYPE), "BIGINT[]"),
    (list_of(list_of(STRING_TYPE)), "VARCHAR[][]"),
    (struct_of((("age", INT_TYPE), ("tags", list_of(STRING_TYPE)))),
     'STRUCT("age" BIGINT, "tags" VARCHAR[])'),
])
def test_sql_types_from_stored_schemas(field: FieldType, expected: str) -> None:
    assert sql_type(field.to_json()) == expected


@pytest.mark.parametrize("stored", [
    "int32", {"type": "map"}, {"type": "struct"}, {"type": "struct", "fields": [{"x": 1}]},
    {"type": "list"}, 7,
])
def test_malformed_schemas_are_refused(stored: Any) -> None:
    with pytest.raises(InvalidInput):
        SchemaView.from_schemas("acme", {"t": {"type": "struct", "fields": [
            {"name": "c", "type": stored}]}})


def test_columns_in_order_and_lookups_without_case() -> None:
    schema = struct_of((("userName", STRING_TYPE), ("age", INT_TYPE))).to_json()
    view = SchemaView.from_schemas("acme", {"People": schema})
    table = view.table("people")
    assert table is not None and view.table("PEOPLE") is table
    assert [c.name for c in table.columns] == ["data_id", "_timestamp", "userName", "age"]
    column = table.column("USERNAME")
    assert column is not None and column.name == "userName"
    assert view.table("nobody") is None
    assert view.to_json()["tenant"] == "acme"
