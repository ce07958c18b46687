"""Schema evolution as a pure decision: one table schema, one record type, what changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lakehouse.schema import (
    INT_TYPE,
    STRING_TYPE,
    Evolution,
    FieldType,
    Kind,
    TypeConflict,
    evolve,
    evolve_many,
    infer,
    list_of,
    struct_of,
)
from tests.golden_files import assert_golden

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "schema" / "evolution.json"

BASE = {"name": "John Doe", "age": 30, "score": 1.5, "tags": [], "note": None,
        "profile": {"skills": ["Go"], "level": 1}, "items": [{"sku": "a"}]}
BASE_SCHEMA = ("struct<name: string, age: int64, score: float64, tags: list<null>, note: null, "
               "profile: struct<skills: list<string>, level: int64>, "
               "items: list<struct<sku: string>>>")


def with_(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


# (record, the schema after it, added, promoted, conflict reasons)
CASES: list[tuple[dict[str, Any], str, list[str], list[str], list[str]]] = [
    (BASE, BASE_SCHEMA, [], [], []),
    ({"name": "x"}, BASE_SCHEMA, [], [], []),  # missing columns stay; they read as null
    ({}, BASE_SCHEMA, [], [], []),
    (with_(name=None, age=None, profile=None, items=None), BASE_SCHEMA, [], [], []),
    (with_(score=2), BASE_SCHEMA, [], [], []),  # int64 fits a float64 column
    (with_(tags=[None]), BASE_SCHEMA, [], [], []),
    (with_(profile={"level": 2}), BASE_SCHEMA, [], [], []),
    ({"items": [{"sku": "b"}, {"sku": None}]}, BASE_SCHEMA, [], [], []),
    (with_(email="j@example.com"), BASE_SCHEMA[:-1] + ", email: string>", ["payload.email"], [],
     []),
    ({"b": 1, "a": None}, BASE_SCHEMA[:-1] + ", b: int64, a: null>", ["payload.b", "payload.a"],
     [], []),
    (with_(age=30.5), BASE_SCHEMA.replace("age: int64", "age: float64"), [], ["payload.age"],
     []),
    (with_(note="hi"), BASE_SCHEMA.replace("note: null", "note: string"), [], ["payload.note"],
     []),
    (with_(note={"a": [1]}), BASE_SCHEMA.replace("note: null", "note: struct<a: list<int64>>"),
     [], ["payload.note"], []),
    (with_(tags=["x"]), BASE_SCHEMA.replace("list<null>", "list<string>"), [], ["payload.tags[]"],
     []),
    (with_(tags=[[1]]), BASE_SCHEMA.replace("list<null>", "list<list<int64>>"), [],
     ["payload.tags[]"], []),
    (with_(profile={"level": 1.5, "bio": "x"}),
     BASE_SCHEMA.replace("level: int64>", "level: float64, bio: string>"),
     ["payload.profile.bio"], ["payload.profile.level"], []),
    (with_(items=[{"sku": "a", "qty": 2}, {"sku": "b", "price": 9.5}]),
     BASE_SCHEMA.replace("sku: string", "sku: string, qty: int64, price: float64"),
     ["payload.items[].qty", "payload.items[].price"], [], []),
    (with_(age="thirty"), BASE_SCHEMA, [], [],
     ["payload.age: the column is int64 but the record has string"]),
    (with_(age=True), BASE_SCHEMA, [], [],
     ["payload.age: the column is int64 but the record has bool"]),
    (with_(score=False), BASE_SCHEMA, [], [],
     ["payload.score: the column is float64 but the record has bool"]),
    (with_(name=1), BASE_SCHEMA, [], [],
     ["payload.name: the column is string but the record has int64"]),
    (with_(name=["a"]), BASE_SCHEMA, [], [],
     ["payload.name: the column is string but the record has list<string>"]),
    (with_(age=[1]), BASE_SCHEMA, [], [],
     ["payload.age: the column is int64 but the record has list<int64>"]),
    (with_(profile="admin"), BASE_SCHEMA, [], [],
     ["payload.profile: the column is struct<skills: list<string>, level: int64> "
      "but the record has string"]),
    (with_(name={"first": "J"}), BASE_SCHEMA, [], [],
     ["payload.name: the column is string but the record has struct<first: string>"]),
    (with_(items=[["a"]]), BASE_SCHEMA, [], [],
     ["payload.items[]: the column is struct<sku: string> but the record has list<string>"]),
    (with_(profile={"skills": [1]}), BASE_SCHEMA, [], [],
     ["payload.profile.skills[]: the column is string but the record has int64"]),
    (with_(items=[{"sku": 1}]), BASE_SCHEMA, [], [],
     ["payload.items[].sku: the column is string but the record has int64"]),
    # A conflict anywhere leaves everything else unapplied too, and every conflict is reported.
    (with_(email="x", age=1.5, tags=["t"], name=2, profile={"level": "high"}), BASE_SCHEMA, [], [],
     ["payload.name: the column is string but the record has int64",
      "payload.profile.level: the column is int64 but the record has string"]),
]


@pytest.mark.parametrize(("record", "schema", "added", "promoted", "conflicts"), CASES)
def test_evolve(record: dict[str, Any], schema: str, added: list[str], promoted: list[str],
                conflicts: list[str]) -> None:
    table = infer(BASE)
    evolution = evolve(table, infer(record))
    assert evolution.schema.describe() == schema
    assert list(evolution.added) == added
    assert list(evolution.promoted) == promoted
    assert [conflict.reason() for conflict in evolution.conflicts] == conflicts
    assert evolution.changed == bool(added or promoted)
    if not evolution.changed:
        assert evolution.schema is table
    # The widened schema holds the record it was widened for: merging it again changes nothing.
    if not conflicts:
        again = evolve(evolution.schema, infer(record))
        assert not again.changed and not again.conflicts


def test_conflict_carries_both_types() -> None:
    conflict = evolve(infer(BASE), infer(with_(age="x"))).conflicts[0]
    assert conflict == TypeConflict("payload.age", INT_TYPE, STRING_TYPE)


def test_conflict_reasons_stay_short() -> None:
    wide = {f"c{i}": "x" for i in range(200)}
    reason = evolve(infer({"wide": wide}), infer({"wide": 1})).conflicts[0].reason()
    assert reason.startswith("payload.wide: the column is struct<c0: string, c1: string")
    assert reason.endswith("… but the record has int64") and len(reason) < 300


def test_first_record_defines_the_table() -> None:
    record = infer({"name": "a", "profile": {"skills": []}, "x": None})
    evolution = evolve(None, record)
    assert evolution.schema is record
    assert evolution.added == ("payload.name", "payload.profile", "payload.x")
    assert evolution.promoted == () and evolution.conflicts == () and evolution.changed


def test_a_first_record_without_fields_changes_nothing() -> None:
    evolution = evolve(None, infer({}))
    assert evolution.schema.describe() == "struct<>" and not evolution.changed


def test_same_result_however_the_types_were_built() -> None:
    # Not shared objects (built by hand): the comparison and cache must still see them equal.
    table = FieldType(Kind.STRUCT, None, (("a", FieldType(Kind.INT)),
                                          ("b", FieldType(Kind.LIST, FieldType(Kind.NULL)))))
    same = FieldType(Kind.STRUCT, None, (("a", FieldType(Kind.INT)),
                                         ("b", FieldType(Kind.LIST, FieldType(Kind.NULL)))))
    assert evolve(table, same).schema is table and not evolve(table, same).changed
    wider = FieldType(Kind.STRUCT, None, (("b", list_of(STRING_TYPE)),))
    for _ in range(2):  # computed, then cached
        evolution = evolve(table, wider)
        assert evolution.schema == struct_of((("a", INT_TYPE), ("b", list_of(STRING_TYPE))))
        assert evolution.promoted == ("payload.b[]",)


def test_evolve_many_skips_conflicting_records_only() -> None:
    records = [infer(r) for r in ({"a": 1}, {"a": "x", "b": 1}, {"c": True}, {"a": 2.5})]
    schema, evolutions = evolve_many(None, records)
    assert schema is not None
    assert schema.describe() == "struct<a: float64, c: bool>"
    assert [e.added for e in evolutions] == [("payload.a",), (), ("payload.c",), ()]
    assert [e.promoted for e in evolutions] == [(), (), (), ("payload.a",)]
    assert [len(e.conflicts) for e in evolutions] == [0, 1, 0, 0]
    assert evolutions[1].schema is evolutions[0].schema


def test_evolve_many_of_nothing() -> None:
    assert evolve_many(None, []) == (None, [])
    table = infer(BASE)
    assert evolve_many(table, []) == (table, [])


def test_evolution_is_a_value() -> None:
    table = infer(BASE)
    evolution = Evolution(table, (), (), ())
    assert not evolution.changed
    with pytest.raises(AttributeError):
        evolution.schema = table  # type: ignore[misc]


GOLDEN_RECORDS: list[dict[str, Any]] = [
    {"name": "John Doe", "age": 30, "profile": {"skills": ["Go"]}},
    {"name": "Jane Roe", "age": 41, "email": "jane@example.com"},
    {"name": "Bob", "age": 35.5},
    {"name": "Eve", "age": "forty", "vip": True},
    {"name": "Max", "tags": [], "nickname": None},
    {"name": "Ann", "tags": ["a"], "nickname": "annie", "profile": {"skills": [], "level": 3}},
    {"name": "Kim", "profile": {"skills": [1]}},
    {"name": "Lee", "orders": [{"id": 1, "total": 9.99}, {"id": 2, "coupon": "X"}]},
    {"name": "Ray", "age": 28, "orders": [{"id": 3, "total": 10, "items": ["pen"]}]},
    {"name": 7, "active": True},
    {"active": False, "profile": {"level": 4.5}, "orders": [{"items": [], "id": None}]},
]


def golden_text() -> str:
    schema, evolutions = evolve_many(None, [infer(record) for record in GOLDEN_RECORDS])
    assert schema is not None
    steps = [
        {"record": record,
         "added": list(evolution.added),
         "promoted": list(evolution.promoted),
         "conflicts": [conflict.reason() for conflict in evolution.conflicts],
         "schema": evolution.schema.describe()}
        for record, evolution in zip(GOLDEN_RECORDS, evolutions, strict=True)
    ]
    document = {"steps": steps, "final_schema": schema.to_json()}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def test_golden_evolution() -> None:
    """Set UPDATE_GOLDEN=1 to rewrite the file; then read the diff before committing it."""
    actual = golden_text()
    assert_golden(GOLDEN, actual, "schema evolution")
    stored = json.loads(actual)["final_schema"]
    assert FieldType.from_json(stored).to_json() == stored


EXACT_TABLE = struct_of((("amount", FieldType(Kind.DECIMAL, precision=10, scale=2)),
                         ("ts", FieldType(Kind.TIMESTAMP, tz="UTC")),
                         ("day", FieldType(Kind.DATE)),
                         ("n", INT_TYPE)))
# (record type, the schema after it, promoted, conflicting paths)
EXACT_CASES: list[tuple[FieldType, str, list[str], list[str]]] = [
    (infer({"amount": 1, "ts": "2026-01-01", "day": "2026-01-01"}), EXACT_TABLE.describe(),
     [], []),  # JSON values that convert leave the exact types as they are
    (infer({"amount": "1.5"}), EXACT_TABLE.describe(), [], []),
    (infer({"amount": True}), EXACT_TABLE.describe(), [], ["payload.amount"]),
    (infer({"ts": 5}), EXACT_TABLE.describe(), [], ["payload.ts"]),
    (infer({"day": {"y": 1}}), EXACT_TABLE.describe(), [], ["payload.day"]),
    (struct_of((("amount", FieldType(Kind.DECIMAL, precision=20, scale=4)),)),
     EXACT_TABLE.describe().replace("decimal(10, 2)", "decimal(20, 4)"), ["payload.amount"], []),
    (struct_of((("n", FieldType(Kind.DECIMAL, precision=5, scale=1)),)),
     EXACT_TABLE.describe().replace("n: int64", "n: decimal(20, 1)"), ["payload.n"], []),
    (struct_of((("amount", FieldType(Kind.DECIMAL, precision=38, scale=31)),)),
     EXACT_TABLE.describe(), [], ["payload.amount"]),  # 8 + 31 digits would not fit 38
    (struct_of((("ts", FieldType(Kind.TIMESTAMP)),)), EXACT_TABLE.describe(), [],
     ["payload.ts"]),  # timestamps of two zones
]


@pytest.mark.parametrize(("record", "schema", "promoted", "conflicts"), EXACT_CASES)
def test_exact_columns_take_what_converts_and_widen_like_loads(
        record: FieldType, schema: str, promoted: list[str], conflicts: list[str]) -> None:
    evolution = evolve(EXACT_TABLE, record)
    assert [c.path for c in evolution.conflicts] == conflicts
    assert list(evolution.promoted) == promoted
    assert evolution.schema.describe() == schema
