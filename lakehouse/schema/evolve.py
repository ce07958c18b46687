"""Schema evolution: merge one record's type into a table's schema, as a pure decision.

The rules, applied recursively from the table's struct down:
- NULL fits any column; a column that is NULL so far takes the first non-null type (a promotion).
- int64 fits a float64 column; float64 into an int64 column promotes the column to float64.
- A column of an exact type takes the JSON values that convert into it without changing:
  numbers and numeric text into a decimal, ISO-8601 text into a timestamp, date or time. Whether
  each value does convert (fits the precision and scale, parses) is `lakehouse.schema.coerce`'s
  check of the value, made before the record is acknowledged.
- Decimals widen to hold both (an int64 counts as 19 digits) while they fit 38 digits.
- Structs merge field by field; new fields are appended in the record's order.
- Lists merge their element types (so list<null> takes the first non-null element type).
- Anything else is a conflict, and a record with any conflict leaves the schema unchanged.

This runs once per ingested record, so the no-change path allocates nothing and whole results are
memoized per (table, record) pair: most records of a table share a handful of shapes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from lakehouse.schema.types import (
    DECIMAL128_PRECISION,
    FLOAT_TYPE,
    ROOT,
    FieldType,
    Kind,
    decimal_type,
    list_of,
    struct_of,
)

INT64_DIGITS = 19  # decimal digits an int64 may need
# The JSON kinds whose values convert into each exact kind (checked value by value).
CONVERTS_FROM: dict[Kind, frozenset[Kind]] = {
    Kind.DECIMAL: frozenset({Kind.INT, Kind.FLOAT, Kind.STRING}),
    Kind.TIMESTAMP: frozenset({Kind.STRING}),
    Kind.DATE: frozenset({Kind.STRING}),
    Kind.TIME: frozenset({Kind.STRING}),
}

_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class TypeConflict:
    path: str  # e.g. "payload.age" or "payload.profile.skills[]"
    column: FieldType  # the table's type
    value: FieldType  # the record's type

    def reason(self) -> str:
        column, value = self.column.short(), self.value.short()
        return f"{self.path}: the column is {column} but the record has {value}"


@dataclass(frozen=True, slots=True)
class Evolution:
    """What merging one record did to the table's schema.

    With conflicts nothing is applied: `schema` is the table's, `added` and `promoted` are empty.
    """

    schema: FieldType  # the merged table schema (the same object if nothing is new)
    added: tuple[str, ...]  # paths of new columns and fields, e.g. "payload.profile.level"
    promoted: tuple[str, ...]  # paths whose type widened: null → anything, int64 → float64
    conflicts: tuple[TypeConflict, ...]

    @property
    def changed(self) -> bool:
        """Whether `schema` differs from the table's (a first record without fields: no)."""
        return bool(self.added or self.promoted)


class Changes:
    """What one merge found; filled in while walking both trees."""

    __slots__ = ("added", "conflicts", "promoted")

    def __init__(self) -> None:
        self.added: list[str] = []
        self.promoted: list[str] = []
        self.conflicts: list[TypeConflict] = []


def merge_types(column: FieldType, value: FieldType, path: str, changes: Changes) -> FieldType:
    """`column` widened to also hold `value`, recording what changed at and below `path`.

    Returns `column` itself when nothing changes; on a conflict it records it and keeps `column`.
    """
    if column is value or value.kind is Kind.NULL:
        return column
    if column.kind is value.kind:
        return _merge_same_kind(column, value, path, changes)
    return _merge_other_kind(column, value, path, changes)


def _merge_same_kind(column: FieldType, value: FieldType, path: str, changes: Changes) -> FieldType:
    if column.kind is Kind.STRUCT:
        return _merge_struct(column, value, path, changes)
    if column.element is not None and value.element is not None:  # lists
        element = merge_types(column.element, value.element, path + "[]", changes)
        return column if element is column.element else list_of(element)
    if column == value:
        return column
    if column.kind is Kind.DECIMAL:
        return _widen_decimal(column, value, path, changes)
    changes.conflicts.append(TypeConflict(path, column, value))  # timestamps of two zones
    return column


def _widen_decimal(column: FieldType, value: FieldType, path: str, changes: Changes,
                   ) -> FieldType:
    """A decimal holding both (an int64 counts as 19 whole digits), or a conflict past 38."""
    whole = max(_whole_digits(column), _whole_digits(value))
    scale = max(_scale(column), _scale(value))
    if whole + scale > DECIMAL128_PRECISION:
        changes.conflicts.append(TypeConflict(path, column, value))
        return column
    widened = decimal_type(whole + scale, scale)
    if widened == column:
        return column
    changes.promoted.append(path)
    return widened


