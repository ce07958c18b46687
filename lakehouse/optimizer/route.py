"""Which engine answers a query: the default one (DuckDB fragments, on Dask when large) or the
ClickHouse serving store (pure: facts in, a route out).

ClickHouse may answer only when every table the query reads is served there, each mirror holds
the query's snapshot (no file it lacks, no unflushed row it would miss), the query reads the
newest data (no time travel: a mirror holds no older snapshot), and it can be written in
ClickHouse's SQL with the same answer. Asked for with `"engine": "clickhouse"`, a query that
cannot go there is refused with the reason; not asked, it runs on the default engine.

Without a choice of the caller, a query goes to ClickHouse only where it measured faster
(bench/clickhouse.py, quoted in the README): lookups of a few `data_id`s, which the mirror's
sort key finds without reading the table. Everything else stays on the default engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

DEFAULT = "default"
CLICKHOUSE = "clickhouse"
ENGINES = (DEFAULT, CLICKHOUSE)


@dataclass(frozen=True, slots=True)
class ServedTable:
    table: str
    served: bool  # marked for the serving store
    mirrored: bool = False  # its mirror exists
    lagging_files: int = 0  # files of the query's snapshot the mirror lacks
    unflushed_rows: int = 0  # rows in the write-ahead log the query would read


@dataclass(frozen=True, slots=True)
class RouteFacts:
    asked: str | None  # "default", "clickhouse", or None: the optimizer's choice
    tables: tuple[ServedTable, ...]
    time_travel: bool = False  # the query names a snapshot
    untranslatable: str | None = None  # why ClickHouse would answer otherwise
    key_lookup: bool = False  # it reads rows by a few data_id values


@dataclass(frozen=True, slots=True)
class Route:
    engine: str
    reason: str
    refused: bool = False  # ClickHouse was asked for and cannot answer
    code: str = ""  # why it was refused: not_routable (the query), mirror_behind (for now)

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "reason": self.reason,
                **({"refused": True} if self.refused else {})}


def obstacles(facts: RouteFacts) -> list[tuple[str, str]]:
    """Why ClickHouse cannot answer, as (code, reason), most fundamental first."""
    found: list[tuple[str, str]] = []
    for table in facts.tables:
        if not table.served:
            found.append(("not_routable", f"table {table.table!r} is not served by ClickHouse "
                          "(PUT /metadata/tables/{table}/options {\"serving\": \"clickhouse\"})"))
    if facts.time_travel:
        found.append(("not_routable", "a mirror holds the newest rows only, not an older "
                      "snapshot"))
    if facts.untranslatable:
        found.append(("not_routable", facts.untranslatable))
    for table in facts.tables:
        if not table.served:
            continue
        if not table.mirrored or table.lagging_files:
            found.append(("mirror_behind", f"the mirror of {table.table!r} lacks "
                          f"{table.lagging_files or 'all'} of its files yet (its backfill or "
                          "catch-up is running; see GET /metadata/tables)"))
        if table.unflushed_rows:
            found.append(("mirror_behind", f"{table.unflushed_rows} rows of {table.table!r} "
                          "are not flushed yet and a mirror holds flushed rows only "
                          "(POST /data/flush)"))
    return found


def choose_route(facts: RouteFacts) -> Route:  # noqa: PLR0911 - one answer per case
    if facts.asked == DEFAULT:
        return Route(DEFAULT, "asked for")
    if not facts.tables:
        if facts.asked == CLICKHOUSE:
            return Route(CLICKHOUSE, "a query of no table", True, "not_routable")
        return Route(DEFAULT, "a query of no table")
    found = obstacles(facts)
    if facts.asked == CLICKHOUSE:
        if found:
            code, reason = found[0]
            return Route(CLICKHOUSE, reason, True, code)
        return Route(CLICKHOUSE, "asked for")
    if found:
        return Route(DEFAULT, found[0][1])
    if facts.key_lookup:
        return Route(CLICKHOUSE, "a lookup by data_id: the mirror's sort key finds the rows")
    return Route(DEFAULT, "the default engine measured faster for queries that scan "
                 "(bench/clickhouse.py)")


KEY_LOOKUP_MAX = 100  # data_id values a lookup names


def key_lookup(tree: exp.Expr) -> bool:
    """A single-table SELECT whose WHERE pins `data_id` to a few literals (= or IN), ANDed with
    anything else."""
    if not isinstance(tree, exp.Select) or tree.args.get("joins") or tree.args.get("with"):
        return False
    where = tree.args.get("where")
    if where is None:
        return False
    for part in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        if isinstance(part, exp.EQ) and _is_key(part.this) and isinstance(part.expression,
                                                                           exp.Literal):
            return True
        if isinstance(part, exp.In) and _is_key(part.this) and not part.args.get("query") and (
                0 < len(part.expressions) <= KEY_LOOKUP_MAX) and all(
                isinstance(e, exp.Literal) for e in part.expressions):
            return True
    return False


def _is_key(node: exp.Expr) -> bool:
    return isinstance(node, exp.Column) and node.name == "data_id"
