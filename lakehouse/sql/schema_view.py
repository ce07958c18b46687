"""What one tenant's queries may see: its tables and their ordered, typed columns, as data.

Built by the caller from the catalog (and the write buffer, for tables not flushed yet), so the
interpreter stays pure. Every table starts with the system columns a query may use — the record
key and its time — before its user columns. Their names and types repeat two of
lakehouse.ingest.flush_rows.SYSTEM_FIELDS because the pure interpreter may not import the write
path (tests/unit/test_sql_schema_view.py pins them equal). `_seq` and `_upsert` are not offered:
they are how the engine resolves upserts, not data.

Columns the platform made up are hidden, like PostgreSQL's system columns: `SELECT *` (and
everything else that expands a star) leaves them out, and a query that names them reads them.
`_timestamp` is always hidden: it is the arrival time, or a copy of the record's `timestamp`
or of a load's timestamp column. `data_id` is hidden only in a table whose every key a load
made up (`{file stem}:{row}`, TableInfo.user_keys false); where a writer gave the keys (every
record carries one; a loaded file may have a `data_id` column) it is an ordinary column.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.schema import MappingSchema, normalize_name

from lakehouse.errors import InvalidInput

SYSTEM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("data_id", "VARCHAR"),
    ("_timestamp", "TIMESTAMPTZ"),
)
KEY_COLUMN = "data_id"

_PRIMITIVE_SQL = {"bool": "BOOLEAN", "int64": "BIGINT", "float64": "DOUBLE", "string": "VARCHAR",
                 "date": "DATE", "time": "TIME",
                  # A column only ever seen as null has no type yet; the type checker treats
                  # it as unknown.
                  "null": "NULL"}
_MAX_DEPTH = 64  # stored schemas stop at 32 levels; this only bounds the recursion


def sql_type(stored: Any, depth: int = 0) -> str:
    """The DuckDB type of a column from its stored type (FieldType.to_json()): structs and lists
    nest. Read from the JSON form so the interpreter needs neither Arrow nor the schema code."""
    if depth > _MAX_DEPTH:
        raise _bad_schema("nested too deeply")
    if isinstance(stored, str) and stored in _PRIMITIVE_SQL:
        return _PRIMITIVE_SQL[stored]
    if isinstance(stored, dict) and stored.get("type") == "list":
        return f"{sql_type(stored.get('element'), depth + 1)}[]"
    if isinstance(stored, dict) and stored.get("type") == "struct":
        return f"STRUCT({', '.join(_fields(stored, depth))})"
    if isinstance(stored, dict) and stored.get("type") == "decimal":
        precision, scale = stored.get("precision"), stored.get("scale")
        if type(precision) is int and type(scale) is int:
            return f"DECIMAL({precision}, {scale})"
    if isinstance(stored, dict) and stored.get("type") == "timestamp":
        return "TIMESTAMP" if stored.get("tz") is None else "TIMESTAMPTZ"
    raise _bad_schema(f"unknown type {str(stored)[:60]!r}")


def _fields(stored: dict[str, Any], depth: int) -> list[str]:
    fields = stored.get("fields")
    if not isinstance(fields, list):
        raise _bad_schema("a struct has a list of fields")
    out = []
    for entry in fields:
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)):
            raise _bad_schema("a struct field is {name, type}")
        name = entry["name"].replace('"', '""')
        out.append(f'"{name}" {sql_type(entry.get("type"), depth + 1)}')
    return out


def _bad_schema(problem: str) -> InvalidInput:
    return InvalidInput(f"not a stored schema: {problem}", code="invalid_schema")


@dataclass(frozen=True, slots=True)
class ColumnView:
    name: str  # as the catalog spells it
    type: str  # DuckDB type text, e.g. "BIGINT" or 'STRUCT("age" BIGINT)'
    system: bool = False
    hidden: bool = False  # left out of `SELECT *`; a query that names it reads it


def system_columns(*, made_up_key: bool) -> list[ColumnView]:
    """The system columns of a table, hidden as the module docstring says."""
    return [ColumnView(n, t, system=True, hidden=n != KEY_COLUMN or made_up_key)
            for n, t in SYSTEM_COLUMNS]


@dataclass(frozen=True, slots=True)
class TableView:
    name: str
    columns: tuple[ColumnView, ...]
    _by_lower: dict[str, ColumnView] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_lower", {c.name.lower(): c for c in self.columns})

    def column(self, name: str) -> ColumnView | None:
        """The column called `name`, matched without case as DuckDB matches identifiers."""
        return self._by_lower.get(name.lower())


@dataclass(frozen=True, slots=True)
class SchemaView:
    """One tenant's tables; `table()` is the only way a name becomes a table."""

    tenant: str
    tables: tuple[TableView, ...]
    _by_lower: dict[str, TableView] = field(init=False, repr=False, compare=False)
    _mappings: dict[str, MappingSchema] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_lower", {t.name.lower(): t for t in self.tables})
        object.__setattr__(self, "_mappings", {})

    @staticmethod
    def from_schemas(tenant: str, schemas: Mapping[str, Any],
                     made_up_keys: Collection[str] = ()) -> SchemaView:
        """The view of `tenant`'s tables given each one's stored schema (FieldType.to_json() of
        the STRUCT of its user columns, as the catalog keeps it); `made_up_keys` names the
        tables whose `data_id` no writer gave (see the module docstring)."""
        tables = []
        for name, schema in sorted(schemas.items()):
            if not (isinstance(schema, dict) and schema.get("type") == "struct"):
                raise _bad_schema(f"table {name!r}: a schema is a struct of columns")
            system = system_columns(made_up_key=name in made_up_keys)
            user = [ColumnView(f["name"], sql_type(f.get("type"), 1)) for f in schema["fields"]
                    if isinstance(f, dict) and isinstance(f.get("name"), str)]
            _fields(schema, 0)  # refuses malformed entries the comprehension skipped
            tables.append(TableView(name, (*system, *user)))
        return SchemaView(tenant, tuple(tables))

    def table(self, name: str) -> TableView | None:
        return self._by_lower.get(name.lower())

    def names(self) -> Iterable[str]:
        return (t.name for t in self.tables)

    def mapping_schema(self, dialect: str) -> MappingSchema:
        """The sqlglot schema for qualification and type annotation in `dialect`: built once
        per view (parsing every column's type costs milliseconds a query, and the engine keeps
        one view per snapshot); qualification only reads it."""
        found = self._mappings.get(dialect)
        if found is None:
            mapping: dict[str, object] = {t.name: {
                c.name: exp.DataType.build(c.type, dialect="duckdb") for c in t.columns}
                for t in self.tables}
            schema = MappingSchema(mapping, dialect=dialect)
            # Stars expand to the visible columns, named as the schema normalized them.
            visible: dict[str, object] = {}
            for table in self.tables:
                key = normalize_name(table.name, dialect=dialect, is_table=True).name
                hidden = {normalize_name(c.name, dialect=dialect).name
                          for c in table.columns if c.hidden}
                columns = schema.mapping.get(key)
                if isinstance(columns, dict):
                    # A table of hidden columns alone shows them (`*` never expands to none).
                    visible[key] = {name for name in columns if name not in hidden} or set(
                        columns)
            schema.visible = visible
            found = self._mappings.setdefault(dialect, schema)
        return found

    def to_json(self) -> dict[str, object]:
        return {"tenant": self.tenant, "tables": [
            {"table": t.name, "columns": [{"name": c.name, "type": c.type, "system": c.system,
                                           "hidden": c.hidden} for c in t.columns]}
            for t in self.tables]}
