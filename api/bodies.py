"""Request bodies that refuse fields they do not define, and say which field was meant.

A field the server does not know, silently ignored, turns into a confident wrong answer:
`{"query": …, "snapshot_id": 3}` would read the newest snapshot instead of the third. So the
bodies of the query, optimizer and catalog endpoints refuse unknown fields (422,
`invalid_request`, a problem of type `unknown_field`), naming each one and, where it is a name
people often use for one of ours or a near miss of one, the field meant. api/errors.py renders
the refusal.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypedDict

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from lakehouse.schema.declared import DECIMAL_PATTERN, EXACT_NAMES, SCALAR_NAMES, TYPE_NAMES
from lakehouse.schema.names import NAME_PATTERN
from lakehouse.schema.types import MAX_DECIMAL_PRECISION, PRIMITIVE_NAMES, TIMESTAMP_UNIT

UNKNOWN_FIELD = "unknown_field"  # the type of the problem in the answer's details
# The rule lakehouse.schema.names enforces, as the documents state it: a generated client (or
# a fuzzer) then sends only names the platform takes. A name breaking it is still answered as
# the code always has, 400 `invalid_table_name` (api/errors.py).
class _StringRule(TypedDict):
    pattern: str
    min_length: int
    max_length: int


TABLE_NAME = _StringRule(pattern=f"^{NAME_PATTERN.pattern}$", min_length=1, max_length=63)
TABLE_NAME_RULE = "1-63 ASCII letters, digits and '_', a letter first"
# At least one character that is not white space (the code answers a blank query 400
# `empty_query` itself; the documents say so, so generated requests send real ones).
NOT_BLANK: dict[str, Any] = {"pattern": r"\S"}


# A body with a query as SQL text (`query`) or as the JSON DSL (`dsl`): exactly one of them
# not null (a null one counts as absent). Inside `allOf`: a `oneOf` beside `properties` makes
# client generators see a union of two property-less schemas and type the whole body `Any`.
ONE_FORM: dict[str, Any] = {"allOf": [{"oneOf": [
    {"required": ["query"], "properties": {"query": {"type": "string"}}},
    {"required": ["dsl"], "properties": {"dsl": {"type": "object"}}}]}]}


def listed(values: Iterable[str], *, nullable: bool = False) -> dict[str, Any]:
    """`json_schema_extra` naming the values a field takes, where the code checks them itself
    (and answers its own 400 naming them): the documents then list exactly those."""
    return {"enum": [*values, *([None] if nullable else [])]}
_CLOSE = 0.7  # how alike a misspelling must be to its field to be named as meant


class StrictBody(BaseModel):
    # strict: a JSON value of another type is refused, not converted (`false` is no number,
    # `"5"` no integer), as the documents say; an integer is still a number.
    model_config = ConfigDict(extra="forbid", strict=True)

    # Names callers send for one of this body's fields → that field's name.
    mistaken: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _integral_numbers_are_integers(cls, data: Any) -> Any:
        # JSON Schema counts 5.0 as an integer, so where a document says "integer" it admits
        # 5.0: take it as 5 (5.5 and "5" are still refused).
        if not isinstance(data, dict):
            return data
        integers = _integer_fields(cls)
        if not any(_integral_float(data.get(name)) for name in integers):
            return data
        return {key: int(value) if key in integers and _integral_float(value) else value
                for key, value in data.items()}

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_fields(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # not an object: pydantic says so itself
        known = field_names(cls)
        unknown = [str(key) for key in data if key not in known]
        if not unknown:
            return data
        problems = [_describe(cls, name, known) for name in unknown]
        if not any(" is `" in p or "did you mean" in p for p in problems):
            problems.append("the fields are: " + ", ".join(known))
        # The message goes through the context: a field name with braces is not a template.
        raise PydanticCustomError(UNKNOWN_FIELD, "{message}",
                                  {"message": "; ".join(problems), "fields": unknown})


def _integral_float(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer()


@functools.cache
def _integer_fields(model: type[BaseModel]) -> frozenset[str]:
    """The names (as sent) of `model`'s fields that take an integer and no other number."""
    found = set()
    for name, info in model.model_fields.items():
        kinds = set(typing.get_args(info.annotation)) or {info.annotation}
        if int in kinds and float not in kinds:
            found.add(info.alias or name)
    return frozenset(found)


def field_names(model: type[BaseModel]) -> list[str]:
    """The names a body accepts, in declaration order (aliases where fields have them)."""
    by_name = bool(model.model_config.get("populate_by_name"))
    names: list[str] = []
    for name, info in model.model_fields.items():
        if info.alias:
            names.append(info.alias)
        if by_name or not info.alias:
            names.append(name)
    return names


