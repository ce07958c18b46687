"""`JOIN … USING (c)` where more than one source to the left shows `c`: DuckDB refuses it as
ambiguous ("Ambiguous reference to column name"), unless an earlier USING on `c` merged them;
sqlglot would quietly join on the first of them. Found before qualification (pure), as a 400.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from lakehouse.sql.hidden import shown_columns
from lakehouse.sql.problems import Problem, problem_at
from lakehouse.sql.schema_view import SchemaView


def ambiguous_using(tree: exp.Expr, view: SchemaView) -> list[Problem]:
    if not any(j.args.get("using") for j in tree.find_all(exp.Join)):
        return []  # the usual case, without building scopes
    problems = []
    for scope in traverse_scope(tree):
        select = scope.expression
        from_ = select.args.get("from_") if isinstance(select, exp.Select) else None
        if not isinstance(from_, exp.From):
            continue
        shown: list[tuple[str, list[str] | None]] = [
            (from_.this.alias_or_name, shown_columns(from_.this, scope, view))]
        merged: dict[str, set[str]] = {}  # column -> the sources a USING on it merged
        for join in select.args.get("joins") or []:
            right = join.this.alias_or_name
            for identifier in join.args.get("using") or []:
                name = identifier.name.lower()
                if any(columns is None for _, columns in shown):
                    break  # a source of unknown columns: DuckDB decides
                having = {alias for alias, columns in shown if columns and name in columns}
                if len(having) > 1 and not having <= merged.get(name, set()):
                    problems.append(problem_at(identifier, "ambiguous_column", (
                        f"USING ({identifier.name}): more than one table to the left of the "
                        f"join has a column {identifier.name!r} ({', '.join(sorted(having))});"
                        " join with ON and name the one you mean")))
                merged[name] = {*having, right}
            shown.append((right, shown_columns(join.this, scope, view)))
    return problems
