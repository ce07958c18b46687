"""The table's columns after a load, decided before anything is written.

Pure: the file schemas, the table's exact types and its declaration in; the columns (or a
schema_conflict naming the column, both types and who set each) out. Parquet types are facts
and are merged first; the types of CSV and NDJSON columns were guessed from a first block and
may yield to them where their text parses as the other type (see column_types.parses_as).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from lakehouse.errors import InvalidInput
from lakehouse.ingest.flush_rows import SYSTEM_FIELDS
from lakehouse.load.column_types import (
    conflict,
    fits_declared,
    merge,
    normalize,
    normalize_schema,
    parses_as,
)
from lakehouse.load.reading import FileLayout
from lakehouse.load.sources import SourceFile
from lakehouse.schema.declared import DeclaredTable

DATA_ID = "data_id"
_SYSTEM = frozenset(field.name for field in SYSTEM_FIELDS)


@dataclass(frozen=True)
class _Column:
    kind: pa.DataType
    origin: str  # who set the type: "the table", "the table's declaration" or a file
    fixed: bool = False  # declared: never widened


def table_columns(files: Sequence[SourceFile], layouts: Sequence[FileLayout],
                  table: dict[str, pa.DataType], declared: DeclaredTable | None,
                  data_id_column: str | None) -> pa.Schema:
    """The table's user columns after the load: its declared and existing ones first (a
    declaration fixes its types), then new ones. Types widen as record schemas evolve; Parquet
    types are facts and are merged first, text types are guesses that may yield to them."""
    columns: dict[str, _Column] = {}
    if declared is not None:
        columns = {name: _Column(kind.to_arrow(), "the table's declaration", fixed=True)
                   for name, kind in declared.columns.fields}
    for name, kind in table.items():
        columns.setdefault(name, _Column(kind, "the table"))
    seen: set[str] = set()
    unknown: list[str] = []
    text_columns: set[str] = set()
    for file, layout in sorted(zip(files, layouts, strict=True),
                               key=lambda pair: pair[0].format != "parquet"):
        schema = layout.schema
        if data_id_column == DATA_ID and DATA_ID in schema.names:
            schema = schema.remove(schema.get_field_index(DATA_ID))
        for field in normalize_schema(schema, file.name):
            seen.add(field.name)
            if file.format != "parquet":
                text_columns.add(field.name)
            known = columns.get(field.name)
            if known is not None:
                columns[field.name] = _fit(known, field, file)
            elif declared is not None and declared.strict:
                unknown.append(field.name)
            else:
                columns[field.name] = _Column(field.type, file.name)
    if unknown:
        raise InvalidInput("the source has columns the table's declaration does not: "
                           + ", ".join(unknown[:20]), code="schema_conflict",
                           details={"columns": unknown[:100]})
    missing = [name for name in (declared.required if declared is not None else ())
               if name not in seen]
    if missing:
        raise InvalidInput("the source lacks columns the table requires: " + ", ".join(missing),
                           code="missing_column", details={"columns": missing})
    # A text column with no value in its first block is text; Parquet's nulls stay null.
    return pa.schema([pa.field(name, pa.string() if pa.types.is_null(c.kind)
                               and name in text_columns else c.kind)
                      for name, c in columns.items() if name not in _SYSTEM])


def _fit(known: _Column, field: pa.Field, file: SourceFile) -> _Column:
    guessed = file.format != "parquet"
    if known.fixed:
        if fits_declared(known.kind, field.type) or (
                guessed and parses_as(file.format, field.type, known.kind)):
            return known
    else:
        merged = merge(known.kind, field.type)
        if merged is not None:
            return _Column(merged, known.origin)
        if guessed and parses_as(file.format, field.type, known.kind):
            return known
    if not guessed and text_into_exact(field.type, known.kind):
        return known  # converted value by value, as a record's text would be
    raise conflict(field.name, known.kind, field.type, file.name, against=known.origin)


def text_into_exact(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether a text column loads into a decimal, timestamp, date or time column: its values
    are converted as a JSON record's text would be (lakehouse.schema.coerce)."""
    text = bool(pa.types.is_string(source) or pa.types.is_large_string(source)
                or pa.types.is_string_view(source))
    return text and bool(pa.types.is_decimal(target) or pa.types.is_timestamp(target)
                         or pa.types.is_date(target) or pa.types.is_time(target))


def parse_types(file: SourceFile, inferred: pa.Schema, columns: pa.Schema,
                ) -> tuple[tuple[str, pa.DataType], ...]:
    """How to parse a text file's columns: as planned from its first block where that already
    is the table's type once normalized (timestamp text keeps its own precision), else straight
    as the table's type (decimals exactly, not through floats; text into a typed column)."""
    types = []
    for field in inferred:
        target = columns.field(field.name).type if field.name in columns.names else None
        if target is None:
            types.append((field.name, field.type))  # the data_id column
        elif normalize(field.type, field.name, file.name) == target:
            types.append((field.name, field.type))
        else:
            types.append((field.name, target))
    return tuple(types)
