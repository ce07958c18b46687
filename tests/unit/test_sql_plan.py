"""Logical plans against a golden file, and the pushdown rules checked one by one.

Set UPDATE_GOLDEN=1 to rewrite tests/golden/sql/plans.json; then read the diff before committing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp

from lakehouse.sql.interpret import interpret
from lakehouse.sql.plan_steps import scans, walk
from lakehouse.sql.plan_steps import sql as text_of
from tests.golden_files import assert_golden
from tests.unit.sql_cases import acme_view

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "sql" / "plans.json"

QUERIES = [
    "SELECT city, total FROM orders WHERE total > 10 AND city = 'Oslo' ORDER BY total DESC "
    "LIMIT 3",
    "SELECT c.name, sum(o.total) AS spent FROM orders o JOIN customers c "
    "ON o.customer_id = c.id AND c.profile.vip WHERE o.total > 1 GROUP BY c.name "
    "HAVING sum(o.total) > 5",
    "SELECT o.city, c.name FROM orders o LEFT JOIN customers c ON o.customer_id = c.id "
    "AND c.city = 'Oslo' WHERE c.name IS NULL AND o.total < 100",
    "SELECT o.city FROM orders o RIGHT JOIN customers c ON o.customer_id = c.id "
    "WHERE o.total > 1",
    "WITH big AS (SELECT * FROM orders WHERE total > 10) SELECT city, count(*) FROM big "
    "GROUP BY city",
    "SELECT city FROM orders UNION ALL SELECT city FROM customers ORDER BY city LIMIT 10",
    "SELECT DISTINCT city, row_number() OVER (PARTITION BY city ORDER BY total) AS r "
    "FROM orders",
    "SELECT count(*) FROM orders WHERE customer_id IN (SELECT id FROM customers "
    "WHERE city = 'Oslo') OR total > 50",
    "SELECT t.n FROM (SELECT customer_id AS n FROM orders WHERE total > 2) AS t",
]


def golden_text() -> str:
    view = acme_view()
    entries: list[dict[str, Any]] = []
    for sql in QUERIES:
        found = interpret(sql, None, view)
        entries.append({"query": sql, "sql": found.sql, "plan": found.plan(view).to_json()})
    return json.dumps(entries, indent=1) + "\n"


def test_golden_plans() -> None:
    assert_golden(GOLDEN, golden_text(), "logical plans")


def _scans(sql: str) -> dict[str, tuple[list[str], list[str]]]:
    view = acme_view()
    plan = interpret(sql, None, view).plan(view)
    return {s.alias: (list(s.columns), [text_of(f) for f in s.filters]) for s in scans(plan)}


@pytest.mark.parametrize(("sql", "expected"), [
    # single table: every conjunct on it is pushed, only needed columns are read
    ("SELECT city FROM orders WHERE total > 1 AND city <> 'x'",
     {"orders": (["total", "city"], ['"orders"."total" > 1', '"orders"."city" <> \'x\''])}),
    # a predicate spanning two tables stays above the join
    ("SELECT 1 FROM orders o, customers c WHERE o.customer_id = c.id AND c.name = 'Ann'",
     {"o": (["customer_id"], []), "c": (["id", "name"], ['"c"."name" = \'Ann\''])}),
    # the null-filled side of a LEFT JOIN keeps WHERE predicates above the join
    ("SELECT 1 FROM orders o LEFT JOIN customers c ON o.customer_id = c.id "
     "WHERE c.name = 'Ann' AND o.total > 1",
     {"o": (["customer_id", "total"], ['"o"."total" > 1']), "c": (["id", "name"], [])}),
    # but its ON predicates on itself filter it before the join
    ("SELECT 1 FROM orders o LEFT JOIN customers c ON o.customer_id = c.id AND c.name = 'A'",
     {"o": (["customer_id"], []), "c": (["id", "name"], ['"c"."name" = \'A\''])}),
    # FULL JOIN: nothing moves
    ("SELECT 1 FROM orders o FULL JOIN customers c ON o.customer_id = c.id AND c.name = 'A' "
     "WHERE o.total > 1",
     {"o": (["customer_id", "total"], []), "c": (["id", "name"], [])}),
    # a disjunction with a subquery is not pushed; COUNT(*) reads no column
    ("SELECT count(*) FROM orders WHERE total > 1 OR city IN (SELECT city FROM customers)",
     {"orders": (["total", "city"], []), "customers": (["city"], [])}),
])
def test_pushdown(sql: str, expected: dict[str, tuple[list[str], list[str]]]) -> None:
    assert _scans(sql) == expected


def test_plan_steps_hold_the_query_trees() -> None:
    """Expressions stay sqlglot trees in the plan (nothing parses plan text again); the nodes
    pushed into a scan are the bound query's own, and the plan's JSON renders them as text."""
    view = acme_view()
    found = interpret("SELECT city FROM orders WHERE total > 1 AND city <> 'x' ORDER BY city "
                      "LIMIT 2", None, view)
    plan = found.plan(view)
    [scan] = scans(plan)
    assert all(isinstance(f, exp.Expr) for f in scan.filters)
    assert all(f.root() is found.tree for f in scan.filters)
    assert [step.STEP for step in walk(plan)] == ["limit", "sort", "project", "scan"]
    assert plan.to_json()["input"]["input"]["input"]["filters"] == [
        '"orders"."total" > 1', '"orders"."city" <> \'x\'']
