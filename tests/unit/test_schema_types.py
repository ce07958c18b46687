"""The type algebra: descriptions, the stored JSON form, Arrow types, identity and purity."""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakehouse.errors import InvalidInput
from lakehouse.schema import (
    BOOL_TYPE,
    FLOAT_TYPE,
    INT_TYPE,
    NULL_TYPE,
    STRING_TYPE,
    FieldType,
    Kind,
    list_of,
    struct_of,
)

PROFILE = struct_of((("skills", list_of(STRING_TYPE)), ("level", INT_TYPE)))
PERSON = struct_of((("name", STRING_TYPE), ("age", INT_TYPE), ("profile", PROFILE)))
ORDERS = list_of(struct_of((("id", INT_TYPE), ("items", list_of(list_of(FLOAT_TYPE))))))

TYPES = [NULL_TYPE, BOOL_TYPE, INT_TYPE, FLOAT_TYPE, STRING_TYPE, list_of(NULL_TYPE),
         list_of(STRING_TYPE), list_of(list_of(INT_TYPE)), struct_of(()), PROFILE, PERSON,
         ORDERS, struct_of((("orders", ORDERS), ("empty", struct_of(())), ("x", NULL_TYPE)))]


@pytest.mark.parametrize(
    ("field_type", "text"),
    [(NULL_TYPE, "null"), (BOOL_TYPE, "bool"), (INT_TYPE, "int64"), (FLOAT_TYPE, "float64"),
     (STRING_TYPE, "string"), (list_of(NULL_TYPE), "list<null>"),
     (list_of(list_of(STRING_TYPE)), "list<list<string>>"), (struct_of(()), "struct<>"),
     (struct_of((("name", STRING_TYPE), ("age", INT_TYPE))), "struct<name: string, age: int64>"),
     (PERSON, "struct<name: string, age: int64, "
              "profile: struct<skills: list<string>, level: int64>>"),
     (ORDERS, "list<struct<id: int64, items: list<list<float64>>>>")],
)
def test_describe(field_type: FieldType, text: str) -> None:
    assert field_type.describe() == text


def test_short_cuts_long_descriptions() -> None:
    wide = struct_of(tuple((f"column_{i}", STRING_TYPE) for i in range(100)))
    assert len(wide.short()) == 200 and wide.short().endswith("…")
    assert PERSON.short() == PERSON.describe()


@pytest.mark.parametrize("field_type", TYPES, ids=lambda t: t.describe())
def test_json_round_trip(field_type: FieldType) -> None:
    stored = field_type.to_json()
    assert FieldType.from_json(stored) == field_type
    assert FieldType.from_json(json.loads(json.dumps(stored))) == field_type


def test_json_form_is_stable() -> None:
    assert PERSON.to_json() == {
        "type": "struct",
        "fields": [
            {"name": "name", "type": "string"},
            {"name": "age", "type": "int64"},
            {"name": "profile", "type": {"type": "struct", "fields": [
                {"name": "skills", "type": {"type": "list", "element": "string"}},
                {"name": "level", "type": "int64"},
            ]}},
        ],
    }


