"""Qualify a guarded tree against the SchemaView: tables, columns, stars and aliases, with every
problem listed (unknown table, unknown column, ambiguous column) and where it is.

sqlglot's own qualify stops at the first problem; these passes run its steps with validation off
and then look at what stayed unresolved, so one request reports all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import OptimizeError, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify_columns import qualify_columns, quote_identifiers
from sqlglot.optimizer.qualify_tables import qualify_tables
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.schema import MappingSchema

from lakehouse.sql.hidden import natural_joins, shield_tables, shield_using_tables
from lakehouse.sql.order_names import ambiguous_order_names
from lakehouse.sql.paren_joins import flatten_inner_joins, using_beside_nested_joins
from lakehouse.sql.problems import Problem, problem_at, unsupported
from lakehouse.sql.schema_view import SchemaView
from lakehouse.sql.scrub import scrub
from lakehouse.sql.using_joins import ambiguous_using

# sqlglot raises more than its own errors on some odd trees (an assertion, a KeyError); any of
# them means "cannot qualify this", a 400 for the caller, never a 500.
QUALIFY_ERRORS = (SqlglotError, ValueError, KeyError, TypeError, AttributeError, IndexError,
                  AssertionError, RecursionError)


@dataclass(frozen=True, slots=True)
class Qualified:
    tree: exp.Expr  # a qualified copy; the input tree is not changed
    schema: MappingSchema
    problems: tuple[Problem, ...]


def catalog_tables(tree: exp.Expr) -> list[exp.Table]:
    """The table nodes that name catalog tables (not CTEs), found through sqlglot's scopes."""
    tables: list[exp.Table] = []
    for scope in traverse_scope(tree):
        tables.extend(s for s in scope.sources.values() if isinstance(s, exp.Table))
    return tables


def _unknown_tables(tree: exp.Expr, view: SchemaView) -> list[Problem]:
    return [problem_at(t, "unknown_table", f"no table {t.name!r} in your tenant")
            for t in catalog_tables(tree) if view.table(t.name) is None]


def _source_columns(source: exp.Table | Scope, view: SchemaView) -> set[str] | None:
    """Lower-cased column names a source offers (None when unknown, e.g. a star survived)."""
    if isinstance(source, exp.Table):
        table = view.table(source.name)
        return None if table is None else {c.name.lower() for c in table.columns}
    query = source.expression
    if isinstance(query, exp.Query):
        if any(isinstance(e, exp.Star) or e.is_star for e in query.selects):
            return None
        return {name.lower() for name in query.named_selects}
    return None


def _qualified_column_problems(tree: exp.Expr, view: SchemaView) -> list[Problem]:
    """`alias.column` where the alias is a known source that has no such column."""
    problems = []
    for scope in traverse_scope(tree):
        for column in scope.columns:
            source = scope.sources.get(column.table) if column.table else None
            if source is None:
                continue
            names = _source_columns(source, view)
            if names is not None and column.name.lower() not in names:
                problems.append(problem_at(column, "unknown_column",
                                           f"{column.table!r} has no column {column.name!r}"))
    return problems


def _unresolved_column_problems(tree: exp.Expr, view: SchemaView) -> list[Problem]:
    """Columns qualification left alone: in no source (unknown) or in several (ambiguous)."""
    problems = []
    for scope in traverse_scope(tree):
        if not isinstance(scope.expression, exp.Select):
            continue
        outer = [c for c in scope.external_columns if c.table and c.table not in scope.sources]
        if scope.is_correlated_subquery:
            outer = []  # references to the enclosing query's sources are resolved there
        for column in outer:
            problems.append(problem_at(column, "unknown_column",
                                       f"no table or alias {column.table!r} for column "
                                       f"{column.name!r}"))
        for column in scope.unqualified_columns:
            owners = [name for name, source in scope.sources.items()
                      if (cols := _source_columns(source, view)) is not None
                      and column.name.lower() in cols]
            if len(owners) > 1:
                problems.append(problem_at(column, "ambiguous_column",
                                           f"column {column.name!r} is in {', '.join(owners)}; "
                                           "name its table"))
            elif scope.is_correlated_subquery and not owners:
                continue  # an outer query's column; that scope reports it if unknown
            else:
                problems.append(problem_at(column, "unknown_column",
                                           f"no column {column.name!r} in "
                                           f"{', '.join(scope.sources) or 'this query'}"))
    return problems


def _exists_selects_nothing(tree: exp.Expr) -> None:
    """`EXISTS (SELECT * …)` becomes `EXISTS (SELECT 1 …)`: EXISTS only asks whether a row
    comes, so the star reads no column. Expanded, it named every column of the table, and the
    scan read all of them (TPC-H Q4, Q21 and Q22 read all of lineitem or orders)."""
    for found in tree.find_all(exp.Exists):
        select = found.this
        if isinstance(select, exp.Select) and len(select.expressions) == 1 and isinstance(
                select.expressions[0], exp.Star) and not (
                select.args.get("group") or select.args.get("having")):  # GROUP BY ALL reads *
            select.set("expressions", [exp.Literal.number(1)])


def _alias_subquery_outputs(tree: exp.Expr) -> None:
    """Name every scalar subquery of a select list with an Alias node, as qualification names
    other unnamed outputs (`_col_N`). sqlglot names a subquery output with the subquery's own
    table alias instead, and its expansion of `ORDER BY 2` / `GROUP BY 2` then fails on it (an
    AssertionError: the answer to `SELECT a, (SELECT …) FROM t ORDER BY 2` was a 500)."""
    for select in tree.find_all(exp.Select):
        for index, projection in enumerate(select.expressions):
            if not isinstance(projection, exp.Subquery):
                continue
            alias = projection.args.get("alias")
            name = alias.this if isinstance(alias, exp.TableAlias) and alias.this else (
                exp.to_identifier(f"_col_{index}"))
            bare = projection.copy()
            bare.set("alias", None)
            projection.replace(exp.Alias(this=bare, alias=name))


def qualify(tree: exp.Expr, view: SchemaView, dialect: str) -> Qualified:
    """A qualified copy of a guarded tree, and the problems found (empty when it is sound)."""
    schema = view.mapping_schema(dialect)
    try:
        work = normalize_identifiers(tree.copy(), dialect=dialect,
                                     store_original_column_identifiers=True)
        work = qualify_tables(work, dialect=dialect)
        problems = _unknown_tables(work, view)
        if problems:
            return Qualified(work, schema, tuple(problems))
        problems = _qualified_column_problems(work, view)
        if problems:
            return Qualified(work, schema, tuple(problems))
        _exists_selects_nothing(work)
        _alias_subquery_outputs(work)
        flatten_inner_joins(work)
        natural_joins(work, view)
        problems = (using_beside_nested_joins(work) or ambiguous_using(work, view)
                    or ambiguous_order_names(work, view))
        if problems:
            return Qualified(work, schema, tuple(problems))
        shield_using_tables(work, view)
        work = qualify_columns(work, schema, expand_alias_refs=True, expand_stars=True)
        work = quote_identifiers(work, dialect=dialect, identify=True)
        problems = _unresolved_column_problems(work, view)
        if not problems:
            shield_tables(work, view)
    except OptimizeError as exc:  # sqlglot's word for a query it finds wrong
        return Qualified(tree, schema, (problem_at(None, "invalid_query", scrub(str(exc))),))
    except Exception as exc:
        return Qualified(tree, schema, (unsupported(exc, "resolve the names of"),))
    return Qualified(work, schema, tuple(problems))
