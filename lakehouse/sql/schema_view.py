"""What one tenant's queries may see: its tables and their ordered, typed columns, as data.

Built by the caller from the catalog (and the write buffer, for tables not flushed yet), so the
interpreter stays pure. Every table starts with the system columns a query may use — the record
key and its time — before its user columns. Their names and types repeat two of
lakehouse.ingest.flush_rows.SYSTEM_FIELDS because the pure interpreter may not import the write
path (tests/unit/test_sql_schema_view.py pins them equal). `_seq` and `_upsert` are not offered:
they are how the engine resolves upserts, not data, and `SELECT *` should not show them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.schema import MappingSchema

from lakehouse.schema.types import FieldType, Kind

SYSTEM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("data_id", "VARCHAR"),
    ("_timestamp", "TIMESTAMPTZ"),
)

_PRIMITIVE_SQL = {Kind.BOOL: "BOOLEAN", Kind.INT: "BIGINT", Kind.FLOAT: "DOUBLE",
                  Kind.STRING: "VARCHAR",
                  # A column only ever seen as null has no type yet; DuckDB reads it as INTEGER
                  # from an Arrow null column, and the type checker treats it as unknown.
                  Kind.NULL: "NULL"}


def sql_type(field_type: FieldType) -> str:
    """The DuckDB type of a column of this type: structs and lists nest."""
    if field_type.element is not None:
        return f"{sql_type(field_type.element)}[]"
    if field_type.kind is Kind.STRUCT:
        inner = ", ".join(f'"{name}" {sql_type(t)}' for name, t in field_type.fields)
        return f"STRUCT({inner})"
    return _PRIMITIVE_SQL[field_type.kind]


@dataclass(frozen=True, slots=True)
class ColumnView:
    name: str  # as the catalog spells it
    type: str  # DuckDB type text, e.g. "BIGINT" or 'STRUCT("age" BIGINT)'
    system: bool = False


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_lower", {t.name.lower(): t for t in self.tables})

    @staticmethod
    def from_schemas(tenant: str, schemas: Mapping[str, FieldType]) -> SchemaView:
        """The view of `tenant`'s tables given each one's schema (a STRUCT of user columns)."""
        tables = []
        for name, schema in sorted(schemas.items()):
            system = [ColumnView(n, t, system=True) for n, t in SYSTEM_COLUMNS]
            user = [ColumnView(n, sql_type(t)) for n, t in schema.fields]
            tables.append(TableView(name, (*system, *user)))
        return SchemaView(tenant, tuple(tables))

    def table(self, name: str) -> TableView | None:
        return self._by_lower.get(name.lower())

    def names(self) -> Iterable[str]:
        return (t.name for t in self.tables)

    def mapping_schema(self, dialect: str) -> MappingSchema:
        """The sqlglot schema for qualification and type annotation in `dialect`."""
        mapping: dict[str, object] = {t.name: {c.name: exp.DataType.build(c.type, dialect="duckdb")
                            for c in t.columns} for t in self.tables}
        return MappingSchema(mapping, dialect=dialect)

    def to_json(self) -> dict[str, object]:
        return {"tenant": self.tenant, "tables": [
            {"table": t.name, "columns": [{"name": c.name, "type": c.type, "system": c.system}
                                          for c in t.columns]} for t in self.tables]}