@pytest.mark.parametrize(
    ("data", "at"),
    [(None, "$"), (1, "$"), ("int", "$"), ("list", "$"), ({}, "$"), ({"type": "map"}, "$"),
     ({"type": "list"}, "$"), ({"type": "list", "element": "x"}, "$.element"),
     ({"type": "list", "element": "int64", "extra": 1}, "$"),
     ({"type": "struct", "fields": {}}, "$"), ({"type": "struct", "fields": [1]}, "$.fields[0]"),
     ({"type": "struct", "fields": [{"name": "", "type": "int64"}]}, "$.fields[0]"),
     ({"type": "struct", "fields": [{"name": 1, "type": "int64"}]}, "$.fields[0]"),
     ({"type": "struct", "fields": [{"name": "a"}]}, "$.fields[0]"),
     ({"type": "struct", "fields": [{"name": "a", "type": "bad"}]}, "$.fields[0].type"),
     ({"type": "struct", "fields": [{"name": "a", "type": "int64"},
                                    {"name": "a", "type": "string"}]}, "$")],
)
def test_from_json_refuses_what_to_json_never_writes(data: Any, at: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        FieldType.from_json(data)
    assert refused.value.code == "invalid_schema"
    assert refused.value.details["at"] == at


def test_from_json_refuses_runaway_nesting_without_recursion_error() -> None:
    data: Any = "int64"
    for _ in range(10_000):
        data = {"type": "list", "element": data}
    with pytest.raises(InvalidInput):
        FieldType.from_json(data)


@pytest.mark.parametrize(
    ("field_type", "arrow"),
    [(NULL_TYPE, pa.null()), (BOOL_TYPE, pa.bool_()), (INT_TYPE, pa.int64()),
     (FLOAT_TYPE, pa.float64()), (STRING_TYPE, pa.string()),
     (list_of(NULL_TYPE), pa.list_(pa.null())),
     (list_of(list_of(INT_TYPE)), pa.list_(pa.list_(pa.int64()))),
     (PERSON, pa.struct([("name", pa.string()), ("age", pa.int64()),
                         ("profile", pa.struct([("skills", pa.list_(pa.string())),
                                                ("level", pa.int64())]))])),
     (ORDERS, pa.list_(pa.struct([("id", pa.int64()),
                                  ("items", pa.list_(pa.list_(pa.float64())))])))],
)
def test_to_arrow(field_type: FieldType, arrow: pa.DataType) -> None:
    assert field_type.to_arrow() == arrow


def test_to_arrow_holds_real_nested_rows() -> None:
    rows = [{"name": "John Doe", "age": 30, "profile": {"skills": ["Go"], "level": None}},
            {"name": None, "age": None, "profile": None}]
    column = pa.array(rows, type=PERSON.to_arrow())
    assert column.to_pylist() == rows
    assert all(field.nullable for field in PERSON.to_arrow())


def test_field_lookup() -> None:
    assert PERSON.field("age") == INT_TYPE
    assert PERSON.field("profile") == PROFILE
    assert PERSON.field("missing") is None
    assert INT_TYPE.field("age") is None
    assert list_of(PERSON).field("age") is None


@pytest.mark.parametrize(
    ("kind", "element", "fields"),
    [(Kind.LIST, None, ()), (Kind.LIST, INT_TYPE, (("a", INT_TYPE),)),
     (Kind.STRUCT, INT_TYPE, ()), (Kind.INT, INT_TYPE, ()), (Kind.STRING, None, (("a", INT_TYPE),)),
     (Kind.STRUCT, None, (("a", INT_TYPE), ("a", STRING_TYPE))), ("decimal", None, ())],
)
def test_malformed_types_cannot_be_built(kind: Any, element: Any, fields: Any) -> None:
    with pytest.raises(ValueError, match=r"list|struct|takes|decimal"):
        FieldType(kind, element, fields)


def test_equal_types_are_interchangeable_however_they_were_built() -> None:
    built = FieldType(Kind.STRUCT, None, (
        ("name", FieldType(Kind.STRING)), ("age", FieldType("int64")),  # type: ignore[arg-type]
        ("profile", FieldType(Kind.STRUCT, None, (
            ("skills", FieldType(Kind.LIST, FieldType(Kind.STRING))), ("level", INT_TYPE)))),
    ))
    assert built == PERSON and hash(built) == hash(PERSON)
    assert built.kind is Kind.STRUCT and built.field("age") is not None
    assert built != PROFILE
    assert (built == "struct") is False
    assert {built: 1}[PERSON] == 1
    assert INT_TYPE != FLOAT_TYPE and list_of(INT_TYPE) != list_of(FLOAT_TYPE)
    # Field order is part of the type: it is the column order of the table.
    assert struct_of((("a", INT_TYPE), ("b", INT_TYPE))) != struct_of((("b", INT_TYPE),
                                                                       ("a", INT_TYPE)))


def test_shapes_are_shared() -> None:
    # Evolution's fast path is `record is table`; it holds for shapes built the usual ways.
    stored = {"type": "struct", "fields": [{"name": "shared_probe", "type": PROFILE.to_json()}]}
    assert FieldType.from_json(stored) is struct_of((("shared_probe", PROFILE),))
    assert list_of(FieldType(Kind.STRING)) is list_of(STRING_TYPE)


def test_a_type_pickled_in_another_process_is_equal_here() -> None:
    # Dask ships types between processes, whose string hashes differ: a cached hash must not
    # travel with the pickle.
    script = ("import pickle, sys; from tests.unit.test_schema_types import PERSON; "
              "sys.stdout.buffer.write(pickle.dumps(PERSON))")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(root)}
    shipped = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True,
                             env=env, cwd=root, timeout=120).stdout
    received = pickle.loads(shipped)  # noqa: S301 - bytes we just made ourselves
    assert received == PERSON and hash(received) == hash(PERSON)
    assert {PERSON: "found"}[received] == "found"


# pandas and pandera compute the value checks of declared tables over in-memory frames.
ALLOWED_IMPORTS = {"__future__", "collections.abc", "dataclasses", "enum", "functools", "math",
                   "datetime", "decimal", "zoneinfo",
                   "pyarrow", "re", "typing", "lakehouse.errors", "pandas", "pandera.pandas",
                   "pandera.errors",
                   # Computation on values, no I/O: str_matches patterns run on its RE2.
                   "pyarrow.compute"}


def test_schema_package_is_pure() -> None:
    """Only the standard library's pure parts, pyarrow's types and our own errors (DESIGN §3)."""
    package = Path(__file__).resolve().parents[2] / "lakehouse" / "schema"
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name in ALLOWED_IMPORTS or name.startswith("lakehouse.schema"), (
                    f"{module.name} imports {name}")
