"""What a qualified query is: its kind, the catalog columns it reads, and its tree as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from lakehouse.sql.schema_view import SchemaView

_TREE_MAX_DEPTH = 200  # the parser already refused deeper nesting; this only bounds recursion


@dataclass(frozen=True, slots=True)
class ColumnUse:
    table: str  # the catalog's spelling
    column: str  # top-level column, the catalog's spelling

    def to_json(self) -> dict[str, str]:
        return {"table": self.table, "column": self.column}


def query_kind(tree: exp.Expr) -> str:
    """"select", "union", "intersect" or "except" (a parenthesised query is what it wraps)."""
    while isinstance(tree, exp.Subquery):
        tree = tree.this
    return str(tree.key)


def columns_by_source(scope_tree: exp.Expr, view: SchemaView) -> dict[int, set[str]]:
    """For each catalog table node (by id), the catalog columns read through it."""
    used: dict[int, set[str]] = {}
    for scope in traverse_scope(scope_tree):
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if not isinstance(source, exp.Table):
                continue
            table = view.table(source.name)
            found = table.column(column.name) if table is not None else None
            if found is not None:
                used.setdefault(id(source), set()).add(found.name)
        for name, source in scope.sources.items():
            if isinstance(source, exp.Table) and _reads_whole_rows(scope.expression, name):
                table = view.table(source.name)
                if table is not None:
                    used.setdefault(id(source), set()).update(c.name for c in table.columns)
            elif isinstance(source, exp.Table):
                used.setdefault(id(source), set())
    return used


def _reads_whole_rows(query: exp.Expr, alias: str) -> bool:
    """A star that qualification could not expand (DuckDB's COLUMNS(*), `t.*` in a function)."""
    for star in query.find_all(exp.Star):
        parent = star.parent
        if isinstance(parent, exp.Count):
            continue  # COUNT(*) counts rows; it reads no column
        if isinstance(parent, exp.Column) and parent.table and parent.table != alias:
            continue
        return True
    return False


def column_uses(tree: exp.Expr, view: SchemaView) -> list[ColumnUse]:
    """The catalog columns a qualified tree reads, by table, sorted and without repeats."""
    names = {id(t): t.name for t in tree.find_all(exp.Table)}
    uses: set[ColumnUse] = set()
    for source_id, columns in columns_by_source(tree, view).items():
        table = view.table(names.get(source_id, ""))
        if table is not None:
            uses.update(ColumnUse(table.name, c) for c in columns)
    return sorted(uses, key=lambda u: (u.table, u.column))


def tree_json(node: Any, depth: int = 0) -> Any:
    """A nested, readable JSON form of a sqlglot tree: {"node": kind, <arg>: …}."""
    if depth > _TREE_MAX_DEPTH:
        return {"node": "…"}
    if isinstance(node, exp.DataType):
        return {"node": "datatype", "type": node.sql(dialect="duckdb")}
    if isinstance(node, exp.Expr):
        out: dict[str, Any] = {"node": node.key}
        for key, value in node.args.items():
            if value is None or value is False or value == []:
                continue
            out[key.rstrip("_")] = tree_json(value, depth + 1)
        return out
    if isinstance(node, list):
        return [tree_json(item, depth + 1) for item in node]
    if isinstance(node, str | int | float | bool):
        return node
    return str(node)
