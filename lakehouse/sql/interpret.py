"""The interpreter's one entry point: text (or a tree) in, a checked, tenant-bound query out.

    parse → time travel → DESCRIBE <table> → guard → literals → qualify → typecheck
          → DuckDB's binder → bind

Each stage is a pure function of the tree and the SchemaView; a stage runs only when the ones
before it found nothing, because names cannot be resolved in a statement that is refused, nor
types checked where names are unknown. `validate` returns the problems; `interpret` refuses with
them (403 for what a query may not do, 400 for what is wrong with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from lakehouse.errors import InvalidInput, LakehouseError
from lakehouse.sql.bind import TableBinding, bind, tenant_schema
from lakehouse.sql.binder import OutputColumn, bind_types
from lakehouse.sql.describe import ColumnUse, column_uses, query_kind
from lakehouse.sql.describe_table import describe_table
from lakehouse.sql.guard import guard
from lakehouse.sql.literals import out_of_range
from lakehouse.sql.output_names import (
    Namer,
    Written,
    as_sqlglot_writes,
    name_outputs,
    restore_spelling,
)
from lakehouse.sql.parse import check_dialect, parse_query
from lakehouse.sql.plan import logical_plan
from lakehouse.sql.plan_steps import Step
from lakehouse.sql.problems import BINDING_CODES, Problem, planning, refusal, unsupported
from lakehouse.sql.qualify import qualify
from lakehouse.sql.schema_view import SchemaView
from lakehouse.sql.time_travel import pinned_snapshot
from lakehouse.sql.typecheck import typecheck

OUTPUT_DIALECT = "duckdb"  # what the executor runs, whatever the query was written in


@dataclass(frozen=True, slots=True)
class Interpretation:
    tenant: str
    dialect: str  # the dialect the query was read in
    kind: str  # "select", "union", "intersect", "except"
    parsed: exp.Expr  # as written
    tree: exp.Expr  # qualified and bound to the tenant
    sql: str  # `tree` as DuckDB SQL: what the executor runs
    bindings: tuple[TableBinding, ...]
    columns: tuple[ColumnUse, ...]
    snapshot: int | None = None  # named by AT (VERSION => N); None: the caller's choice
    outputs: tuple[OutputColumn, ...] = ()  # the result's columns and DuckDB types

    def plan(self, view: SchemaView) -> Step:
        with planning("plan", schemas=[tenant_schema(view.tenant)]):
            return logical_plan(self.tree, view)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "dialect": self.dialect, "sql": self.sql,
                "snapshot": self.snapshot, "tables": [b.to_json() for b in self.bindings],
                "columns": [c.to_json() for c in self.columns],
                "outputs": [o.to_json() for o in self.outputs]}


def _ordered(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0, p.column or 0))


def check_tree(tree: exp.Expr, dialect: str, view: SchemaView) -> tuple[exp.Expr, list[Problem]]:
    """The qualified tree and its problems (the input tree if a stage before qualify failed)."""
    checked, problems, _ = _check(tree, dialect, view)
    return checked, problems


def _check(tree: exp.Expr, dialect: str, view: SchemaView
           ) -> tuple[exp.Expr, list[Problem], tuple[OutputColumn, ...]]:
    """`check_tree`, and the output columns DuckDB's binder gives the query when it has none."""
    try:
        tree = describe_table(pinned_snapshot(tree).tree, view)
    except LakehouseError as exc:
        return tree, _problems_of(exc), ()
    try:
        problems = guard(tree) or out_of_range(tree)
        if problems:
            return tree, _ordered(problems), ()
        qualified = qualify(tree, view, dialect)
        if qualified.problems:
            return qualified.tree, _ordered(list(qualified.problems)), ()
        # DuckDB's binder judges; only a query it refuses is given to sqlglot's rules, which
        # place the common mistakes at a line and column (its own messages have none). Most
        # queries are fine, and the rules cost as much as the binder.
        bound = bind_types(qualified.tree, view)
        placed = typecheck(qualified.tree, qualified.schema, dialect) if bound.problems else []
        return (qualified.tree, _ordered(placed) if placed else list(bound.problems),
                bound.outputs)
    except LakehouseError as exc:
        return tree, _problems_of(exc), ()
    except Exception as exc:
        return tree, [unsupported(exc, "check")], ()


