"""`DESCRIBE <table>`: a table's columns, answered from the SchemaView as an ordinary query.

DuckDB's DESCRIBE would describe the relation the executor registers, which holds the system
columns a query may name and the files' internal ones; the caller asked about its table. So the
statement becomes a VALUES query with DuckDB's DESCRIBE columns (`column_name`, `column_type`,
`null`, `key`, `default`, `extra`) and goes through the pipeline like any query. Every column a
query may name is listed; `extra` is 'hidden' for those `SELECT *` leaves out (see
lakehouse/sql/schema_view.py). DESCRIBE of a query stays refused by the guard.
"""

from __future__ import annotations

from sqlglot import exp

from lakehouse.sql.problems import problem_at, refusal
from lakehouse.sql.schema_view import SchemaView

COLUMNS = ("column_name", "column_type", "null", "key", "default", "extra")


def describe_table(tree: exp.Expr, view: SchemaView) -> exp.Expr:
    """The query answering `tree` when it is `DESCRIBE <table>`; any other tree unchanged."""
    if not isinstance(tree, exp.Describe) or not isinstance(tree.this, exp.Table):
        return tree
    target = tree.this
    if target.args.get("db") or target.args.get("catalog") or not isinstance(
            target.this, exp.Identifier):
        return tree  # the guard refuses it as it refuses DESCRIBE
    table = view.table(target.name)
    if table is None:
        raise refusal([problem_at(target, "unknown_table",
                                  f"no table {target.name!r} in your tenant")])
    text = exp.DataType.build("VARCHAR")
    rows = [exp.Tuple(expressions=[
        exp.Literal.string(c.name), exp.Literal.string(c.type),
        exp.Literal.string("NO" if c.system else "YES"), exp.cast(exp.null(), text),
        exp.cast(exp.null(), text),
        exp.Literal.string("hidden") if c.hidden else exp.cast(exp.null(), text)])
        for c in table.columns]
    values = exp.Values(expressions=rows, alias=exp.TableAlias(
        this=exp.to_identifier("describe"),
        columns=[exp.to_identifier(name) for name in COLUMNS]))
    return exp.select(*[exp.column(name, quoted=True) for name in COLUMNS]).from_(values)