def _scale(kind: FieldType) -> int:
    return kind.scale if kind.kind is Kind.DECIMAL else 0


def _whole_digits(kind: FieldType) -> int:
    return INT64_DIGITS if kind.kind is Kind.INT else kind.precision - kind.scale


def _merge_other_kind(
    column: FieldType, value: FieldType, path: str, changes: Changes
) -> FieldType:
    if column.kind is Kind.NULL:
        changes.promoted.append(path)
        return value
    if column.kind is Kind.INT and value.kind is Kind.FLOAT:
        changes.promoted.append(path)
        return FLOAT_TYPE
    if value.kind in CONVERTS_FROM.get(column.kind, ()):
        return column  # each value is converted, and checked, on its own
    if column.kind is Kind.INT and value.kind is Kind.DECIMAL:
        return _widen_decimal(column, value, path, changes)
    if not (column.kind is Kind.FLOAT and value.kind is Kind.INT):
        changes.conflicts.append(TypeConflict(path, column, value))
    return column


def _merge_struct(column: FieldType, value: FieldType, path: str, changes: Changes) -> FieldType:
    merged: list[tuple[str, FieldType]] | None = None  # copied on the first change only
    appended: list[tuple[str, FieldType]] = []
    column_fields = column.fields
    for name, value_type in value.fields:
        column_type = column.field(name)
        if column_type is None:
            appended.append((name, value_type))
            changes.added.append(f"{path}.{name}")
            continue
        if column_type is value_type or value_type.kind is Kind.NULL:
            continue
        new_type = merge_types(column_type, value_type, f"{path}.{name}", changes)
        if new_type is not column_type:
            if merged is None:
                merged = list(column_fields)
            merged[_position(column_fields, name)] = (name, new_type)
    if merged is None and not appended:
        return column
    return struct_of((*(column_fields if merged is None else merged), *appended))


def _position(fields: tuple[tuple[str, FieldType], ...], name: str) -> int:
    return next(i for i, (field_name, _) in enumerate(fields) if field_name == name)


def evolve(table: FieldType | None, record: FieldType) -> Evolution:
    """Merge one record's type into the table schema; a None table is defined by the record."""
    if table is None:
        added = tuple(f"{ROOT}.{name}" for name, _ in record.fields)
        return Evolution(record, added, (), ())
    if table is record:
        return _unchanged(table)
    return _evolve_cached(table, record)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _evolve_cached(table: FieldType, record: FieldType) -> Evolution:
    changes = Changes()
    merged = merge_types(table, record, ROOT, changes)
    if changes.conflicts:
        return Evolution(table, (), (), tuple(changes.conflicts))
    if merged is table:
        return _unchanged(table)
    return Evolution(merged, tuple(changes.added), tuple(changes.promoted), ())


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _unchanged(table: FieldType) -> Evolution:
    return Evolution(table, (), (), ())


def evolve_many(
    table: FieldType | None, records: Sequence[FieldType]
) -> tuple[FieldType | None, list[Evolution]]:
    """Apply records in order; one with conflicts changes nothing, later ones still evolve."""
    evolutions: list[Evolution] = []
    for record in records:
        evolution = evolve(table, record)
        evolutions.append(evolution)
        if not evolution.conflicts:
            table = evolution.schema
    return table, evolutions


def merge_schemas(committed: FieldType | None, pending: FieldType | None) -> FieldType | None:
    """The committed schema (the catalog's) with what `pending` (records not flushed yet) adds:
    new columns appended, int64 widened to float64; where the committed type is exact, it
    stays, and pending values are converted into it. A conflicting column keeps the committed
    type: the flush keeps pending values it cannot convert in the tenant's `_rejects` table
    (lakehouse/ingest/flush_rows.py, entries_table_sparing)."""
    if committed is None or pending is None or committed is pending:
        return committed if pending is None else pending if committed is None else committed
    changes = Changes()
    merged = merge_types(committed, pending, ROOT, changes)
    if not changes.conflicts:
        return merged
    kept = tuple((name, kind) for name, kind in pending.fields
                 if not any(c.path == f"{ROOT}.{name}" or c.path.startswith(f"{ROOT}.{name}.")
                            or c.path.startswith(f"{ROOT}.{name}[") for c in changes.conflicts))
    return merge_types(committed, struct_of(kept), ROOT, Changes())
