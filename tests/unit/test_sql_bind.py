"""Tenant binding, with DuckDB as the oracle: a bound query reads only its tenant's schema and
answers as the query it came from."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from lakehouse.errors import LakehouseError
from lakehouse.sql.bind import bind, tenant_schema
from lakehouse.sql.interpret import interpret
from lakehouse.sql.parse import parse_query
from lakehouse.sql.qualify import qualify
from lakehouse.sql.schema_view import SchemaView
from tests.unit.sql_cases import ACCEPTED, SCHEMAS, acme_view

ROWS = {
    "orders": [("o1", 1, 10.0, "Oslo", ["pen"]), ("o2", 2, 25.5, "Rome", []),
               ("o3", 1, 4.0, "Oslo", ["ink", "pad"])],
    "customers": [("c1", 1, "Ann", "Oslo", {"age": 30, "vip": True}),
                  ("c2", 2, "Bob", "Kyiv", {"age": 41, "vip": False})],
}


def _create(con: duckdb.DuckDBPyConnection, schema: str, view: SchemaView,
            rows: dict[str, list[tuple[Any, ...]]], *, shown_only: bool = False) -> None:
    """The view's tables in `schema`; with `shown_only`, without its hidden columns (what the
    user's own tables hold: `SELECT *` there is what the platform's `*` must answer)."""
    con.execute(f'CREATE SCHEMA "{schema}"')
    for table in view.tables:
        kept = [c for c in table.columns if not (shown_only and c.hidden)]
        columns = ", ".join(f'"{c.name}" {c.type}' for c in kept)
        con.execute(f'CREATE TABLE "{schema}"."{table.name}" ({columns})')
        for row in rows[table.name]:
            full = (row[0], "2026-11-26 10:00:00+00", *row[1:])
            values = tuple(v for v, c in zip(full, table.columns, strict=True) if c in kept)
            marks = ", ".join("?" for _ in values)
            # Test-owned names only; the values go as parameters.
            con.execute(f'INSERT INTO "{schema}"."{table.name}" VALUES ({marks})',  # noqa: S608
                        values)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    view = acme_view()
    _create(connection, "plain", view, ROWS, shown_only=True)  # what the query means, unbound
    _create(connection, "plain_all", view, ROWS)  # … for a query that names hidden columns
    _create(connection, tenant_schema("acme"), view, ROWS)
    other = {"orders": [("x1", 9, 999.0, "Oslo", ["secret"])],
             "customers": [("x2", 9, "Eve", "Oslo", {"age": 1, "vip": True})]}
    _create(connection, tenant_schema("globex"), SchemaView.from_schemas("globex", SCHEMAS),
            other)
    yield connection
    connection.close()


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return sorted(con.execute(sql).fetchall(), key=repr)


@pytest.mark.parametrize(("dialect", "sql"), [a for a in ACCEPTED if a[0] == "duckdb"])
def test_bound_queries_answer_as_the_originals(con: duckdb.DuckDBPyConnection, dialect: str,
                                               sql: str) -> None:
    found = interpret(sql, dialect, acme_view())
    hidden = {c.name for t in acme_view().tables for c in t.columns if c.hidden}
    con.execute(f"SET schema = '{'plain_all' if any(h in sql for h in hidden) else 'plain'}'")
    expected = _rows(con, sql)
    con.execute("SET schema = 'main'")  # the bound query must not depend on the search path
    assert _rows(con, found.sql) == expected


@pytest.mark.parametrize(("dialect", "sql"), [a for a in ACCEPTED if a[0] != "duckdb"])
def test_other_dialects_run_as_duckdb(con: duckdb.DuckDBPyConnection, dialect: str,
                                      sql: str) -> None:
    found = interpret(sql, dialect, acme_view())
    assert "tenant_globex" not in found.sql
    con.execute(found.sql).fetchall()


def test_every_table_is_bound_and_ctes_stay_local(con: duckdb.DuckDBPyConnection) -> None:
    sql = ("WITH orders AS (SELECT * FROM orders WHERE total > 5) "
           "SELECT o.city, c.name FROM orders o JOIN Customers c ON o.customer_id = c.id")
    found = interpret(sql, None, acme_view())
    assert [(b.table, b.bound_as, b.aliases) for b in found.bindings] == [
        ("customers", "tenant_acme.customers", ("c",)),
        ("orders", "tenant_acme.orders", ("orders",))]
    assert found.sql.count('"tenant_acme".') == 2
    assert _rows(con, found.sql) == [("Oslo", "Ann"), ("Rome", "Bob")]


def test_another_tenant_sees_only_its_own_rows(con: duckdb.DuckDBPyConnection) -> None:
    globex = SchemaView.from_schemas("globex", SCHEMAS)
    found = interpret("SELECT data_id FROM orders", None, globex)
    assert _rows(con, found.sql) == [("x1",)]


def test_a_tenant_without_the_table_cannot_name_it() -> None:
    only_customers = SchemaView.from_schemas("globex", {"customers": SCHEMAS["customers"]})
    with pytest.raises(LakehouseError) as refused:
        interpret("SELECT * FROM orders", None, only_customers)
    assert refused.value.code == "unknown_table"


def test_binding_refuses_what_qualification_did_not_resolve() -> None:
    view = acme_view()
    tree, dialect = parse_query("SELECT * FROM orders", None)
    qualified = qualify(tree, view, dialect).tree
    with pytest.raises(LakehouseError) as refused:
        bind(qualified, SchemaView.from_schemas("acme", {}))
    assert refused.value.code == "unknown_table"
