"""Hidden columns (SchemaView: `_timestamp`, a made-up `data_id`) where sqlglot does not expand.

Qualification expands `*`, `t.*`, `* EXCLUDE …` and USING against the view's visible columns
(the MappingSchema's `visible`), so most queries never show a hidden column. Two forms are left
for DuckDB to expand, and DuckDB sees every column of a relation:

- NATURAL JOIN: sqlglot turns it into USING over the columns both sides have, hidden ones too,
  so two loaded tables would join on their made-up keys. `natural_joins` gives such a join the
  USING list of the columns both sides *show*, where every source's columns are known.
- Stars qualification cannot expand (`COLUMNS(*)`, `COLUMNS('regex')`, `* LIKE 'a%'`):
  `shield_tables` reads each table with hidden columns through a derived table of its visible
  columns (and the hidden ones the query names), so DuckDB's own expansion cannot reach them.

Both are pure passes over a tree, run by lakehouse/sql/qualify.py.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from lakehouse.sql.schema_view import SchemaView


def natural_joins(tree: exp.Expr, view: SchemaView) -> None:
    """Give each NATURAL JOIN over catalog tables the USING list of the columns both sides
    show (before qualification: sources named, columns not yet)."""
    if not any(j.method == "NATURAL" for j in tree.find_all(exp.Join)):
        return  # the usual case, without building scopes
    for scope in traverse_scope(tree):
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        from_ = select.args.get("from_")
        joins = select.args.get("joins") or []
        if not isinstance(from_, exp.From) or not any(j.method == "NATURAL" for j in joins):
            continue
        left = shown_columns(from_.this, scope, view)
        for join in joins:
            right = shown_columns(join.this, scope, view)
            if left is None or right is None:
                break  # a source of unknown columns: sqlglot decides from here, as before
            using = [name for name in left if name in right]
            # Nothing in common: DuckDB's NATURAL JOIN is a cross join; left as written.
            if join.method == "NATURAL" and not join.args.get("using") and using:
                join.set("method", None)
                join.set("using", [exp.to_identifier(name) for name in using])
            left = [*left, *(name for name in right if name not in left)]


def select_scopes(tree: exp.Expr) -> Iterator[tuple[Scope, exp.Select]]:
    """Each scope of the tree that is a SELECT, with it."""
    for scope in traverse_scope(tree):
        if isinstance(scope.expression, exp.Select):
            yield scope, scope.expression


def shown_columns(source: exp.Expr, scope: Scope, view: SchemaView) -> list[str] | None:
    """The lower-cased columns a FROM item shows to `*`, or None when they are not known."""
    return source_columns(source.alias_or_name, scope, view)


def source_columns(alias: str, scope: Scope, view: SchemaView) -> list[str] | None:
    """The lower-cased columns the source `alias` of `scope` shows to `*` (None: unknown)."""
    found = scope.sources.get(alias)
    if isinstance(found, exp.Table):
        table = view.table(found.name)
        return None if table is None else [c.name.lower() for c in table.columns
                                           if not c.hidden]
    # A set operation shows its first query's names.
    if isinstance(found, Scope) and isinstance(found.expression, exp.Select | exp.SetOperation):
        selects = found.expression.selects
        if any(s.is_star for s in selects):
            return None
        return [s.alias_or_name.lower() for s in selects]
    return None


def _expands_itself(query: exp.Expr) -> bool:
    """A star DuckDB expands (qualification left it), or a COLUMNS(…) of any kind."""
    for node in query.find_all(exp.Star, exp.Columns):
        if isinstance(node, exp.Star) and isinstance(node.parent, exp.Count):
            continue  # COUNT(*) counts rows
        owner = node.find_ancestor(exp.Select)
        if owner is query:
            return True
    return False


def shield_tables(tree: exp.Expr, view: SchemaView) -> None:
    """In every SELECT where DuckDB expands a star itself, read each table that has hidden
    columns as `(SELECT <shown columns, hidden ones named> FROM t AS t) AS t` (after
    qualification: identifiers quoted, columns qualified)."""
    if not any(not isinstance(n.parent, exp.Count) for n in tree.find_all(exp.Star, exp.Columns)):
        return  # the usual case, without building scopes
    for scope in traverse_scope(tree):
        if not isinstance(scope.expression, exp.Select) or not _expands_itself(
                scope.expression):
            continue
        for alias, source in list(scope.sources.items()):
            _shield(tree, view, alias, source)


def shield_using_tables(tree: exp.Expr, view: SchemaView) -> None:
    """`JOIN … USING (c)` joins on the first source to its left that has `c`, for sqlglot hidden
    columns included, for DuckDB the columns a source shows: before qualification, read each
    table whose hidden columns a USING list names through its shown columns, as
    `shield_tables` does."""
    if not any(j.args.get("using") for j in tree.find_all(exp.Join)):
        return  # the usual case, without building scopes
    for scope, select in select_scopes(tree):
        using = {i.name.lower() for j in select.args.get("joins") or []
                 for i in j.args.get("using") or []}
        if not using:
            continue
        for alias, source in list(scope.sources.items()):
            _shield(tree, view, alias, source, only_for=using)


def _shield(tree: exp.Expr, view: SchemaView, alias: str, source: object,
            only_for: set[str] | None = None) -> None:
    """Read catalog table `source` (named `alias`) as `(SELECT <shown columns, hidden ones
    the query names> FROM t AS alias) AS alias`, if it hides columns (one of `only_for`)."""
    if not isinstance(source, exp.Table) or source.args.get("db"):
        return
    table = view.table(source.name)
    alias_node = source.args.get("alias")
    if table is None or (isinstance(alias_node, exp.TableAlias)
                         and alias_node.args.get("columns")):
        return
    hidden = {c.name.lower() for c in table.columns if c.hidden}
    if not hidden or (only_for is not None and not hidden & only_for):
        return
    named = {c.name.lower() for c in tree.find_all(exp.Column)
             if c.table == alias and c.name.lower() in hidden}
    columns = [exp.column(c.name, table=alias, quoted=True).as_(c.name, quoted=True)
               for c in table.columns
               if c.name.lower() not in hidden or c.name.lower() in named]
    inner = exp.select(*columns).from_(source.copy())
    source.replace(exp.Subquery(this=inner, alias=exp.TableAlias(
        this=exp.to_identifier(alias, quoted=True))))