def interpret_tree(tree: exp.Expr, dialect: str, view: SchemaView,
                   namer: Namer = as_sqlglot_writes,
                   written: Written | None = None) -> Interpretation:
    """A parsed statement checked and bound to `view.tenant`; refused if it has problems.
    The view must be the one of the snapshot the query's AT (VERSION => N) names, if any (the
    caller reads it first with `pinned_snapshot`). `namer` and `written` name the unnamed
    outputs (lakehouse/sql/output_names.py)."""
    snapshot = pinned_snapshot(tree).snapshot
    qualified, problems, outputs = _check(name_outputs(tree.copy(), namer, written), dialect,
                                          view)
    if problems:
        raise refusal(problems)
    with planning("interpret", schemas=[tenant_schema(view.tenant)]):
        bound, bindings = bind(qualified, view)
        _unname_star_expressions(bound)
        restore_spelling(bound)
        return Interpretation(
            tenant=view.tenant, dialect=dialect, kind=query_kind(bound), parsed=tree,
            tree=bound, sql=bound.sql(dialect=OUTPUT_DIALECT), bindings=bindings,
            columns=tuple(column_uses(qualified, view)), snapshot=snapshot, outputs=outputs)


def _unname_star_expressions(tree: exp.Expr) -> None:
    """Drop the `_col_N` names qualification gives `COLUMNS(…)` outputs: DuckDB expands them
    into columns of their own names (every other unnamed output is named before qualification,
    lakehouse/sql/output_names.py)."""
    referenced = {c.name for c in tree.find_all(exp.Column) if not c.table}  # ORDER BY "_col_1"
    for select in tree.find_all(exp.Select):
        for projection in select.expressions:
            if isinstance(projection, exp.Alias) and projection.alias.startswith("_col_") and (
                    projection.alias not in referenced) and projection.this.find(exp.Columns):
                projection.replace(projection.this)


@dataclass(frozen=True, slots=True)
class Outline:
    """What parsing alone says of a query (`POST /parse/sql`): the whole interpretation when it
    binds; otherwise the tables its text names and why it does not bind yet, as warnings. A
    query is outlined before its tables exist (a client building SQL for a table it has not
    written yet); what a query may never do is refused all the same."""
    dialect: str
    parsed: exp.Expr
    found: Interpretation | None
    tables: tuple[dict[str, object], ...] = ()
    warnings: tuple[Problem, ...] = ()

    def to_json(self) -> dict[str, Any]:
        if self.found is not None:
            return {**self.found.to_json(), "warnings": []}
        return {"kind": query_kind(self.parsed), "dialect": self.dialect, "sql": None,
                "snapshot": None, "tables": list(self.tables), "columns": [],
                "warnings": [w.to_json() for w in self.warnings]}


def outline(tree: exp.Expr, dialect: str, view: SchemaView, namer: Namer = as_sqlglot_writes,
            written: Written | None = None) -> Outline:
    """`interpret_tree`, with what is wrong with how the query's names and types bind returned
    as warnings instead of raised; any other refusal (what it may not do, what is not
    supported) is still raised."""
    try:
        return Outline(dialect, tree, interpret_tree(tree, dialect, view, namer, written))
    except InvalidInput as exc:
        problems = _problems_of(exc)
        if not all(p.code in BINDING_CODES for p in problems):
            raise
        return Outline(dialect, tree, None, _named_tables(tree, view), tuple(problems))


def _named_tables(tree: exp.Expr, view: SchemaView) -> tuple[dict[str, object], ...]:
    """The catalog tables a tree names (not its CTEs), as `Interpretation.to_json` lists them;
    `bound_as` is None for a table the tenant does not have (yet)."""
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    aliases: dict[str, list[str]] = {}
    for table in tree.find_all(exp.Table):
        if table.name and table.name.lower() not in ctes:
            aliases.setdefault(table.name, []).append(table.alias_or_name)
    schema = tenant_schema(view.tenant)
    return tuple({"tenant": view.tenant, "table": name,
                  "bound_as": f"{schema}.{known.name}" if (known := view.table(name)) else None,
                  "aliases": named} for name, named in aliases.items())


def interpret(sql: str, dialect: str | None, view: SchemaView,
              namer: Namer = as_sqlglot_writes) -> Interpretation:
    tree, name = parse_query(sql, dialect)
    return interpret_tree(tree, name, view, namer)


def validate(sql: str, dialect: str | None, view: SchemaView) -> list[Problem]:
    """Every problem of the query, syntax errors included; empty when it would be accepted.
    Only a request that cannot be checked at all (unknown dialect, too long) raises."""
    name = check_dialect(dialect)
    try:
        tree, _ = parse_query(sql, name)
    except LakehouseError as exc:
        if exc.code in ("query_too_long",):
            raise
        return _problems_of(exc)
    qualified, problems = check_tree(tree, name, view)
    if problems:
        return problems
    try:
        bind(qualified, view)
    except LakehouseError as exc:
        return _problems_of(exc)
    return []


def _problems_of(exc: LakehouseError) -> list[Problem]:
    """The problems a refusal carries (or the error itself as one)."""
    found = exc.details.get("problems")
    if isinstance(found, list) and found:
        return [Problem(p["code"], p["message"], p["line"], p["column"]) for p in found]
    return [Problem(exc.code, exc.message)]
