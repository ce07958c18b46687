"""The column types of a load: what data files hold, how sources merge, what the catalog stores.

Data files keep exact types, so every file of a table agrees whatever wrote the source:
decimals stay decimal128(p, s) (exact: never turned into floats), dates stay date32, timestamps
become timestamp[us] with their time zone kept (the flush's unit; nanoseconds are truncated),
every integer width becomes int64, every float width float64, string_view / large_string /
dictionary-encoded strings plain string. Nested lists and structs follow the same rules inside.

The catalog stores these exact types too (`lakehouse.schema.types.schema_from_arrow`): one type
system for loads, records and declarations. Catalogs written before it stored each exact type's
JSON shadow (decimal → float64, date / time / timestamp → string); a load into such a table
reads the exact types back from its newest file, and the housekeeping run upgrades the catalog
(lakehouse/storage/type_repair.py).

Pure: no I/O.
"""

from __future__ import annotations

import pyarrow as pa

from lakehouse.errors import InvalidInput
from lakehouse.schema.names import check_field_name
from lakehouse.schema.types import ROOT

MAX_DECIMAL128_PRECISION = 38
INT64_DIGITS = 19  # decimal digits an int64 may need


def normalize_schema(schema: pa.Schema, where: str) -> pa.Schema:
    """The user columns of one source file in the types data files hold; InvalidInput for a
    bad column name or a type a table cannot hold."""
    fields = []
    for field in schema:
        check_field_name(field.name, f"{ROOT}.{field.name}")
        fields.append(pa.field(field.name, normalize(field.type, field.name, where)))
    return pa.schema(fields)


def normalize(kind: pa.DataType, path: str, where: str) -> pa.DataType:  # noqa: PLR0911
    """The type a data file holds for a source column of type `kind` (see the module doc)."""
    if pa.types.is_dictionary(kind):
        return normalize(kind.value_type, path, where)
    if pa.types.is_null(kind) or pa.types.is_boolean(kind):
        return kind
    if pa.types.is_integer(kind):
        return pa.int64()
    if pa.types.is_floating(kind):
        return pa.float64()
    if pa.types.is_decimal(kind):
        if kind.precision <= MAX_DECIMAL128_PRECISION:
            return pa.decimal128(kind.precision, kind.scale)
        return pa.decimal256(kind.precision, kind.scale)
    if (pa.types.is_string(kind) or pa.types.is_large_string(kind)
            or pa.types.is_string_view(kind)):
        return pa.string()
    if pa.types.is_date(kind):
        return pa.date32()
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", tz=kind.tz)
    if pa.types.is_time(kind):
        return pa.time64("us")
    return _normalize_nested(kind, path, where)


def _normalize_nested(kind: pa.DataType, path: str, where: str) -> pa.DataType:
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)
            or pa.types.is_fixed_size_list(kind) or pa.types.is_list_view(kind)
            or pa.types.is_large_list_view(kind)):
        return pa.list_(normalize(kind.value_type, f"{path}[]", where))
    if pa.types.is_struct(kind):
        children = []
        for i in range(kind.num_fields):
            child = kind.field(i)
            check_field_name(child.name, f"{ROOT}.{path}.{child.name}")
            children.append(pa.field(child.name,
                                     normalize(child.type, f"{path}.{child.name}", where)))
        return pa.struct(children)
    raise InvalidInput(
        f"column {path} of {where} has type {kind}, which a table cannot hold",
        code="unsupported_type", details={"column": path, "type": str(kind), "source": where})


def merge(table: pa.DataType, source: pa.DataType) -> pa.DataType | None:  # noqa: PLR0911
    """A type holding values of both without loss, or None (a conflict). Symmetric.

    Equal types; null fits anything; int64 and float64 make float64 (as record schemas
    evolve); decimals widen to hold both (int64 counts as a decimal of 19 digits) while they
    fit in 38 digits; lists merge their elements, structs their fields by name. Anything else,
    decimal with float included (which would lose exactness), is a conflict.
    """
    if table == source or pa.types.is_null(source):
        return table
    if pa.types.is_null(table):
        return source
    if {table, source} == {pa.int64(), pa.float64()}:
        return pa.float64()
    if pa.types.is_decimal(table) or pa.types.is_decimal(source):
        return _merge_decimals(table, source)
    if pa.types.is_list(table) and pa.types.is_list(source):
        element = merge(table.value_type, source.value_type)
        return None if element is None else pa.list_(element)
    if pa.types.is_struct(table) and pa.types.is_struct(source):
        return _merge_structs(table, source)
    return None


def _merge_decimals(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    digits = []
    for kind in (a, b):
        if pa.types.is_decimal(kind):
            digits.append((kind.precision - kind.scale, kind.scale))
        elif kind == pa.int64():
            digits.append((INT64_DIGITS, 0))
        else:
            return None
    whole = max(d[0] for d in digits)
    scale = max(d[1] for d in digits)
    if whole + scale > MAX_DECIMAL128_PRECISION:
        return None
    return pa.decimal128(whole + scale, scale)


def _merge_structs(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    fields = {a.field(i).name: a.field(i).type for i in range(a.num_fields)}
    for i in range(b.num_fields):
        child = b.field(i)
        known = fields.get(child.name)
        merged = child.type if known is None else merge(known, child.type)
        if merged is None:
            return None
        fields[child.name] = merged
    return pa.struct([pa.field(name, kind) for name, kind in fields.items()])


def fits_declared(declared: pa.DataType, source: pa.DataType) -> bool:
    """Whether source values can be stored in a declared column without widening it: the
    declaration fixes the type. Decimals fit a declared float64 (the declaration chose it)."""
    if pa.types.is_floating(declared) and pa.types.is_decimal(source):
        return True
    return bool(merge(declared, source) == declared)


def parses_as(format: str, inferred: pa.DataType, target: pa.DataType) -> bool:
    """Whether the text of a CSV or NDJSON column, whose type was only guessed from its first
    block, can be parsed as `target` instead: numbers as decimals (exactly, never through a
    float), CSV text of any kind as strings, ISO text as dates and timestamps. The parse
    itself still refuses a value that does not fit, naming its file."""
    if pa.types.is_null(inferred) or merge(target, inferred) == target:
        return True
    number = bool(pa.types.is_integer(inferred) or pa.types.is_floating(inferred))
    text = bool(pa.types.is_string(inferred) or pa.types.is_date(inferred)
                or pa.types.is_timestamp(inferred))
    if pa.types.is_decimal(target) or pa.types.is_floating(target):
        return number or (format == "ndjson" and bool(pa.types.is_string(inferred)))
    if pa.types.is_string(target):
        return format == "csv" or text
    if pa.types.is_date(target) or pa.types.is_timestamp(target):
        return text
    return False


def conflict(column: str, table_type: pa.DataType, source_type: pa.DataType, where: str,
             against: str = "the table") -> InvalidInput:
    return InvalidInput(
        f"column {column}: {against} has {table_type} but {where} has {source_type}",
        code="schema_conflict",
        details={"column": column, "table_type": str(table_type),
                 "source_type": str(source_type), "source": where})
