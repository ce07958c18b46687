"""The query engine of one process: interpret, optimize, execute — for a tenant, at a snapshot.

It reads the catalog (tables, files, statistics), the table options (retention) and, when this
process holds the write-ahead log, the rows not yet flushed; it sees each table with the types
its newest data file has (decimals, dates), so queries over loaded data type-check as written.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlglot import exp

from lakehouse.catalog.lake import Catalog
from lakehouse.catalog.table_options import TableOptionsStore
from lakehouse.executor.run import Cancel, ExecutionContext, Progress, execute
from lakehouse.executor.unflushed import Pin, UnflushedRows, pin
from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.service import IngestService
from lakehouse.optimizer.cost_model import CostModel
from lakehouse.optimizer.optimize import Optimized, TableFiles, optimize
from lakehouse.sql.interpret import Interpretation, interpret, interpret_tree
from lakehouse.sql.schema_view import ColumnView, SchemaView, TableView
from lakehouse.storage.location import StorageRoot

SCHEMA_CACHE = 4096


@dataclass(frozen=True)
class Planned:
    tenant: str
    interpretation: Interpretation
    optimized: Optimized
    pin: Pin
    view: SchemaView
    retention_cutoffs: dict[str, int] = field(default_factory=dict)
    planning_ms: float = 0.0


class QueryEngine:
    def __init__(self, catalog: Catalog, storage: StorageRoot, options: TableOptionsStore,
                 ingest: IngestService | None = None, threads: int = 2) -> None:
        self.catalog = catalog
        self.storage = storage
        self.options = options
        self.ingest = ingest
        self.threads = threads
        self._schemas: OrderedDict[str, pa.Schema] = OrderedDict()
        self._lock = threading.Lock()

    # Views -----------------------------------------------------------------------------

    def view(self, tenant: str, snapshot: int | None = None) -> SchemaView:
        """The tenant's tables with exact column types: the newest file's, widened by the
        write buffer's schema for columns not flushed yet."""
        schemas: dict[str, Any] = {}
        for info in self.catalog.tables(tenant, snapshot):
            schemas[info.name] = info.schema
        if self.ingest is not None:
            for stats in self.ingest.table_stats(tenant):
                buffered = self.ingest.table_schema(TableRef(tenant, stats["table"]))
                if buffered is not None and (stats["records"] or stats["table"] not in schemas):
                    schemas[stats["table"]] = buffered.to_json()
        base = SchemaView.from_schemas(tenant, schemas)
        tables: list[TableView] = []
        for table in base.tables:
            exact = self._file_schema(tenant, table.name, snapshot)
            tables.append(_exact(table, exact) if exact is not None else table)
        return SchemaView(tenant, tuple(tables))

    def _file_schema(self, tenant: str, table: str, snapshot: int | None) -> pa.Schema | None:
        files = self.catalog.files(tenant, table, snapshot)
        if not files:
            return None
        newest = max(files, key=lambda f: (f.snapshot_added or 0, f.path))
        with self._lock:
            found = self._schemas.get(newest.path)
        if found is None:
            found = pq.read_schema(self.storage.full(newest.path), filesystem=self.storage.fs)
            with self._lock:
                self._schemas[newest.path] = found
                while len(self._schemas) > SCHEMA_CACHE:
                    self._schemas.popitem(last=False)
        return found

    # Planning ----------------------------------------------------------------------------

    def plan(self, tenant: str, query: str | exp.Expr, dialect: str | None,
             model: CostModel) -> Planned:
        started = time.perf_counter()
        pinned = pin(self.catalog)
        view = self.view(tenant, pinned.snapshot)
        if isinstance(query, str):
            found = interpret(query, dialect, view)
        else:
            found = interpret_tree(query, dialect or "duckdb", view)
        logical = found.plan(view)
        tables = {}
        for binding in found.bindings:
            info = self.catalog.table(tenant, binding.table, pinned.snapshot)
            if info is not None:
                tables[binding.table] = TableFiles(info, tuple(self.catalog.files(
                    tenant, binding.table, pinned.snapshot)))
        optimized = optimize(found.tree, found.sql, logical, tables, tenant=tenant,
                             snapshot=pinned.snapshot, model=model)
        now = time.time()
        cutoffs = {}
        for spec in optimized.plan.scans:
            cutoff = self.options.get(tenant, spec.table).retention_cutoff_us(now)
            if cutoff is not None:
                cutoffs[spec.relation] = cutoff
        return Planned(tenant, found, optimized, pinned, view, cutoffs,
                       (time.perf_counter() - started) * 1000)

    # Running -----------------------------------------------------------------------------

    def context(self, planned: Planned, client: Any = None) -> ExecutionContext:
        unflushed: Callable[[str, str], pa.Table | None] | None = None
        if self.ingest is not None:
            unflushed = UnflushedRows(self.ingest, planned.pin.watermark)
        return ExecutionContext(self.storage.uri, unflushed, planned.retention_cutoffs,
                                client, self.threads)

    def run(self, planned: Planned, client: Any = None, progress: Progress | None = None,
            cancel: Cancel | None = None) -> pa.Table:
        return execute(planned.optimized.plan, self.context(planned, client), progress, cancel)


def _exact(table: TableView, schema: pa.Schema) -> TableView:
    """The table's columns with the file's types where the file has them."""
    columns = []
    for column in table.columns:
        index = schema.get_field_index(column.name)
        if index < 0:
            columns.append(column)
            continue
        columns.append(ColumnView(column.name, duckdb_type(schema.field(index).type),
                                  column.system))
    return TableView(table.name, tuple(columns))


def duckdb_type(kind: pa.DataType) -> str:  # noqa: PLR0911 - one return per kind
    if pa.types.is_decimal(kind):
        return f"DECIMAL({kind.precision}, {kind.scale})"
    if pa.types.is_date(kind):
        return "DATE"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ" if kind.tz else "TIMESTAMP"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_integer(kind):
        return {8: "TINYINT", 16: "SMALLINT", 32: "INTEGER"}.get(kind.bit_width, "BIGINT")
    if pa.types.is_floating(kind):
        return "FLOAT" if kind.bit_width == 32 else "DOUBLE"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "VARCHAR"
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return f"{duckdb_type(kind.value_type)}[]"
    if pa.types.is_struct(kind):
        inner = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in kind)
        return f"STRUCT({inner})"
    return "VARCHAR"
