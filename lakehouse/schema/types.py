"""The one type system of tables: what records, loads, declarations and the catalog speak.

JSON values give null, bool, int64, float64, string, list and struct; loads and declarations
also bring the exact types a JSON value is converted into: decimal(p, s), timestamp (always
microseconds, with or without a time zone), date and time. A table's schema is a STRUCT whose
fields are its user columns, and `to_arrow()` of it is exactly the schema of its data files.

Types are frozen and hashable so that evolution can be memoized per (table, record) pair; the
hash is computed once at construction because the per-record fast path hashes and compares
whole schemas.
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
    DECIMAL = "decimal"
    TIMESTAMP = "timestamp"
    DATE = "date"
    TIME = "time"
    LIST = "list"
    STRUCT = "struct"


_PRIMITIVE_KINDS = frozenset({Kind.NULL, Kind.BOOL, Kind.INT, Kind.FLOAT, Kind.STRING,
                              Kind.DATE, Kind.TIME})
# Kinds no JSON value has: a JSON value is converted into them (see lakehouse.schema.coerce).
EXACT_KINDS = frozenset({Kind.DECIMAL, Kind.TIMESTAMP, Kind.DATE, Kind.TIME})
MAX_DECIMAL_PRECISION = 76  # decimal256's; up to 38 digits a column is a decimal128
TIMESTAMP_UNIT = "us"  # every file stores microseconds: loads truncate nanoseconds
_DESCRIBE_LIMIT = 200  # reasons end up in HTTP error bodies; a 500-column struct would swamp them


@dataclass(frozen=True, slots=True)
class FieldType:
    """One node of the type tree; build lists and structs with `list_of` and `struct_of`."""

    kind: Kind
    element: FieldType | None = None  # for LIST
    fields: tuple[tuple[str, FieldType], ...] = ()  # for STRUCT, in first-seen order
    precision: int = 0  # for DECIMAL
    scale: int = 0  # for DECIMAL
    tz: str | None = None  # for TIMESTAMP: None is a naive (wall-clock) timestamp
    _hash: int = dataclasses.field(init=False, repr=False, compare=False)
    # Whether an exact kind occurs anywhere in the tree: records written to such a table have
    # their values converted, so the fast paths that store JSON types as they are step aside.
    exact: bool = dataclasses.field(init=False, repr=False, compare=False)
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
        elif kind is Kind.DECIMAL:
            if not 0 <= self.scale <= self.precision <= MAX_DECIMAL_PRECISION or (
                    self.precision < 1):
                raise ValueError(f"decimal({self.precision}, {self.scale}) is not a decimal "
                                 f"type: 1 <= precision <= {MAX_DECIMAL_PRECISION}, "
                                 "0 <= scale <= precision")
        elif kind is not Kind.TIMESTAMP and kind not in _PRIMITIVE_KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        if kind not in (Kind.LIST, Kind.STRUCT) and (self.element is not None or self.fields):
            raise ValueError(f"{kind} takes neither an element type nor fields")
        if kind is not Kind.DECIMAL and (self.precision or self.scale):
            raise ValueError(f"{kind} takes no precision or scale")
        if kind is not Kind.TIMESTAMP and self.tz is not None:
            raise ValueError(f"{kind} takes no time zone")
        object.__setattr__(self, "_hash", hash((kind, self.element, self.fields,
                                                self.precision, self.scale, self.tz)))
        object.__setattr__(self, "_index", None)
        object.__setattr__(self, "exact", kind in EXACT_KINDS or (
            self.element is not None and self.element.exact) or any(
                t.exact for _, t in self.fields))

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
            and self.precision == other.precision
            and self.scale == other.scale
            and self.tz == other.tz
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # String hashes differ between processes, so a cached hash must never travel in a pickle.
        return (FieldType, (self.kind, self.element, self.fields, self.precision, self.scale,
                            self.tz))

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
        if self.kind is Kind.DECIMAL:
            return f"decimal({self.precision}, {self.scale})"
        if self.kind is Kind.TIMESTAMP:
            zone = f", tz={self.tz}" if self.tz is not None else ""
            return f"timestamp[{TIMESTAMP_UNIT}{zone}]"
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
        if self.kind is Kind.DECIMAL:
            return {"type": "decimal", "precision": self.precision, "scale": self.scale}
        if self.kind is Kind.TIMESTAMP:
            return {"type": "timestamp", "unit": TIMESTAMP_UNIT, "tz": self.tz}
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
        if self.kind is Kind.DECIMAL:
            if self.precision <= DECIMAL128_PRECISION:
                return pa.decimal128(self.precision, self.scale)
            return pa.decimal256(self.precision, self.scale)
        if self.kind is Kind.TIMESTAMP:
            return pa.timestamp(TIMESTAMP_UNIT, tz=self.tz)
        return _ARROW_PRIMITIVES[self.kind]()


TableSchema: TypeAlias = FieldType  # a STRUCT whose fields are the table's user columns
DECIMAL128_PRECISION = 38


def decimal_type(precision: int, scale: int) -> FieldType:
    return FieldType(Kind.DECIMAL, precision=precision, scale=scale)


def timestamp_type(tz: str | None = None) -> FieldType:
    return FieldType(Kind.TIMESTAMP, tz=tz)


NULL_TYPE = FieldType(Kind.NULL)
BOOL_TYPE = FieldType(Kind.BOOL)
INT_TYPE = FieldType(Kind.INT)
FLOAT_TYPE = FieldType(Kind.FLOAT)
STRING_TYPE = FieldType(Kind.STRING)
DATE_TYPE = FieldType(Kind.DATE)
TIME_TYPE = FieldType(Kind.TIME)

_PRIMITIVES = {t.kind.value: t for t in (NULL_TYPE, BOOL_TYPE, INT_TYPE, FLOAT_TYPE, STRING_TYPE,
                                         DATE_TYPE, TIME_TYPE)}
PRIMITIVE_NAMES = frozenset(_PRIMITIVES)
_ARROW_PRIMITIVES = {
    Kind.NULL: pa.null,
    Kind.BOOL: pa.bool_,
    Kind.INT: pa.int64,
    Kind.FLOAT: pa.float64,
    Kind.STRING: pa.string,
    Kind.DATE: pa.date32,
    Kind.TIME: lambda: pa.time64(TIMESTAMP_UNIT),
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
    return _exact_from_json(data, tag, where)


def _exact_from_json(data: dict[str, Any], tag: Any, where: str) -> FieldType:
    if tag == "decimal" and data.keys() == {"type", "precision", "scale"}:
        precision, scale = data["precision"], data["scale"]
        if type(precision) is int and type(scale) is int and (
                0 <= scale <= precision <= MAX_DECIMAL_PRECISION and precision >= 1):
            return decimal_type(precision, scale)
        raise _bad_json(where, f"a decimal has 1 <= precision <= {MAX_DECIMAL_PRECISION} "
                               "and 0 <= scale <= precision")
    if tag == "timestamp" and data.keys() <= {"type", "unit", "tz"} and data.get(
            "unit", TIMESTAMP_UNIT) == TIMESTAMP_UNIT:
        tz = data.get("tz")
        if tz is None or (isinstance(tz, str) and 0 < len(tz) <= 64):
            return timestamp_type(tz)
        raise _bad_json(where, "a timestamp's tz is a time zone name or null")
    raise _bad_json(where, 'expected {"type": "list", "element": …}, {"type": "struct", …}, '
                           '{"type": "decimal", …} or {"type": "timestamp", …}')


def _bad_json(where: str, problem: str) -> InvalidInput:
    return InvalidInput(
        f"not a stored schema: {where}: {problem}",
        code="invalid_schema",
        details={"at": where, "problem": problem},
    )


def from_arrow(kind: pa.DataType) -> FieldType:  # noqa: PLR0911 - one return per kind
    """The FieldType of an Arrow type as data files hold it (`to_arrow()`'s inverse); other
    widths of the same kind map to it (int32 → int64, float32 → float64, date64 → date).
    ValueError for a type no table holds (binary, maps, unions, durations)."""
    if pa.types.is_dictionary(kind):
        return from_arrow(kind.value_type)
    if pa.types.is_null(kind):
        return NULL_TYPE
    if pa.types.is_boolean(kind):
        return BOOL_TYPE
    if pa.types.is_integer(kind):
        return INT_TYPE
    if pa.types.is_floating(kind):
        return FLOAT_TYPE
    if pa.types.is_decimal(kind):
        return decimal_type(kind.precision, kind.scale)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or (
            pa.types.is_string_view(kind)):
        return STRING_TYPE
    if pa.types.is_timestamp(kind):
        return timestamp_type(kind.tz)
    if pa.types.is_date(kind):
        return DATE_TYPE
    if pa.types.is_time(kind):
        return TIME_TYPE
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)
            or pa.types.is_fixed_size_list(kind) or pa.types.is_list_view(kind)
            or pa.types.is_large_list_view(kind)):
        return list_of(from_arrow(kind.value_type))
    if pa.types.is_struct(kind):
        return struct_of(tuple((kind.field(i).name, from_arrow(kind.field(i).type))
                               for i in range(kind.num_fields)))
    raise ValueError(f"no table column has type {kind}")


def schema_from_arrow(columns: pa.Schema) -> FieldType:
    """A table schema (a STRUCT of its user columns) from the Arrow schema of those columns."""
    return struct_of(tuple((field.name, from_arrow(field.type)) for field in columns))


def json_shadow(kind: FieldType) -> FieldType:
    """The type the JSON value of `kind` has: float64 for a decimal, string for a timestamp,
    date or time (what catalogs stored for them before they kept exact types)."""
    if kind.element is not None:
        return list_of(json_shadow(kind.element))
    if kind.kind is Kind.STRUCT:
        return struct_of(tuple((name, json_shadow(t)) for name, t in kind.fields))
    if kind.kind is Kind.DECIMAL:
        return FLOAT_TYPE
    if kind.kind in EXACT_KINDS:
        return STRING_TYPE
    return kind
