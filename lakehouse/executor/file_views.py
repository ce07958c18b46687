"""A relation DuckDB reads from its Parquet files itself, as a view over exactly the plan's files.

Our own scan (lakehouse/executor/scan.py) reads the files into Arrow and hands DuckDB the rows;
DuckDB's own Parquet reader does the same work faster (it filters while it decodes, and reads
only the row groups and columns the whole query needs). It is used where it answers exactly what
our scan would:

- the files are on a local file system (DuckDB has no S3 here: the httpfs extension is not
  installed, and extension loading is off);
- every column has one type in every file that has it, and none has a type DuckDB would read
  otherwise than from Arrow (a column only ever null is written with Parquet's null type; DuckDB
  reads it as INTEGER, Arrow as NULL);
- no path holds a character DuckDB would read as a glob;
- the log's rows (already scanned, joining as an Arrow table) have the files' types.

Anything else is read by our scan, as before. The view keeps every contract of the scan: the
versions an upsert replaced are dropped, rows past the retention period hidden, and it reads
the listed files and nothing else (the database may open exactly those paths; see
lakehouse/executor/sandbox.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

TIME_COLUMN = "_timestamp"
_GLOB = frozenset("*?[]{}")


@dataclass(frozen=True)
class FileView:
    """What a relation's view shows: the columns of these files, filtered as our scan would."""

    paths: tuple[str, ...]  # full local paths
    schema: pa.Schema  # every file's columns unified (each with its one type)
    columns: tuple[str, ...]  # what the view shows, in this order
    retention_cutoff_us: int | None = None  # rows whose _timestamp is older are hidden
    replaced: pa.Table | None = None  # (data_id, _seq): the newest version of upserted ids
    memory: pa.Table | None = None  # the log's rows, scanned: exactly `columns`, same types


def readable_by_duckdb(file_schemas: Sequence[pa.Schema]) -> pa.Schema | None:
    """The files' unified schema if DuckDB reads them as Arrow would: every column one type in
    every file that has it, none of a type DuckDB reads otherwise. None: our scan reads them."""
    types: dict[str, pa.DataType] = {}
    order: list[pa.Field] = []
    for schema in file_schemas:
        for field in schema:
            if not _same_in_duckdb(field.type):
                return None
            known = types.get(field.name)
            if known is None:
                types[field.name] = field.type
                order.append(field.remove_metadata())
            elif known != field.type:
                return None
    return pa.schema(order) if order else None


def _same_in_duckdb(kind: pa.DataType) -> bool:  # noqa: PLR0911 - one answer per kind
    if pa.types.is_null(kind) or pa.types.is_dictionary(kind) or pa.types.is_map(kind):
        return False
    if pa.types.is_unsigned_integer(kind) or pa.types.is_float16(kind):
        return False
    # Arrow's other units are DuckDB's TIMESTAMP_MS/_NS/_S, its Parquet reader's plain ones.
    if pa.types.is_timestamp(kind) or pa.types.is_time(kind):
        return bool(kind.unit == "us")
    if pa.types.is_date64(kind) or pa.types.is_fixed_size_binary(kind):
        return False
    if pa.types.is_decimal(kind):
        return bool(kind.precision <= 38)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return _same_in_duckdb(kind.value_type)
    if pa.types.is_struct(kind):
        return all(_same_in_duckdb(field.type) for field in kind)
    return True


def plain_paths(paths: Sequence[str]) -> bool:
    """No path DuckDB would expand as a glob (or could be quoted wrongly)."""
    return all(not (_GLOB & set(p)) and "\x00" not in p for p in paths)


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(view: FileView, replaced: str | None, memory: str | None) -> str:
    """The SELECT of the relation's view. `replaced` and `memory` name the registered Arrow
    tables of `view.replaced` and `view.memory` (None when there are none)."""
    files = ", ".join(_literal(p) for p in view.paths)
    # hive_partitioning off: a folder named day=2026-11-26 must not add a column `day`.
    # union_by_name: a file may lack columns the others have (the schema grows).
    source = (f"read_parquet([{files}], hive_partitioning = false, union_by_name = "
              f"{'true' if len(view.paths) > 1 else 'false'}, filename = false)")
    shown = ", ".join(quote_name(c) for c in view.columns) or "*"
    conditions = []
    if view.retention_cutoff_us is not None and TIME_COLUMN in view.schema.names:
        conditions.append(f"epoch_us({quote_name(TIME_COLUMN)}) >= {int(view.retention_cutoff_us)}")
    if replaced is not None:
        # An upserted data_id survives only as its newest version (storage/versions.py).
        conditions.append(
            f"(NOT coalesce(\"data_id\" IN (SELECT \"data_id\" FROM {replaced}), false) "  # noqa: S608
            f"OR coalesce(\"_seq\" IN (SELECT \"_seq\" FROM {replaced}), false))")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"SELECT {shown} FROM {source}{where}"  # noqa: S608 - names and paths quoted here
    if memory is not None:
        sql += f" UNION ALL SELECT {shown} FROM {memory}"  # noqa: S608
    return sql

