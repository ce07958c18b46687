"""Inference of a record's type from its JSON payload, and every refusal with its path."""

from __future__ import annotations

import enum
import json
from collections import OrderedDict
from typing import Any

import pytest

from lakehouse.errors import InvalidInput
from lakehouse.schema import MAX_DEPTH, FieldType, infer
from lakehouse.schema.infer import INT64_MAX, INT64_MIN


def column(value: Any) -> str:
    return infer({"v": value}).fields[0][1].describe()


@pytest.mark.parametrize(
    ("value", "described"),
    [(None, "null"), (True, "bool"), (False, "bool"), (0, "int64"), (-7, "int64"),
     (INT64_MAX, "int64"), (INT64_MIN, "int64"), (0.0, "float64"), (1.5, "float64"),
     (1e308, "float64"), ("", "string"), ("John", "string"), ([], "list<null>"),
     ([None], "list<null>"), ([None, None], "list<null>"), ([1, 2], "list<int64>"),
     ([1.5], "list<float64>"), ([True, False], "list<bool>"), (["a"], "list<string>"),
     ([1, 2.5], "list<float64>"), ([2.5, 1], "list<float64>"), ([None, "a"], "list<string>"),
     (["a", None], "list<string>"), ([[], [1]], "list<list<int64>>"),
     ([[1], [2.5]], "list<list<float64>>"), ([[None], []], "list<list<null>>"),
     ({}, "struct<>"), ({"a": None}, "struct<a: null>"),
     ({"a": {"b": [1]}}, "struct<a: struct<b: list<int64>>>"),
     ([{"a": 1}, {"b": "x"}], "list<struct<a: int64, b: string>>"),
     ([{"a": 1}, {"a": 2.5, "b": None}], "list<struct<a: float64, b: null>>"),
     ([{"a": None}, {"a": [1]}], "list<struct<a: list<int64>>>"),
     ([None, {"a": 1}], "list<struct<a: int64>>"), ([{}, {"a": 1}], "list<struct<a: int64>>")],
)
def test_value_types(value: Any, described: str) -> None:
    assert column(value) == described


def test_the_brief_example() -> None:
    payload = json.loads('{"name": "John Doe", "age": 30, "profile": {"skills": ["Go"]}}')
    assert infer(payload).describe() == (
        "struct<name: string, age: int64, profile: struct<skills: list<string>>>")


def test_fields_keep_the_payload_order() -> None:
    names = ["zeta", "alpha", "Mid", "b2"]
    assert [name for name, _ in infer(dict.fromkeys(names, 1)).fields] == names


def test_bool_is_not_an_int() -> None:
    assert infer({"a": True, "b": 1}).describe() == "struct<a: bool, b: int64>"
    assert refusal({"flags": [True, 1]}).code == "mixed_list"


class Level(enum.IntEnum):
    LOW = 1


@pytest.mark.parametrize(
    ("value", "described"),
    [(OrderedDict(a=1), "struct<a: int64>"), ((1, 2), "list<int64>"), (Level.LOW, "int64"),
     ([Level.LOW, 2], "list<int64>")],
)
def test_python_values_a_parser_does_not_make(value: Any, described: str) -> None:
    assert column(value) == described


