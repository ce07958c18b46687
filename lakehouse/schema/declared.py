"""Declared tables: a schema fixed up front, with value checks run by pandera.

Pure: a declaration is parsed from JSON and applied to records; storing it is the catalog's job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lakehouse.errors import InvalidInput
from lakehouse.schema.evolve import evolve
from lakehouse.schema.names import RESERVED_COLUMNS, check_field_name, check_table_name
from lakehouse.schema.patterns import check_pattern
from lakehouse.schema.types import (
    DECIMAL128_PRECISION,
    ROOT,
    FieldType,
    Kind,
    decimal_type,
    timestamp_type,
)

CHECK_KINDS = frozenset({"ge", "gt", "le", "lt", "isin", "notin", "str_matches", "str_length"})
SCALAR_NAMES = {k.value: k for k in (Kind.BOOL, Kind.INT, Kind.FLOAT, Kind.STRING, Kind.DATE,
                                     Kind.TIME)}
# Exact types by the names SQL gives them: naive timestamps, UTC ones, decimal(p, s).
EXACT_NAMES = {"timestamp": timestamp_type(None), "timestamptz": timestamp_type("UTC")}
# decimal(p, s) with p from 1 to 38 (a leading 0 allowed) and s of two digits; the documents
# state the same pattern (api/bodies.py), so only "s at most p" is beyond them.
DECIMAL_PATTERN = r"decimal\( *(0?[1-9]|[12][0-9]|3[0-8]) *, *([0-9]{1,2}) *\)"
_DECIMAL = re.compile(DECIMAL_PATTERN)
TYPE_NAMES = ("bool, int64, float64, string, date, time, timestamp, timestamptz, "
              "decimal(p, s), {\"list\": type} or {\"struct\": {name: type}}")


@dataclass(frozen=True, slots=True)
class ValueCheck:
    column: str
    kind: str
    value: Any

    def describe(self) -> str:
        return f"{self.column} {self.kind} {self.value!r}"


@dataclass(frozen=True, slots=True)
class DeclaredTable:
    name: str
    columns: FieldType  # a STRUCT of the user columns
    required: tuple[str, ...]
    checks: tuple[ValueCheck, ...]
    strict: bool  # refuse fields the declaration does not name
    partition_by: str | None
    sort_key: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.name,
            "columns": {name: t.to_json() for name, t in self.columns.fields},
            "required": list(self.required),
            "checks": [{"column": c.column, "check": c.kind,
                        "value": list(c.value) if isinstance(c.value, tuple) else c.value}
                       for c in self.checks],
            "strict": self.strict,
            "partition_by": self.partition_by,
            "sort_key": list(self.sort_key),
        }

    def type_problem(self, record: FieldType) -> str | None:
        """Why a record's type does not fit the declaration, or None if it does."""
        evolution = evolve(self.columns, record)
        if evolution.conflicts:
            return "; ".join(c.reason() for c in evolution.conflicts)
        if evolution.promoted:
            return "; ".join(f"{path}: the declared type is narrower than the record's"
                             for path in evolution.promoted)
        if self.strict and evolution.added:
            return ("fields not in the table's declaration: " + ", ".join(evolution.added))
        return None

    def missing_required(self, payload: Mapping[str, Any]) -> list[str]:
        return [name for name in self.required if payload.get(name) is None]


def parse_declaration(spec: Mapping[str, Any], *, stored: bool = False) -> DeclaredTable:
    """A declaration from its JSON form; InvalidInput naming the first thing wrong.

    `stored`: read back from the catalog, accepted when it was declared. Limits added since
    (on patterns) are not applied again, so an older declaration still loads and its table
    can still be listed; a pattern RE2 cannot run then fails every value (see patterns.py)."""
    name = spec.get("table")
    if not isinstance(name, str):
        raise InvalidInput("a declaration needs \"table\": a table name",
                           code="invalid_declaration")
    check_table_name(name)
    raw_columns = spec.get("columns")
    if not isinstance(raw_columns, Mapping) or not raw_columns:
        raise InvalidInput("a declaration needs \"columns\": {name: type, …}",
                           code="invalid_declaration")
    fields = []
    for column, raw_type in raw_columns.items():
        check_field_name(column, f"{ROOT}.{column}")
        fields.append((column, _parse_type(raw_type, f"{ROOT}.{column}")))
    columns = FieldType(Kind.STRUCT, fields=tuple(fields))
    names = {column for column, _ in fields}
    required = tuple(_names(spec.get("required", []), names, "required"))
    sort_key = tuple(_names(spec.get("sort_key", []), names, "sort_key"))
    partition_by = spec.get("partition_by")
    if partition_by is not None:
        [partition_by] = _names([partition_by], names, "partition_by")
    checks = tuple(_parse_check(c, columns, stored) for c in spec.get("checks", []) or [])
    strict = spec.get("strict", True)
    if not isinstance(strict, bool):
        raise InvalidInput("\"strict\" is true or false", code="invalid_declaration")
    return DeclaredTable(name, columns, required, checks, strict, partition_by, sort_key)


