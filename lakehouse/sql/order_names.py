"""`ORDER BY name` where two output columns of that name come from different tables:
`SELECT t.e, u.e FROM t, u ORDER BY e`, or `SELECT t.*, u.e …`. DuckDB refuses it as an
ambiguous reference; sqlglot would quietly order by one of them. Found before qualification
(pure), as a 400. An alias of that name (`… AS e`) or a USING column merged into one is not
ambiguous, nor are two outputs of one table's column.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from lakehouse.sql.hidden import source_columns
from lakehouse.sql.problems import Problem, problem_at
from lakehouse.sql.schema_view import SchemaView


def ambiguous_order_names(tree: exp.Expr, view: SchemaView) -> list[Problem]:
    if not any(isinstance(o.parent, exp.Select) for o in tree.find_all(exp.Order)):
        return []  # the usual case, without building scopes
    problems = []
    for scope in traverse_scope(tree):
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        order = select.args.get("order")
        if not isinstance(order, exp.Order):
            continue
        names = {key.this.name.lower() for key in order.expressions
                 if isinstance(key, exp.Ordered) and isinstance(key.this, exp.Column)
                 and not key.this.table}
        if not names:
            continue
        aliases = {p.alias.lower() for p in select.expressions if isinstance(p, exp.Alias)}
        merged = {i.name.lower() for j in select.args.get("joins") or []
                  for i in j.args.get("using") or []}
        for name in sorted(names - aliases - merged):
            tables = _output_tables(select, scope, view, name)
            if tables is not None and len(tables) > 1:
                problems.append(problem_at(order, "ambiguous_column", (
                    f"ORDER BY {name}: the result has columns {name!r} of "
                    f"{', '.join(sorted(tables))}; order by the qualified column or a "
                    "position")))
    return problems


def _output_tables(select: exp.Select, scope: Scope, view: SchemaView,
                   name: str) -> set[str] | None:
    """The sources whose column `name` the select list outputs (None: not known)."""
    found: set[str] = set()
    for projection in select.expressions:
        if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Identifier):
            if projection.name.lower() == name:
                if not projection.table:
                    return None  # unqualified: whichever DuckDB binds
                found.add(projection.table.lower())
        elif isinstance(projection, exp.Star) or (
                isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)):
            qualifier = projection.table if isinstance(projection, exp.Column) else ""
            for alias in scope.sources:
                if qualifier and alias != qualifier:
                    continue
                columns = source_columns(alias, scope, view)
                if columns is None:
                    return None
                if name in columns:
                    found.add(alias.lower())
    return found

