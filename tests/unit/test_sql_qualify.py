"""Qualification and type checks: every problem listed, each with its code, line and column."""

from __future__ import annotations

import pytest

from lakehouse.sql.interpret import interpret, validate
from tests.unit.sql_cases import acme_view

PROBLEMS: list[tuple[str, list[tuple[str, int, int]]]] = [
    ("SELECT * FROM nowhere", [("unknown_table", 1, 15)]),
    ("SELECT a.x FROM orders JOIN nowhere a ON true", [("unknown_table", 1, 29)]),
    ("SELECT nope FROM orders", [("unknown_column", 1, 8)]),
    ("SELECT o.nope, o.city FROM orders o", [("unknown_column", 1, 8)]),
    ("SELECT zz.city FROM orders", [("unknown_column", 1, 8)]),
    ("SELECT city FROM orders o JOIN customers c ON o.customer_id = c.id",
     [("ambiguous_column", 1, 8)]),
    ("SELECT city, nope\nFROM orders o JOIN customers c ON o.customer_id = c.id",
     [("ambiguous_column", 1, 8), ("unknown_column", 1, 14)]),
    ("WITH x AS (SELECT total FROM orders) SELECT total, city FROM x",
     [("unknown_column", 1, 52)]),
    ("SELECT t FROM (SELECT total AS t FROM orders) s WHERE s.nope > 1",
     [("unknown_column", 1, 55)]),
    ("SELECT city FROM orders WHERE city > 3", [("type_mismatch", 1, 31)]),
    ("SELECT sum(city) FROM orders", [("type_mismatch", 1, 8)]),
    ("SELECT avg(c.name) FROM customers c", [("type_mismatch", 1, 8)]),
    ("SELECT total + city FROM orders", [("type_mismatch", 1, 8)]),
    ("SELECT * FROM orders WHERE _timestamp > 7", [("type_mismatch", 1, 28)]),
    ("SELECT *\nFROM orders\nWHERE city > 3 AND sum_total = 1",
     [("unknown_column", 3, 20)]),
]

SOUND = [
    "SELECT city FROM orders WHERE city = 'Oslo' AND total > 3",
    "SELECT * FROM orders WHERE customer_id = '42'",  # DuckDB casts the literal
    "SELECT * FROM orders WHERE _timestamp > '2026-01-01'",
    "SELECT Total AS t FROM ORDERS ORDER BY t",
    "SELECT city, sum(total) AS s FROM orders GROUP BY city HAVING s > 10",
    "SELECT total FROM orders WHERE customer_id IN "
    "(SELECT id FROM customers WHERE customers.city = orders.city)",
    "SELECT o.city, c.city FROM orders o JOIN customers c ON o.customer_id = c.id",
    "SELECT c.profile.age + 1 FROM customers c",
    "SELECT city || total FROM orders",
]


@pytest.mark.parametrize(("sql", "expected"), PROBLEMS)
def test_problems(sql: str, expected: list[tuple[str, int, int]]) -> None:
    problems = validate(sql, None, acme_view())
    assert [(p.code, p.line, p.column) for p in problems] == expected, problems


@pytest.mark.parametrize("sql", SOUND)
def test_sound_queries_have_no_problems(sql: str) -> None:
    assert validate(sql, None, acme_view()) == []


def test_qualification_expands_stars_and_resolves_aliases() -> None:
    found = interpret("SELECT * FROM orders o WHERE total > 1", None, acme_view())
    assert found.sql == (  # `_timestamp` is hidden from `*` (lakehouse/sql/schema_view.py)
        'SELECT "o"."data_id" AS "data_id", '
        '"o"."customer_id" AS "customer_id", "o"."total" AS "total", "o"."city" AS "city", '
        '"o"."items" AS "items" FROM "tenant_acme"."orders" AS "o" WHERE "o"."total" > 1')
    assert [c.column for c in found.columns] == [
        "city", "customer_id", "data_id", "items", "total"]


def test_columns_read_per_table() -> None:
    found = interpret("SELECT c.name, count(*) FROM orders o JOIN customers c "
                      "ON o.customer_id = c.id GROUP BY 1", None, acme_view())
    assert [(c.table, c.column) for c in found.columns] == [
        ("customers", "id"), ("customers", "name"), ("orders", "customer_id")]
    assert found.kind == "select"


def test_exists_reads_only_the_columns_its_conditions_name() -> None:
    found = interpret("SELECT c.name FROM customers c WHERE NOT EXISTS "
                      "(SELECT * FROM orders o WHERE o.customer_id = c.id)", None, acme_view())
    assert [(c.table, c.column) for c in found.columns] == [
        ("customers", "id"), ("customers", "name"), ("orders", "customer_id")]
    assert "EXISTS(SELECT 1 AS \"1\" FROM" in found.sql


def test_a_grouped_exists_keeps_its_star() -> None:
    found = interpret("SELECT c.name FROM customers c WHERE EXISTS "
                      "(SELECT * FROM orders o GROUP BY ALL)", None, acme_view())
    assert ("orders", "total") in [(c.table, c.column) for c in found.columns]
