"""The query engine of one process: interpret, optimize, execute — for a tenant, at a snapshot.

It reads the catalog (tables, files, statistics), the table options (retention) and, when this
process holds the write-ahead log, the rows not yet flushed; it sees each table with the types
its newest data file has (decimals, dates), so queries over loaded data type-check as written.

A query runs at the newest snapshot plus the log's rows above its watermark (read-your-writes),
unless it names a snapshot (`snapshot`, or AT (VERSION => N) in its SQL): then it reads exactly
that snapshot's files and nothing from the log, so the same query answers the same rows for as
long as the snapshot can be read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import pyarrow as pa
from sqlglot import exp

from lakehouse.catalog.lake import Catalog
from lakehouse.catalog.table_options import TableOptionsStore
from lakehouse.catalog.time_travel import one_snapshot, require_readable
from lakehouse.executor.empty import empty_relations
from lakehouse.executor.metadata import MetadataCache, SnapshotMetadata
from lakehouse.executor.output_names import duckdb_names, written_names
from lakehouse.executor.plan_cache import NOT_SEEN, NotSeen, PlanCache, PlanKey
from lakehouse.executor.run import Cancel, ExecutionContext, Progress, execute
from lakehouse.executor.unflushed import Pin, UnflushedRows, pin
from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.service import IngestService
from lakehouse.optimizer.cost_model import CostModel
from lakehouse.optimizer.optimize import Optimized, TableFiles, optimize
from lakehouse.sql.bind import tenant_schema
from lakehouse.sql.interpret import Interpretation, interpret_tree
from lakehouse.sql.parse import DEFAULT_DIALECT, parse_query
from lakehouse.sql.problems import planning
from lakehouse.sql.schema_view import SchemaView, TableView
from lakehouse.sql.time_travel import pinned_snapshot
from lakehouse.storage.location import StorageRoot


@dataclass(frozen=True)
class Planned:
    tenant: str
    interpretation: Interpretation
    optimized: Optimized
    pin: Pin
    view: SchemaView
    retention_cutoffs: dict[str, int] = field(default_factory=dict)
    planning_ms: float = 0.0
    served: frozenset[str] = frozenset()  # its tables marked for the serving store
    reused: bool = False  # the plan made for the same text before (QueryEngine.plan)


# A query's tree, its dialect, how DuckDB names its outputs as written, the snapshot it names.
Parsed = tuple[exp.Expr, str, Callable[..., Any] | None, int | None]


class QueryEngine:
    def __init__(self, catalog: Catalog, storage: StorageRoot, options: TableOptionsStore,
                 ingest: IngestService | None = None, threads: int = 2, *,
                 readable_s: float = float("inf"), duckdb_reads_files: bool = True) -> None:
        self.catalog = catalog
        self.storage = storage
        self.options = options
        self.ingest = ingest
        self.threads = threads
        # How long a replaced snapshot's files are kept (CLEANUP_GRACE_S): older ones are
        # refused to a query that names them.
        self.readable_s = readable_s
        # QUERY_FILE_READER=duckdb: DuckDB reads Parquet files itself where it reads them as
        # our scan would (lakehouse/executor/file_views.py); arrow: our scan reads them all.
        self.duckdb_reads_files = duckdb_reads_files
        self.metadata = MetadataCache(catalog, storage)
        self.plans = PlanCache()

    # Views -----------------------------------------------------------------------------

    def view(self, tenant: str, snapshot: int | None = None) -> SchemaView:
        """The tenant's tables with exact column types: the newest file's, widened by the
        write buffer's schema for columns not flushed yet."""
        if snapshot is None:
            snapshot = self.catalog.current_snapshot()
        return self._view(self.metadata.get(tenant, snapshot))

    def _view(self, meta: SnapshotMetadata, *, with_log: bool = True) -> SchemaView:
        buffered: dict[str, Any] = {}
        if self.ingest is not None and with_log:
            for stats in self.ingest.table_stats(meta.tenant):
                schema = self.ingest.table_schema(TableRef(meta.tenant, stats["table"]))
                if schema is not None and (stats["records"] or stats["table"] not in meta.tables):
                    buffered[stats["table"]] = schema.to_json()
        if not buffered:  # the usual case: the snapshot's view, built once
            view: SchemaView = self.metadata.derive(meta, "view",
                                                    lambda: _exact_view(meta, {}))
            return view
        return _exact_view(meta, buffered)

    def readable(self, snapshot: int) -> int:
        """`snapshot` if a query can read it; NotFound if it never existed or its files may be
        gone (lakehouse/catalog/time_travel.py)."""
        return require_readable(self.catalog, snapshot, grace_s=self.readable_s,
                                now=time.time())

    # Planning ----------------------------------------------------------------------------

    def plan(self, tenant: str, query: str | exp.Expr, dialect: str | None,
             model: CostModel, snapshot: int | None = None) -> Planned:
        """Plan `query` (SQL text, or a tree built from the DSL) at the current snapshot and the
        log, or at exactly `snapshot` (or the one its AT (VERSION => N) names).

        SQL text planned before for the same tenant, snapshot, view and cost model reuses that
        plan (`PlanCache`): what planning reads is the same, so is what it makes. Only the
        pin (the log's rows to read), the retention cutoffs and the serving marks, which may
        change without a new snapshot, are looked up again."""
        started = time.perf_counter()
        text = query if isinstance(query, str) else None
        seen = self.plans.named(text, dialect) if text is not None else NOT_SEEN
        parsed = None
        if isinstance(seen, NotSeen):
            parsed = self._parse(query, dialect)
            in_text = parsed[3]
            if text is not None:
                self.plans.keep_named(text, dialect, in_text)
        else:
            in_text = seen
        named = one_snapshot(snapshot, in_text)
        pinned = pin(self.catalog) if named is None else Pin(self.readable(named), None)
        meta = self.metadata.get(tenant, pinned.snapshot)
        view = self._view(meta, with_log=pinned.watermark is not None)
        key = None if text is None else PlanKey(tenant, pinned.snapshot, text, dialect, model,
                                                view)
        kept = self.plans.get(key)
        reused = kept is not None
        if kept is None:
            kept = self._interpret(tenant, parsed or self._parse(query, dialect), view=view,
                                   meta=meta, snapshot=pinned.snapshot, model=model)
            # Kept only when DuckDB typed its outputs: a binder that failed for a passing
            # reason (lakehouse/sql/binder.py) leaves them out, and that is not kept.
            if key is not None and kept[0].outputs:
                self.plans.keep(key, kept)
        found, optimized = kept
        now = time.time()
        cutoffs = {}
        served = set()
        for spec in optimized.plan.scans:
            options = self.options.get(tenant, spec.table)
            cutoff = options.retention_cutoff_us(now)
            if cutoff is not None:
                cutoffs[spec.relation] = cutoff
            if options.serving is not None:
                served.add(spec.table)
        return Planned(tenant, found, optimized, pinned, view, cutoffs,
                       (time.perf_counter() - started) * 1000, frozenset(served), reused)

    @staticmethod
    def _parse(query: str | exp.Expr, dialect: str | None) -> Parsed:
        """The tree, its dialect, how DuckDB names its outputs as written, the snapshot its
        text names."""
        written = None
        if isinstance(query, str):
            tree, dialect = parse_query(query, dialect)
            if dialect == "duckdb":  # the result's names as DuckDB reads the text
                written = partial(written_names, query)
        else:
            tree, dialect = query, dialect or DEFAULT_DIALECT
        return tree, dialect, written, pinned_snapshot(tree).snapshot

    @staticmethod
    def _interpret(tenant: str, parsed: Parsed, *, view: SchemaView, meta: SnapshotMetadata,
                   snapshot: int, model: CostModel) -> tuple[Interpretation, Optimized]:
        tree, dialect, written, _ = parsed
        found = interpret_tree(tree, dialect, view, duckdb_names, written)
        logical = found.plan(view)
        tables = {}
        for binding in found.bindings:
            info = meta.tables.get(binding.table)
            if info is not None:
                tables[binding.table] = TableFiles(info, meta.files[binding.table])
        with planning("optimize", schemas=[tenant_schema(tenant)]):
            optimized = optimize(found.tree, found.sql, logical, tables, tenant=tenant,
                                 snapshot=snapshot, model=model)
        return found, optimized

    # Running -----------------------------------------------------------------------------

    def context(self, planned: Planned, client: Any = None,
                name: str = "query") -> ExecutionContext:
        """`name`: the Dask keys and span of the query's fragments (`query-<id>`)."""
        unflushed: Callable[[str, str], pa.Table | None] | None = None
        if self.ingest is not None and planned.pin.watermark is not None:
            unflushed = UnflushedRows(self.ingest, planned.pin.watermark)
        return ExecutionContext(self.storage.uri, unflushed, planned.retention_cutoffs,
                                client, self.threads, self._empty_schemas(planned), name,
                                self.duckdb_reads_files)

    def _empty_schemas(self, planned: Planned) -> Mapping[str, pa.Schema]:
        """The columns of relations whose scan kept no file (a declared table not flushed yet,
        or every file pruned), as the view types them: unless the log has rows for them, that
        is all a query has to say what it reads."""
        empty = {spec.relation: spec.table for spec in planned.optimized.plan.scans
                 if not spec.files}
        return empty_relations(planned.view, empty) if empty else {}

    def run(self, planned: Planned, client: Any = None, progress: Progress | None = None,
            cancel: Cancel | None = None) -> pa.Table:
        return execute(planned.optimized.plan, self.context(planned, client), progress, cancel)


def _exact_view(meta: SnapshotMetadata, buffered: dict[str, Any]) -> SchemaView:
    """The view of the snapshot's tables (and the buffered ones), typed as their files are."""
    schemas: dict[str, Any] = {name: info.schema for name, info in meta.tables.items()}
    schemas.update(buffered)
    # Records in the log carry their keys: a table with some shows its data_id.
    made_up = [name for name, info in meta.tables.items()
               if not info.user_keys and name not in buffered]
    base = SchemaView.from_schemas(meta.tenant, schemas, made_up)
    tables = []
    for table in base.tables:
        exact = meta.file_schemas.get(table.name)
        tables.append(_exact(table, exact) if exact is not None else table)
    return SchemaView(meta.tenant, tuple(tables))


def _exact(table: TableView, schema: pa.Schema) -> TableView:
    """The table's columns with the file's types where the file has them."""
    columns = []
    for column in table.columns:
        index = schema.get_field_index(column.name)
        if index < 0:
            columns.append(column)
            continue
        columns.append(replace(column, type=duckdb_type(schema.field(index).type)))
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
