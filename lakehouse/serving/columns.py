"""ClickHouse columns and tables for a mirrored table (pure: Arrow schema in, DDL out).

A mirror is a MergeTree ordered by `data_id` holding every row of every file it copied, each
with the id of its file (`_mirror_file`). A query reads the rows of the files live at its
snapshot and drops the versions an upsert replaced, as our own scans do
(lakehouse/serving/dialect.py `visible`): rows are never folded by key, since a bulk load may
repeat a `data_id` and a compaction's output repeats the rows of the files it replaced, until
those files' rows are dropped (lakehouse/serving/prune.py). A file is a partition: dropping
one changes metadata only, where deleting rows is a mutation that rewrites parts while the
store waits, and a query's list of files prunes partitions. Insert deduplication tokens need
`non_replicated_deduplication_window` on a table that is not replicated; each insert carries a
token of the file it copies, so a repeated insert (a catch-up after a crash) adds nothing.
"""

from __future__ import annotations

import re

import pyarrow as pa

from lakehouse.errors import Conflict

DEDUP_WINDOW = 10_000  # inserts remembered per table for their tokens
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")
# A database is the prefix and a tenant name, which may hold '-' (backticks quote it).
_DATABASE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,126}$")
_INTS = {8: "Int8", 16: "Int16", 32: "Int32", 64: "Int64"}
_UINTS = {8: "UInt8", 16: "UInt16", 32: "UInt32", 64: "UInt64"}
KEY_COLUMNS = ("data_id", "_seq", "_timestamp")
# The file a mirror row came from (user column names start with a letter: no clash).
MIRROR_FILE = "_mirror_file"
DEFAULT_PREFIX = "lakehouse_"


class NotServable(Conflict, code="not_servable", retryable=False):
    """A table ClickHouse cannot hold as we read it (a type with no faithful column): the
    table's state, not the request, is in the way, and a retry will not help."""


def quote(name: str, *, database: bool = False) -> str:
    """A ClickHouse identifier; names are checked, never escaped, so none can carry SQL."""
    if not (_DATABASE if database else _IDENTIFIER).match(name):
        raise NotServable(f"{name!r} cannot name a ClickHouse column or table",
                          code="not_servable", details={"name": name})
    return f"`{name}`"


def database_of(tenant: str, prefix: str = DEFAULT_PREFIX) -> str:
    """Each tenant's own database: no query of one tenant names another's."""
    return f"{prefix}{tenant}"


def column_type(field_type: pa.DataType, nullable: bool = True) -> str:
    inner = _inner(field_type)
    composite = inner.startswith(("Array(", "Tuple(", "Map("))
    return f"Nullable({inner})" if nullable and not composite else inner


def _inner(t: pa.DataType) -> str:  # noqa: PLR0911 - one answer per Arrow type family
    if pa.types.is_boolean(t):
        return "Bool"
    if pa.types.is_signed_integer(t):
        return _INTS[t.bit_width]
    if pa.types.is_unsigned_integer(t):
        return _UINTS[t.bit_width]
    if pa.types.is_float32(t):
        return "Float32"
    if pa.types.is_floating(t):
        return "Float64"
    if pa.types.is_decimal(t):
        return f"Decimal({t.precision}, {t.scale})"
    if (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
            or pa.types.is_binary(t) or pa.types.is_large_binary(t)):
        return "String"
    if pa.types.is_date32(t):
        return "Date32"
    if pa.types.is_timestamp(t):
        zone = t.tz or "UTC"
        if not re.match(r"^[A-Za-z0-9_+\-/]{1,64}$", zone):
            raise NotServable(f"time zone {zone!r}", code="not_servable")
        return f"DateTime64(6, '{zone}')"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"Array({column_type(t.value_type)})"
    raise NotServable(f"ClickHouse holds no faithful column for {t}", code="not_servable",
                      details={"type": str(t)})


def check_servable(schema: pa.Schema) -> None:
    """NotServable naming the first column ClickHouse cannot hold as we read it."""
    for field in schema:
        if field.name not in KEY_COLUMNS:
            quote(field.name)
            try:
                column_type(field.type, field.nullable)
            except NotServable as exc:
                raise NotServable(f"column {field.name!r}: {exc.message}; only tables of "
                                  "scalar and list columns can be served by ClickHouse",
                                  code="not_servable",
                                  details={"column": field.name, "type": str(field.type)}
                                  ) from exc


def mirror_type(field: pa.Field) -> str:
    """The ClickHouse type of a data file's column in a mirror."""
    if field.name == "data_id":
        return "String"
    if field.name in ("_seq", MIRROR_FILE):
        return "UInt64"
    if field.name == "_timestamp":
        return "DateTime64(6, 'UTC')"
    return column_type(field.type, field.nullable)


def _bare(kind: str) -> str:
    return kind[len("Nullable("):-1] if kind.startswith("Nullable(") else kind


def changed_columns(have: dict[str, str], schema: pa.Schema) -> tuple[list[pa.Field],
                                                                      list[str]]:
    """The file's columns the mirror lacks, and why others cannot go into it: a column whose
    type changed would be converted on insert (2.5 into an Int64 is 2), so it is refused; an
    integer into a Float64 the mirror already has is exact."""
    missing, changed = [], []
    for field in schema:
        want = mirror_type(field)
        if field.name not in have:
            missing.append(field)
            continue
        old, new = _bare(have[field.name]), _bare(want)
        if old != new and not (old == "Float64" and new.startswith(("Int", "UInt"))):
            changed.append(f"{field.name}: {old} → {new}")
    return missing, changed


def create_table(database: str, table: str, schema: pa.Schema) -> str:
    """The mirror's CREATE TABLE (if it is not there yet)."""
    missing = [c for c in KEY_COLUMNS if c not in schema.names]
    if missing:
        raise NotServable("a mirrored table has data_id, _seq and _timestamp",
                          code="not_servable", details={"missing": missing})
    columns = [f"{quote(field.name)} {mirror_type(field)}" for field in schema
               if field.name != MIRROR_FILE]
    columns.append(f"{quote(MIRROR_FILE)} UInt64")
    return (f"CREATE TABLE IF NOT EXISTS {quote(database, database=True)}.{quote(table)} "
            f"({', '.join(columns)}) ENGINE = MergeTree PARTITION BY {quote(MIRROR_FILE)} "
            "ORDER BY `data_id` "
            f"SETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}")


def outdated(columns: dict[str, str]) -> bool:
    """A mirror made before rows carried their file (one row per key, folded): it is made
    afresh."""
    return bool(columns) and MIRROR_FILE not in columns