def _describe(model: type[StrictBody], name: str, known: list[str]) -> str:
    meant = model.mistaken.get(name) or model.mistaken.get(name.lower())
    if meant in known:
        return f"unknown field `{name}`: the field is `{meant}`"
    close = difflib.get_close_matches(name.lower(), known, n=1, cutoff=_CLOSE)
    if close:
        return f"unknown field `{name}`: did you mean `{close[0]}`?"
    return f"unknown field `{name}`"


def component(name: str) -> dict[str, Any]:
    """A reference to the component schema `name` that pydantic leaves alone (it resolves every
    `$ref` it meets against its own definitions); `declare_schemas` makes it a `$ref`."""
    return {_COMPONENT: name}


_COMPONENT = "x-component"


def _exactly(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties,
            "additionalProperties": False}


# The stored form of a type, as GET /metadata/tables/{table} shows it: a declaration may repeat
# it. Its struct fields' names are unique and a decimal's scale is at most its precision. Each
# form is a component of its own: client generators build a union of named models, not of
# inline objects.
_STORED_FORMS: dict[str, dict[str, Any]] = {
    "StoredList": _exactly(["type", "element"], type={"const": "list"},
                           element=component("StoredType")),
    "StoredStruct": _exactly(["type", "fields"], type={"const": "struct"}, fields={
        "type": "array", "items": component("StoredField")}),
    "StoredField": _exactly(["name", "type"], name={"type": "string", "minLength": 1},
                            type=component("StoredType")),
    "StoredDecimal": _exactly(
        ["type", "precision", "scale"], type={"const": "decimal"},
        precision={"type": "integer", "minimum": 1, "maximum": MAX_DECIMAL_PRECISION},
        scale={"type": "integer", "minimum": 0, "maximum": MAX_DECIMAL_PRECISION}),
    "StoredTimestamp": _exactly(["type"], type={"const": "timestamp"},
                                unit={"const": TIMESTAMP_UNIT},
                                tz={"anyOf": [{"type": "string", "minLength": 1, "maxLength": 64},
                                              {"type": "null"}]}),
}
_STORED_OBJECTS = [component(name) for name in (
    "StoredList", "StoredStruct", "StoredDecimal", "StoredTimestamp")]
# A declared column's type, recursively, as lakehouse/schema/declared.py reads it. A decimal's
# scale may not exceed its precision: no JSON Schema relates the two numbers in one string.
COLUMN_TYPE_SCHEMAS: dict[str, dict[str, Any]] = {
    "ColumnType": {
        "description": f"A declared column's type: {TYPE_NAMES} (a decimal's scale at most its "
                       "precision), or the stored form GET /metadata/tables/{table} shows",
        "anyOf": [
            {"type": "string", "enum": [*SCALAR_NAMES, *EXACT_NAMES]},
            {"type": "string", "pattern": f"^{DECIMAL_PATTERN}$"},
            component("ColumnList"), component("ColumnStruct"), *_STORED_OBJECTS,
        ]},
    "ColumnList": _exactly(["list"], list=component("ColumnType")),
    "ColumnStruct": _exactly(["struct"], struct={
        "type": "object", "propertyNames": {"pattern": f"^{NAME_PATTERN.pattern}$"},
        "additionalProperties": component("ColumnType")}),
    "StoredType": {
        "description": "A type as the catalog stores it (FieldType.to_json)",
        "anyOf": [{"type": "string", "enum": sorted(PRIMITIVE_NAMES)}, *_STORED_OBJECTS]},
    **_STORED_FORMS,
}


def declare_schemas(app: FastAPI, schemas: Mapping[str, dict[str, Any]]) -> None:
    """Add `schemas` to the components of `app`'s OpenAPI document: the recursive ones that
    request bodies refer to by `$ref` and no route's model declares."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            found = document.setdefault("components", {}).setdefault("schemas", {})
            _references(document)
            wanted = [name for name in schemas if f'/{name}"' in json.dumps(document)]
            while wanted:  # and what those refer to, in turn
                found.update({name: copy.deepcopy(schemas[name]) for name in wanted})
                _references(found)
                text = json.dumps(found)
                wanted = [n for n in schemas if n not in found and f'/{n}"' in text]
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _references(node: Any) -> None:
    if isinstance(node, dict):
        name = node.pop(_COMPONENT, None)
        if name is not None:
            node["$ref"] = f"#/components/schemas/{name}"
        for value in node.values():
            _references(value)
    elif isinstance(node, list):
        for value in node:
            _references(value)
