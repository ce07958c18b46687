"""DuckDB's own binder as the type checker's last word: a qualified query is bound (never run)
against empty tables of the tenant's columns, so the checker refuses exactly what DuckDB
refuses when the query runs, and knows the type of each output column before anything runs.

sqlglot's rules (lakehouse/sql/typecheck.py) still run first: they point at the line and
column of the common mistakes. What they let through is judged here. DuckDB reports positions in
the qualified text it was given, not in the caller's query, so problems found here carry none.

The database is in memory, holds only empty tables and never reads a file (external access is
off): binding is a computation over the SchemaView, like the rest of the interpreter. Each
distinct table shape is created once, in a schema named by its hash, and a query is bound with
those schemas on its search path. A bind has a database to itself: a query of ten thousand
columns takes DuckDB a second to bind, and must not hold up another tenant's query. Databases
are kept between binds (opening one costs 35–60 ms, more than the rest of a small query; every
query runs in a thread of its own, so a database per thread was a new one per query).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import duckdb
from sqlglot import exp

from lakehouse.sql.problems import Problem
from lakehouse.sql.schema_view import SchemaView, TableView

_MAX_SHAPES = 128  # distinct table shapes a database keeps; the least recently used is dropped
_KEPT = 4  # idle databases kept: about the binds running at once
_MAX_MESSAGE = 300
# Binder messages that are about types meeting (a cast, a comparison, an operator's or a
# function's argument types), as opposed to a query's shape (GROUP BY, aggregates, windows).
_TYPE_WORDS = re.compile(r"type|cast|convert|conversion|no function matches|cannot compare|"
                         r"cannot mix", re.IGNORECASE)
_SHAPE_NAME = re.compile(r'"?s_[0-9a-f]{20}"?\.')
_NOISE = re.compile(r"^[A-Za-z ]*Error: ")


@dataclass(frozen=True, slots=True)
class OutputColumn:
    name: str
    type: str  # DuckDB's type text, e.g. "BIGINT", "DECIMAL(18,3)", "STRUCT(a VARCHAR)[]"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}


@dataclass(frozen=True, slots=True)
class Bound:
    """What DuckDB's binder says of a query: its output columns, or why it refuses it."""

    outputs: tuple[OutputColumn, ...] = ()
    problems: tuple[Problem, ...] = ()  # none: accepted, or the binder could not tell


class _Shapes:
    """One in-memory DuckDB database of empty tables, a schema per table shape (one bind's at a
    time)."""

    def __init__(self) -> None:
        self._con: Any = None
        self._schemas: OrderedDict[str, None] = OrderedDict()

    def _connection(self) -> Any:
        if self._con is None:
            # As the executor's databases are (lakehouse/executor/sandbox.py), so the binder
            # knows the same functions, and locked the same way.
            self._con = duckdb.connect(config={
                "enable_external_access": False, "threads": 1, "memory_limit": "64MB",
                "autoinstall_known_extensions": False, "autoload_known_extensions": False})
            self._con.execute("SET python_enable_replacements = false")
            self._con.execute("SET lock_configuration = true")
        return self._con

    def _schema_of(self, table: TableView) -> str:
        columns = ", ".join(_column(c.name, c.type) for c in table.columns)
        body = f"{_quote(table.name)}\x00{columns}"
        schema = "s_" + hashlib.blake2b(body.encode(), digest_size=10).hexdigest()
        if schema in self._schemas:
            self._schemas.move_to_end(schema)
            return schema
        con = self._connection()
        con.execute(f"CREATE SCHEMA {schema}")
        # A view, not a table: a column only ever seen as null has DuckDB's NULL type, which
        # no table column can have.
        con.execute(f"CREATE VIEW {schema}.{_quote(table.name)} AS SELECT {columns} WHERE false")
        self._schemas[schema] = None
        while len(self._schemas) > _MAX_SHAPES:
            old, _ = self._schemas.popitem(last=False)
            con.execute(f"DROP SCHEMA {old} CASCADE")
        return schema

    def bind(self, sql: str, tables: Iterable[TableView]) -> Bound:
        try:
            schemas = [self._schema_of(t) for t in tables]
            con = self._connection()
            con.execute(f"SET search_path = '{','.join([*schemas, 'main'])}'")
            relation = con.sql(sql)
            if relation is None:  # not a query: the guard refuses these before
                return Bound()
            names, types = relation.columns, relation.types
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.FatalException | duckdb.InternalException):
                self.broken = True
            return _refused(exc)
        return Bound(tuple(OutputColumn(n, str(t)) for n, t in zip(names, types, strict=True)))

    broken = False  # an internal or fatal error: not given to another bind

    def close(self) -> None:
        if self._con is not None:
            self._con.close()


def _refused(exc: duckdb.Error) -> Bound:
    if not isinstance(exc, duckdb.BinderException | duckdb.ConversionException
                      | duckdb.CatalogException | duckdb.ParserException):
        # Not the query's fault as far as anyone can tell here (an internal error, a limit);
        # the engine still judges it when it runs.
        return Bound()
    message = _NOISE.sub("", _SHAPE_NAME.sub("", str(exc)).split("\n", 1)[0]).strip()
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE - 1] + "…"
    typed = isinstance(exc, duckdb.ConversionException) or _TYPE_WORDS.search(message)
    code = "type_mismatch" if typed else "invalid_query"
    return Bound(problems=(Problem(code, f"DuckDB cannot run this query: {message}"),))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _column(name: str, kind: str) -> str:
    return f"NULL AS {_quote(name)}" if kind == "NULL" else f"NULL::{kind} AS {_quote(name)}"


_idle: list[_Shapes] = []
_idle_lock = threading.Lock()


def bind_types(tree: exp.Expr, view: SchemaView) -> Bound:
    """DuckDB's judgement of a qualified tree (names resolved against `view`)."""
    names = {t.name.lower() for t in tree.find_all(exp.Table) if t.name}
    tables = [t for name in sorted(names) if (t := view.table(name)) is not None]
    with _idle_lock:
        shapes = _idle.pop() if _idle else _Shapes()
    bound = shapes.bind(tree.sql(dialect="duckdb"), tables)
    # Not put back when the bind raised (interrupted midway: not trusted) or broke it.
    with _idle_lock:
        keep = not shapes.broken and len(_idle) < _KEPT
        if keep:
            _idle.append(shapes)
    if not keep:
        shapes.close()
    return bound
