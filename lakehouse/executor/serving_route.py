"""A planned query's route (lakehouse/optimizer/route.py) from what the catalog, the write-ahead
log and the serving store say now; and a query answered by the ClickHouse serving store, typed
as the default engine types it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import pyarrow as pa

from lakehouse.errors import Conflict, InvalidInput, LakehouseError, QueryTimeout
from lakehouse.executor.engine import Planned, QueryEngine
from lakehouse.executor.sandbox import run_sql
from lakehouse.optimizer.route import (
    CLICKHOUSE,
    DEFAULT,
    Route,
    RouteFacts,
    ServedTable,
    choose_route,
    key_lookup,
)
from lakehouse.serving.dialect import NotRoutable, to_clickhouse
from lakehouse.serving.mirror import view_of, writer_of
from lakehouse.serving.store import ServingStore
from lakehouse.sql.bind import tenant_schema
from lakehouse.sql.binder import OutputColumn


@dataclass(frozen=True)
class RoutePlan:
    route: Route
    sql: str | None = None  # the ClickHouse SQL, when it goes there
    parameters: dict[str, list[int]] | None = None  # its values (the lists of files)

    def to_json(self) -> dict[str, object]:
        return {**self.route.to_json(), **({"sql": self.sql} if self.sql else {})}

    def refusal(self) -> LakehouseError:
        details = {"engine": CLICKHOUSE, "reason": self.route.reason}
        message = (f"the query cannot run on ClickHouse: {self.route.reason}; without "
                   "\"engine\": \"clickhouse\" it runs on the default engine")
        if self.route.code == "mirror_behind":
            return Conflict(message, code="mirror_behind", details=details)
        return InvalidInput(message, code="not_routable", details=details)


def plan_route(engine: QueryEngine, planned: Planned, asked: str | None,
               store: Callable[[], ServingStore] | None) -> RoutePlan:
    try:
        return _plan_route(engine, planned, asked, store)
    except LakehouseError as exc:
        if asked == CLICKHOUSE:
            raise
        # The store cannot be reached or used from here: the default engine answers.
        return RoutePlan(Route(DEFAULT, f"the serving store cannot be used: {exc.message}"))


def _plan_route(engine: QueryEngine, planned: Planned, asked: str | None,
                store: Callable[[], ServingStore] | None) -> RoutePlan:
    tenant = planned.tenant
    tables = sorted({b.table for b in planned.interpretation.bindings})
    if asked != CLICKHOUSE and (not tables or not planned.served.issuperset(tables)):
        # The usual case: nothing to ask the store.
        return RoutePlan(choose_route(RouteFacts(asked, tuple(
            ServedTable(t, t in planned.served) for t in tables))))
    if store is None:
        raise InvalidInput("this process has no ClickHouse serving store",
                           code="not_routable", details={"engine": CLICKHOUSE})
    opened = store() if planned.served else None
    unflushed = _unflushed(engine, planned)
    meta = engine.metadata.get(tenant, planned.pin.snapshot)
    facts_of = []
    for table in tables:
        if table not in planned.served or opened is None:
            facts_of.append(ServedTable(table, False))
            continue
        # Kept per snapshot: a mirror's watermark only moves on with new snapshots (a catch-up
        # commits one), so a value read later is at least as far on.
        reached = engine.metadata.derive(meta, f"mirror:{table}", partial(
            engine.catalog.watermark, writer_of(tenant, table)))
        lagging = sum(1 for f in meta.files.get(table, ()) if (f.snapshot_added or 0) > reached)
        # The backfill makes the mirror before its first watermark: a watermark says it is
        # there.
        facts_of.append(ServedTable(table, True, reached > 0, lagging, unflushed.get(table, 0)))
    written, why = None, _list_columns(planned)
    lookup = key_lookup(planned.interpretation.tree)
    # Written only for a query that may go there: the optimizer sends it lookups alone.
    if opened is not None and why is None and (asked == CLICKHOUSE or lookup):
        cutoffs = _cutoffs(planned)
        views = {t: view_of(meta.files.get(t, ()), cutoffs.get(t)) for t in tables}
        try:
            written = to_clickhouse(planned.interpretation.tree, tenant_schema(tenant),
                                opened.database(tenant), views,
                                planned.view.mapping_schema("duckdb"))
        except NotRoutable as exc:
            why = str(exc.details.get("reason", exc.message))
    facts = RouteFacts(asked, tuple(facts_of), time_travel=planned.pin.watermark is None,
                       untranslatable=why, key_lookup=lookup)
    route = choose_route(facts)
    if written is None or route.engine != CLICKHOUSE or route.refused:
        return RoutePlan(route)
    return RoutePlan(route, written.sql, written.parameters)


def _list_columns(planned: Planned) -> str | None:
    """ClickHouse holds no NULL list (an Array is never Nullable): a NULL list would read as
    an empty one, so a query of a list column stays on the default engine."""
    for use in planned.interpretation.columns:
        table = planned.view.table(use.table)
        column = next((c for c in table.columns if c.name == use.column), None) if table else None
        if column is not None and column.type.endswith("]"):
            return (f"column {use.column!r} of {use.table!r} is a list, and ClickHouse reads a "
                    "NULL list as an empty one")
    return None


def _unflushed(engine: QueryEngine, planned: Planned) -> dict[str, int]:
    if engine.ingest is None or planned.pin.watermark is None:
        return {}
    return {s["table"]: int(s["unflushed_records"])
            for s in engine.ingest.table_stats(planned.tenant) if s["unflushed_records"]}


def _cutoffs(planned: Planned) -> dict[str, int]:
    """Retention per table (the planner keeps it per relation)."""
    by_relation = {spec.relation: spec.table for spec in planned.optimized.plan.scans}
    return {by_relation[r]: c for r, c in planned.retention_cutoffs.items() if r in by_relation}


def clickhouse_failure(exc: BaseException, timeout_s: float) -> LakehouseError:
    """What a ClickHouse error says to the caller (its first line, no stack)."""
    text = str(exc)
    first = next((line.strip() for line in text.splitlines() if "DB::Exception" in line),
                 text.strip().splitlines()[0] if text.strip() else type(exc).__name__)
    first = first[first.find("DB::Exception"):] if "DB::Exception" in first else first
    if "TIMEOUT_EXCEEDED" in text:
        return QueryTimeout(f"the query ran longer than its time limit of {timeout_s:g} s on "
                            "ClickHouse", details={"timeout_s": timeout_s})
    if "MEMORY_LIMIT_EXCEEDED" in text:
        return InvalidInput("the query needs more memory on ClickHouse than a query may use "
                            "(QUERY_MEMORY_LIMIT_MB); narrow it", code="query_too_large",
                            details={"engine": CLICKHOUSE, "error": first[:300]})
    return InvalidInput(f"ClickHouse could not run the query: {first[:300]}; without "
                        "\"engine\": \"clickhouse\" it runs on the default engine",
                        code="not_routable", details={"engine": CLICKHOUSE,
                                                      "error": first[:300]})


def read_limits(*, timeout_s: float, threads: int,
                memory_bytes: int | None) -> dict[str, int | str]:
    """The platform's limits of a query, as every read of the serving store runs with them
    (fixed when the store opens: the reader is read-only)."""
    found: dict[str, int | str] = {"max_threads": threads,
                                   "max_execution_time": max(1, round(timeout_s))}
    if memory_bytes:
        found["max_memory_usage"] = memory_bytes
    return found


def run_on_clickhouse(store: ServingStore, chosen: RoutePlan, outputs: tuple[OutputColumn, ...],
                      wait_s: float | None = None) -> pa.Table:
    """The rows ClickHouse answers, named and typed as the default engine answers them
    (StoreBusy: the store stayed busy for `wait_s`)."""
    assert chosen.sql is not None  # noqa: S101 - only a route to ClickHouse comes here
    found = store.read(chosen.sql, wait_s, chosen.parameters)
    if not outputs:
        return found
    return typed(found, outputs)


def typed(found: pa.Table, outputs: tuple[OutputColumn, ...]) -> pa.Table:
    target = output_schema(outputs)
    if found.num_columns != len(target):
        raise _otherwise(f"{found.num_columns} columns for {len(target)}")
    columns = []
    for index, field in enumerate(target):
        try:
            columns.append(found.column(index).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise _otherwise(f"column {field.name!r}: {exc}"[:300]) from exc
    return pa.Table.from_arrays(columns, schema=target)


def _otherwise(what: str) -> InvalidInput:
    return InvalidInput("ClickHouse answered what the default engine would not "
                        f"({what}); without \"engine\": \"clickhouse\" it runs on the "
                        "default engine", code="not_routable",
                        details={"engine": CLICKHOUSE, "error": what})


_schemas: dict[tuple[str, ...], pa.Schema] = {}


def output_schema(outputs: tuple[OutputColumn, ...]) -> pa.Schema:
    """The Arrow types DuckDB gives the outputs' types (its types are the view's own text and
    the aliases numbers: nothing a caller wrote reaches this SQL)."""
    key = tuple(o.type for o in outputs)
    found = _schemas.get(key)
    if found is None:
        casts = ", ".join(f"CAST(NULL AS {o.type}) AS c{i}" for i, o in enumerate(outputs))
        found = run_sql({}, f"SELECT {casts} LIMIT 0", 1).schema
        if len(_schemas) < 4096:
            _schemas[key] = found
    return pa.schema([f.with_name(o.name) for f, o in zip(found, outputs, strict=True)])

