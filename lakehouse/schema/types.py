"""A small type algebra for records: null, bool, int64, float64, string, list and struct.

A table's schema is a STRUCT whose fields are its user columns. Types are frozen and hashable so
that evolution can be memoized per (table, record) pair; the hash is computed once at construction
because the per-record fast path hashes and compares whole schemas.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any, TypeAlias

import pyarrow as pa

from lakehouse.errors import InvalidInput

ROOT = "payload"  # paths in errors and evolutions start here, as in the request body


class Kind(enum.StrEnum):
    NULL = "null"
    BOOL = "bool"
    INT = "int64"
    FLOAT = "float64"
    STRING = "string"
    LIST = "list"
    STRUCT = "struct"


_PRIMITIVE_KINDS = frozenset({Kind.NULL, Kind.BOOL, Kind.INT, Kind.FLOAT, Kind.STRING})
_DESCRIBE_LIMIT = 200  # reasons end up in HTTP error bodies; a 500-column struct would swamp them


@dataclass(frozen=True, slots=True)
class FieldType:
    """One node of the type tree; build lists and structs with `list_of` and `struct_of`."""

    kind: Kind
    element: FieldType | None = None  # for LIST
    fields: tuple[tuple[str, FieldType], ...] = ()  # for STRUCT, in first-seen order
    _hash: int = dataclasses.field(init=False, repr=False, compare=False)
    _index: dict[str, int] | None = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kind = self.kind
        if type(kind) is not Kind:  # "int64" from a caller still compares by identity below
            kind = Kind(kind)
            object.__setattr__(self, "kind", kind)
        if kind is Kind.LIST:
            if self.element is None or self.fields:
                raise ValueError("a list type has an element type and no fields")
        elif kind is Kind.STRUCT:
            if self.element is not None:
                raise ValueError("a struct type has fields, not an element type")
            if len({name for name, _ in self.fields}) != len(self.fields):
                raise ValueError("a struct type's field names must differ")
        elif kind not in _PRIMITIVE_KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        elif self.element is not None or self.fields:
            raise ValueError(f"{kind} takes neither an element type nor fields")
        object.__setattr__(self, "_hash", hash((kind, self.element, self.fields)))
        object.__setattr__(self, "_index", None)

    # Written by hand: the generated ones would rehash and recompare whole trees on every lookup.
    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, FieldType):
            return NotImplemented
        return (
            self._hash == other._hash
            and self.kind is other.kind
            and self.element == other.element
            and self.fields == other.fields
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # String hashes differ between processes, so a cached hash must never travel in a pickle.
        return (FieldType, (self.kind, self.element, self.fields))

    def field(self, name: str) -> FieldType | None:
        """The type of struct field `name`, or None (also for lists and primitives)."""
        if not self.fields:
            return None
        index = self._index
        if index is None:
            index = {field_name: i for i, (field_name, _) in enumerate(self.fields)}
            object.__setattr__(self, "_index", index)
        position = index.get(name)
        return None if position is None else self.fields[position][1]

    def describe(self) -> str:
        """A compact, readable form: "int64", "list<string>", "struct<name: string, age: int64>"."""
        if self.element is not None:  # only lists have one
            return f"list<{self.element.describe()}>"
        if self.kind is Kind.STRUCT:
            inner = ", ".join(f"{name}: {t.describe()}" for name, t in self.fields)
            return f"struct<{inner}>"
        return self.kind.value

    def short(self) -> str:
        """`describe()` cut to a length that fits an error message."""
        text = self.describe()
        return text if len(text) <= _DESCRIBE_LIMIT else text[: _DESCRIBE_LIMIT - 1] + "…"

    def depth(self) -> int:
        """Levels of lists and structs, as infer counts them: 0 for a primitive, 1 for a
        struct of primitives."""
        if self.element is not None:
            return 1 + self.element.depth()
        if self.kind is Kind.STRUCT:
            return 1 + max((t.depth() for _, t in self.fields), default=0)
        return 0

    def to_json(self) -> Any:
        """The stored form: a kind name for primitives, an object for lists and structs."""
        if self.element is not None:
            return {"type": "list", "element": self.element.to_json()}
        if self.kind is Kind.STRUCT:
            return {
                "type": "struct",
                "fields": [{"name": name, "type": t.to_json()} for name, t in self.fields],
            }
        return self.kind.value

    @staticmethod
    def from_json(data: Any) -> FieldType:
        """The inverse of `to_json`; InvalidInput(code="invalid_schema") for anything else."""
        return _from_json(data, "$", 0)

    def to_arrow(self) -> pa.DataType:
        """The Arrow type of a column of this type (every level nullable)."""
        if self.element is not None:
            return pa.list_(self.element.to_arrow())
        if self.kind is Kind.STRUCT:
            return pa.struct([pa.field(name, t.to_arrow()) for name, t in self.fields])
        return _ARROW_PRIMITIVES[self.kind]()


TableSchema: TypeAlias = FieldType  # a STRUCT whose fields are the table's user columns

NULL_TYPE = FieldType(Kind.NULL)
BOOL_TYPE = FieldType(Kind.BOOL)
INT_TYPE = FieldType(Kind.INT)
FLOAT_TYPE = FieldType(Kind.FLOAT)
STRING_TYPE = FieldType(Kind.STRING)

_PRIMITIVES = {t.kind.value: t for t in (NULL_TYPE, BOOL_TYPE, INT_TYPE, FLOAT_TYPE, STRING_TYPE)}
_ARROW_PRIMITIVES = {
    Kind.NULL: pa.null,
    Kind.BOOL: pa.bool_,
    Kind.INT: pa.int64,
    Kind.FLOAT: pa.float64,
    Kind.STRING: pa.string,
}
# Stored schemas were made by infer, which stops at 32 levels; the slack only guards recursion.
_JSON_MAX_DEPTH = 64


# Canonical instances of the shapes records keep repeating. Construction is the costly part of
# inference (a frozen dataclass plus its hash), and identical objects let evolution skip its
# comparison entirely (`record is table`). Bounded: a flood of odd shapes only empties it.
_CANONICAL_LIMIT = 4096
_canonical_lists: dict[FieldType, FieldType] = {}
_canonical_structs: dict[tuple[tuple[str, FieldType], ...], FieldType] = {}


def list_of(element: FieldType) -> FieldType:
    """The list type of `element`, shared with every other list of an equal element type."""
    found = _canonical_lists.get(element)
    if found is None:
        found = FieldType(Kind.LIST, element)
        if len(_canonical_lists) >= _CANONICAL_LIMIT:
            _canonical_lists.clear()
        _canonical_lists[element] = found
    return found


def struct_of(fields: tuple[tuple[str, FieldType], ...]) -> FieldType:
    """The struct type of `fields`, shared with every other struct of equal fields."""
    found = _canonical_structs.get(fields)
    if found is None:
        found = FieldType(Kind.STRUCT, None, fields)
        if len(_canonical_structs) >= _CANONICAL_LIMIT:
            _canonical_structs.clear()
        _canonical_structs[fields] = found
    return found


EMPTY_LIST_TYPE = list_of(NULL_TYPE)


def _from_json(data: Any, where: str, depth: int) -> FieldType:
    if depth > _JSON_MAX_DEPTH:
        raise _bad_json(where, "nested too deeply")
    if isinstance(data, str):
        primitive = _PRIMITIVES.get(data)
        if primitive is None:
            raise _bad_json(where, f"unknown type {data[:40]!r}")
        return primitive
    if not isinstance(data, dict):
        raise _bad_json(where, "expected a type name or an object")
    tag = data.get("type")
    if tag == "list" and data.keys() == {"type", "element"}:
        return list_of(_from_json(data["element"], f"{where}.element", depth + 1))
    if tag == "struct" and data.keys() == {"type", "fields"} and isinstance(data["fields"], list):
        fields: list[tuple[str, FieldType]] = []
        for i, entry in enumerate(data["fields"]):
            at = f"{where}.fields[{i}]"
            if not (
                isinstance(entry, dict)
                and entry.keys() == {"name", "type"}
                and isinstance(entry["name"], str)
                and entry["name"]
            ):
                raise _bad_json(at, 'expected {"name": <non-empty string>, "type": <type>}')
            fields.append((entry["name"], _from_json(entry["type"], f"{at}.type", depth + 1)))
        if len({name for name, _ in fields}) != len(fields):
            raise _bad_json(where, "duplicate field names")
        return struct_of(tuple(fields))
    raise _bad_json(where, 'expected {"type": "list", "element": …} or {"type": "struct", …}')


def _bad_json(where: str, problem: str) -> InvalidInput:
    return InvalidInput(
        f"not a stored schema: {where}: {problem}",
        code="invalid_schema",
        details={"at": where, "problem": problem},
    )
