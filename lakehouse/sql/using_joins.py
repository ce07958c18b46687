"""`JOIN … USING (c)` where more than one source to the left shows `c`: DuckDB refuses it as
ambiguous ("Ambiguous reference to column name"), unless an earlier USING on `c` merged them;
sqlglot would quietly join on the first of them. Found before qualification (pure), as a 400.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from lakehouse.sql.hidden import select_scopes, shown_columns
from lakehouse.sql.problems import Problem, problem_at
from lakehouse.sql.schema_view import SchemaView

UNSUPPORTED_AFTER_COMMA = (
    "USING after a comma in FROM, on a column a table before the comma also has, is not "
    "supported with SELECT *, a column an earlier USING merged or a subquery reading the "
    "column unqualified: write that join's condition with ON")


def ambiguous_using(tree: exp.Expr, view: SchemaView) -> list[Problem]:
    """USING joins DuckDB refuses as ambiguous; those after a comma that sqlglot would resolve
    against a table before the comma (it does not model that `a, b JOIN c USING (k)` is
    `a, (b JOIN c USING (k))`) joined with ON instead, or, where that is not all, a
    documented refusal (README)."""
    if not any(j.args.get("using") for j in tree.find_all(exp.Join)):
        return []  # the usual case, without building scopes
    problems = []
    for scope, select in select_scopes(tree):
        from_ = select.args.get("from_")
        if not isinstance(from_, exp.From):
            continue
        first = (from_.this.alias_or_name, shown_columns(from_.this, scope, view))
        every: list[tuple[str, list[str] | None]] = [first]  # the whole FROM list so far
        shown = [first]  # the sources since the last comma: the USING's left side
        merged: dict[str, set[str]] = {}  # column -> the sources a USING on it merged
        for join in select.args.get("joins") or []:
            right = join.this.alias_or_name
            if not (join.args.get("on") or join.args.get("using") or join.method or join.side
                    or join.kind):
                shown, merged = [], {}  # a comma binds last
            for identifier in join.args.get("using") or []:
                found = _using_problem(identifier, every, shown, merged)
                if found is not None and found.code == "unsupported_query" and _rebind(
                        select, scope, join, shown, merged):
                    break  # joined with ON now: nothing left to merge
                if found is not None:
                    problems.append(found)
                    break
                name = identifier.name.lower()
                merged[name] = {a for a, cols in shown if cols and name in cols} | {right}
            columns = shown_columns(join.this, scope, view)
            shown.append((right, columns))
            every.append((right, columns))
    return problems


def _using_problem(identifier: exp.Identifier, every: list[tuple[str, list[str] | None]],
                   shown: list[tuple[str, list[str] | None]],
                   merged: dict[str, set[str]]) -> Problem | None:
    if any(columns is None for _, columns in every):
        return None  # a source of unknown columns: DuckDB decides
    name = identifier.name.lower()
    having = {alias for alias, columns in shown if columns and name in columns}
    if len(having) > 1 and not having <= merged.get(name, set()):
        return problem_at(identifier, "ambiguous_column", (
            f"USING ({identifier.name}): more than one table to the left of the join has a "
            f"column {identifier.name!r} ({', '.join(sorted(having))}); join with ON and "
            "name the one you mean"))
    picked = next((alias for alias, columns in every if columns and name in columns), None)
    meant = next((alias for alias, columns in shown if columns and name in columns), None)
    if picked != meant:
        return problem_at(identifier, "unsupported_query", UNSUPPORTED_AFTER_COMMA)
    return None


def _rebind(select: exp.Select, scope: Scope, join: exp.Join,
            shown: list[tuple[str, list[str] | None]], merged: dict[str, set[str]]) -> bool:
    """Turn `JOIN r USING (k, …)`, after a comma, into `JOIN r ON l.k = r.k AND …` with `l`
    the source after the comma that has `k`, and each unqualified `k` of the select into the
    column DuckDB's merged `k` is (l.k; r.k for a RIGHT join; COALESCE(l.k, r.k) for a FULL
    one). Not done (False) where that is not all: a star DuckDB would expand with `k` once,
    a `k` merged before, a subquery reading an unqualified `k`."""
    right = join.this.alias_or_name
    names = [i.name for i in join.args.get("using") or []]
    lefts: dict[str, str] = {}
    for name in names:
        key = name.lower()
        source = next((alias for alias, cols in shown if cols and key in cols), None)
        if source is None or key in merged:
            return False
        lefts[key] = source
    if any(isinstance(p, exp.Star) or p.find(exp.Columns) for p in select.expressions):
        return False
    unqualified = [c for c in select.find_all(exp.Column)
                   if not c.table and c.name.lower() in lefts]
    if any(c.find_ancestor(exp.Select) is not select for c in unqualified):
        return False
    side = (join.side or "").upper()
    for column in unqualified:
        left: exp.Expr = exp.column(column.name, table=lefts[column.name.lower()])
        other: exp.Expr = exp.column(column.name, table=right)
        merged_column = left
        if side == "RIGHT":
            merged_column = other
        elif side == "FULL":
            merged_column = exp.func("COALESCE", left, other)
        if column.parent is select:  # an output: named as the USING column
            merged_column = exp.alias_(merged_column, column.name)
        column.replace(merged_column)
    join.set("using", None)
    join.set("on", exp.and_(*(exp.column(n, table=lefts[n.lower()]).eq(
        exp.column(n, table=right)) for n in names)))
    return True