def _parse_type(raw: Any, path: str) -> FieldType:
    if isinstance(raw, str) and raw in SCALAR_NAMES:
        return FieldType(SCALAR_NAMES[raw])
    if isinstance(raw, str) and raw in EXACT_NAMES:
        return EXACT_NAMES[raw]
    decimal = _DECIMAL.fullmatch(raw) if isinstance(raw, str) else None
    if decimal is not None:
        precision, scale = int(decimal.group(1)), int(decimal.group(2))
        if 1 <= precision <= DECIMAL128_PRECISION and scale <= precision:
            return decimal_type(precision, scale)
    if isinstance(raw, Mapping) and "type" in raw:  # the stored form, FieldType.to_json
        return FieldType.from_json(raw)
    if isinstance(raw, Mapping) and set(raw) == {"list"}:
        return FieldType(Kind.LIST, element=_parse_type(raw["list"], f"{path}[]"))
    if isinstance(raw, Mapping) and set(raw) == {"struct"} and isinstance(raw["struct"], Mapping):
        fields = []
        for name, inner in raw["struct"].items():
            check_field_name(name, f"{path}.{name}")
            fields.append((name, _parse_type(inner, f"{path}.{name}")))
        return FieldType(Kind.STRUCT, fields=tuple(fields))
    raise InvalidInput(
        f"a column type is one of {TYPE_NAMES}; decimals have 1 to "
        f"{DECIMAL128_PRECISION} digits", code="invalid_declaration", details={"path": path})


def _names(raw: Any, known: set[str], what: str) -> list[str]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not all(
            isinstance(n, str) for n in raw):
        raise InvalidInput(f"\"{what}\" is a list of column names", code="invalid_declaration")
    unknown = [n for n in raw if n not in known]
    if unknown:
        raise InvalidInput(f"\"{what}\" names columns the declaration does not have",
                           code="invalid_declaration", details={"columns": unknown})
    return list(raw)


def _parse_check(raw: Any, columns: FieldType, stored: bool) -> ValueCheck:
    if not isinstance(raw, Mapping) or set(raw) != {"column", "check", "value"}:
        raise InvalidInput("a check is {\"column\", \"check\", \"value\"}",
                           code="invalid_declaration")
    column, kind, value = raw["column"], raw["check"], raw["value"]
    column_type = columns.field(column) if isinstance(column, str) else None
    if column_type is None or column_type.kind in (Kind.LIST, Kind.STRUCT):
        raise InvalidInput("checks apply to declared top-level scalar columns",
                           code="invalid_declaration", details={"column": str(column)[:100]})
    if kind not in CHECK_KINDS:
        raise InvalidInput(f"unknown check; one of {sorted(CHECK_KINDS)}",
                           code="invalid_declaration", details={"check": str(kind)[:40]})
    if kind in ("isin", "notin") and not isinstance(value, list):
        raise InvalidInput(f"{kind} takes a list", code="invalid_declaration")
    if kind == "str_matches" and not stored:
        check_pattern(value)  # RE2 runs it (linear time), and it is short
    if kind == "str_length" and not (isinstance(value, list) and len(value) == 2):
        raise InvalidInput("str_length takes [min, max]", code="invalid_declaration")
    if column in RESERVED_COLUMNS:
        raise InvalidInput("data_id cannot be checked", code="invalid_declaration")
    # Tuples, not lists: checks are hashable, so their pandera schema is built once.
    return ValueCheck(column, kind, tuple(value) if isinstance(value, list) else value)