def refusal(payload: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused:
        infer(payload)
    assert refused.value.http_status == 400
    return refused.value


@pytest.mark.parametrize(
    ("payload", "code", "path"),
    [({"bad-name": 1}, "invalid_field_name", "payload.bad-name"),
     ({"_system": 1}, "invalid_field_name", "payload._system"),
     ({"1st": 1}, "invalid_field_name", "payload.1st"),
     ({"": 1}, "invalid_field_name", "payload."),
     ({"naïve": 1}, "invalid_field_name", "payload.naïve"),
     ({"x" * 64: 1}, "invalid_field_name", "payload." + "x" * 64),
     ({"data_id": "user-001"}, "invalid_field_name", "payload.data_id"),
     ({"profile": {"skills": ["Go"], "bad name": 1}}, "invalid_field_name",
      "payload.profile.bad name"),
     ({"items": [{"ok": 1}, {"_x": 1}]}, "invalid_field_name", "payload.items[]._x"),
     ({1: 1}, "invalid_field_name", "payload.1"),
     ({"age": 2**63}, "integer_out_of_range", "payload.age"),
     ({"age": -(2**63) - 1}, "integer_out_of_range", "payload.age"),
     ({"a": {"b": 10**30}}, "integer_out_of_range", "payload.a.b"),
     ({"ids": [1, 2**64]}, "integer_out_of_range", "payload.ids[]"),
     ({"ids": [1, 2**64, "a"]}, "integer_out_of_range", "payload.ids[]"),
     ({"x": json.loads("NaN")}, "non_finite_number", "payload.x"),
     ({"x": float("inf")}, "non_finite_number", "payload.x"),
     ({"x": {"y": [1.0, float("-inf")]}}, "non_finite_number", "payload.x.y[]"),
     ({"tags": [1, "a"]}, "mixed_list", "payload.tags"),
     ({"tags": [True, 1]}, "mixed_list", "payload.tags"),
     ({"tags": [1, [1]]}, "mixed_list", "payload.tags"),
     ({"tags": [{}, 1]}, "mixed_list", "payload.tags"),
     ({"p": {"tags": [[1], ["a"]]}}, "mixed_list", "payload.p.tags"),
     ({"items": [{"a": 1}, {"a": "x"}]}, "mixed_list", "payload.items"),
     ({"x": {1, 2}}, "unsupported_value", "payload.x"),
     ({"x": [b"bytes"]}, "unsupported_value", "payload.x[]")],
)
def test_refusals_name_the_path(payload: Any, code: str, path: str) -> None:
    refused = refusal(payload)
    assert (refused.code, refused.details["path"]) == (code, path)
    assert path in refused.message


def test_mixed_list_says_where_and_which_types() -> None:
    refused = refusal({"items": [{"a": 1}, {"a": "x"}]})
    assert refused.details == {"path": "payload.items", "at": "payload.items[].a",
                               "types": ["int64", "string"]}


def test_data_id_is_a_field_name_below_the_top() -> None:
    assert infer({"ref": {"data_id": "x"}}).describe() == "struct<ref: struct<data_id: string>>"
    assert infer({"refs": [{"data_id": 1}]}).describe() == (
        "struct<refs: list<struct<data_id: int64>>>")
    # Names seen nested are remembered as good; that must not let them through at the top.
    assert refusal({"data_id": 1}).code == "invalid_field_name"


def test_a_name_refused_once_is_refused_again() -> None:
    for _ in range(2):
        assert refusal({"ok": 1, "no-k": 2}).details["field"] == "no-k"


def test_a_huge_name_is_echoed_only_in_part() -> None:
    refused = refusal({"-" * 100_000: 1})
    assert refused.details["field"] == "-" * 100
    assert len(refused.details["path"]) < 120


def test_the_payload_must_be_an_object() -> None:
    for payload in ([1], "x", None, 1):
        refused = refusal(payload)
        assert (refused.code, refused.details["path"]) == ("invalid_payload", "payload")


def nested_objects(levels: int) -> dict[str, Any]:
    """A payload `levels` deep, the payload itself being the first level."""
    payload: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        payload = {"a": payload}
    return payload


def nested_lists(levels: int) -> dict[str, Any]:
    value: Any = [1]
    for _ in range(levels - 2):
        value = [value]
    return {"a": value}


def nested_mixed(levels: int) -> dict[str, Any]:
    value: Any = 1
    for level in range(levels - 1):
        value = [value] if level % 2 == 0 else {"a": value}
    return {"a": value}


@pytest.mark.parametrize("make", [nested_objects, nested_lists, nested_mixed])
def test_depth_limit(make: Any) -> None:
    accepted = infer(make(MAX_DEPTH))
    assert accepted.depth() == MAX_DEPTH
    refused = refusal(make(MAX_DEPTH + 1))
    assert refused.code == "too_deep"
    assert refused.details["max_depth"] == 32
    assert refused.details["path"].count(".") + refused.details["path"].count("[]") == MAX_DEPTH


def test_depth_limit_paths() -> None:
    assert refusal(nested_objects(33)).details["path"] == "payload" + ".a" * 32
    assert refusal(nested_lists(33)).details["path"] == "payload.a" + "[]" * 31


def test_hostile_depth_is_refused_before_recursion_runs_out() -> None:
    assert refusal(nested_objects(100_000)).code == "too_deep"


def test_depth_counts_lists_and_objects_alike() -> None:
    assert infer(nested_mixed(MAX_DEPTH)).depth() == MAX_DEPTH
    assert refusal(nested_mixed(MAX_DEPTH + 1)).code == "too_deep"


def test_same_shape_gives_equal_types() -> None:
    first = infer({"name": "a", "tags": ["x"], "profile": {"level": 1}})
    second = infer(json.loads('{"name": "b", "tags": ["y", "z"], "profile": {"level": 2}}'))
    assert first == second and hash(first) == hash(second)
    assert isinstance(first, FieldType)
