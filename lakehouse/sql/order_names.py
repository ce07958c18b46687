"""`ORDER BY name` that DuckDB refuses as an ambiguous reference and sqlglot would quietly
resolve: DuckDB orders by the result's column of that name if there is exactly one (or an
alias of it), else binds the name against the FROM clause, where two tables with such a column
make it ambiguous (`SELECT t.e, u.e FROM t, u ORDER BY e`, and even `SELECT t.e, t.e …`).
Found before qualification (pure), as a 400. A USING column merged into one is not ambiguous.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from lakehouse.sql.hidden import select_scopes, source_columns
from lakehouse.sql.problems import Problem, problem_at
from lakehouse.sql.schema_view import SchemaView


def ambiguous_order_names(tree: exp.Expr, view: SchemaView) -> list[Problem]:
    if not any(isinstance(o.parent, exp.Select) for o in tree.find_all(exp.Order)):
        return []  # the usual case, without building scopes
    problems = []
    for scope, select in select_scopes(tree):
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
            having = _sources_with(scope, view, name)
            if having is None or len(having) < 2:
                continue
            if _outputs_named(select, scope, view, name) != 1:
                problems.append(problem_at(order, "ambiguous_column", (
                    f"ORDER BY {name}: more than one table has a column {name!r} "
                    f"({', '.join(sorted(having))}) and the result does not have exactly one "
                    "of them; order by the qualified column or a position")))
    return problems


def _sources_with(scope: Scope, view: SchemaView, name: str) -> set[str] | None:
    """The sources of the scope showing a column `name` (None: fewer than two are known to,
    and some source's columns are unknown)."""
    found = set()
    unknown = False
    for alias in scope.sources:
        columns = source_columns(alias, scope, view)
        if columns is None:
            unknown = True
        elif name in columns:
            found.add(alias.lower())
    return None if unknown and len(found) < 2 else found


def _outputs_named(select: exp.Select, scope: Scope, view: SchemaView, name: str) -> int:
    """How many result columns (other than aliases) are named `name`: DuckDB orders by the one
    if there is one, else binds the name against the FROM clause."""
    count = 0
    for projection in select.expressions:
        if isinstance(projection, exp.Column) and isinstance(projection.this, exp.Identifier):
            count += projection.name.lower() == name
        elif isinstance(projection, exp.Star) or (
                isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)):
            qualifier = projection.table if isinstance(projection, exp.Column) else ""
            for alias in scope.sources:
                if not qualifier or alias == qualifier:
                    count += name in (source_columns(alias, scope, view) or [])
    return count
