"""The JSON DSL: each form's SQL, refusals of bad shapes, and no way around the guard."""

from __future__ import annotations

import pytest

from lakehouse.errors import LakehouseError
from lakehouse.sql.dsl import (
    AllOf,
    AnyOf,
    Compare,
    DslQuery,
    Join,
    JoinOn,
    Negate,
    OrderKey,
    Output,
    SqlCondition,
    to_tree,
)
from lakehouse.sql.interpret import interpret_tree
from tests.unit.sql_cases import acme_view

CASES: list[tuple[DslQuery, str]] = [
    (DslQuery("orders"), "SELECT * FROM orders"),
    (DslQuery("orders", select=(Output("city"), Output("total", alias="t"))),
     "SELECT city, total AS t FROM orders"),
    (DslQuery("orders", where=Compare("total", ">=", 10)),
     "SELECT * FROM orders WHERE total >= 10"),
    (DslQuery("orders", where=Compare("city", "in", ("Oslo", "Rome"))),
     "SELECT * FROM orders WHERE city IN ('Oslo', 'Rome')"),
    (DslQuery("orders", where=Compare("city", "not_in", ("Oslo",))),
     "SELECT * FROM orders WHERE NOT city IN ('Oslo')"),
    (DslQuery("orders", where=Compare("total", "between", (1, 2.5))),
     "SELECT * FROM orders WHERE total BETWEEN 1 AND 2.5"),
    (DslQuery("orders", where=Compare("city", "is_null")),
     "SELECT * FROM orders WHERE city IS NULL"),
    (DslQuery("orders", where=Compare("city", "is_not_null")),
     "SELECT * FROM orders WHERE NOT city IS NULL"),
    (DslQuery("orders", where=Compare("city", "like", "O%")),
     "SELECT * FROM orders WHERE city LIKE 'O%'"),
    (DslQuery("orders", where=Compare("city", "=", "x' OR 1=1 --")),
     "SELECT * FROM orders WHERE city = 'x'' OR 1=1 --'"),
    (DslQuery("orders", where=AllOf((Compare("total", ">", 1), AnyOf((
        Compare("city", "=", "Oslo"), Negate(Compare("customer_id", "=", 2))))))),
     "SELECT * FROM orders WHERE (total > 1 AND (city = 'Oslo' OR NOT (customer_id = 2)))"),
    (DslQuery("orders", where=SqlCondition("total * 2 > 10 OR city ILIKE 'r%'")),
     "SELECT * FROM orders WHERE (total * 2 > 10 OR city ILIKE 'r%')"),
    (DslQuery("orders", select=(Output("city"), Output("total", "sum", alias="s"),
                                Output(agg="count", alias="n"),
                                Output("customer_id", "count_distinct", alias="buyers")),
              group_by=("city",), having=Compare("total", ">", 10, agg="sum"),
              order_by=(OrderKey("s", descending=True), OrderKey(expression="city || 'x'")),
              limit=5, offset=2),
     "SELECT city, SUM(total) AS s, COUNT(*) AS n, COUNT(DISTINCT customer_id) AS buyers "
     "FROM orders GROUP BY city HAVING SUM(total) > 10 ORDER BY s DESC, city || 'x' "
     "ASC LIMIT 5 OFFSET 2"),
    (DslQuery("orders", alias="o", select=(Output("c.name"), Output("c.profile.age")),
              joins=(Join("customers", "c", "left", (JoinOn("o.customer_id", "c.id"),)),)),
     "SELECT c.name, c.profile.age FROM orders AS o LEFT JOIN customers AS c "
     "ON o.customer_id = c.id"),
    (DslQuery("orders", joins=(Join("customers", None, "cross"),), distinct=True,
              select=(Output("name"),)),
     "SELECT DISTINCT name FROM orders CROSS JOIN customers"),
    (DslQuery("orders", alias="o", joins=(Join("customers", "c", "inner",
                                               SqlCondition("o.customer_id = c.id")),)),
     "SELECT * FROM orders AS o JOIN customers AS c ON o.customer_id = c.id"),
]


@pytest.mark.parametrize(("query", "sql"), CASES)
def test_dsl_to_sql(query: DslQuery, sql: str) -> None:
    tree = to_tree(query)
    assert tree.sql(dialect="duckdb") == sql


@pytest.mark.parametrize(("query", "sql"), CASES)
def test_dsl_queries_interpret(query: DslQuery, sql: str) -> None:
    found = interpret_tree(to_tree(query), "duckdb", acme_view())
    assert found.sql.count('"tenant_acme".') == 1 + len(query.joins)  # every table, bound


@pytest.mark.parametrize("query", [
    DslQuery("orders; DROP TABLE x"),
    DslQuery("orders", alias="o o"),
    DslQuery("orders", select=(Output("city) FROM x --"),)),
    DslQuery("orders", select=(Output(),)),
    DslQuery("orders", select=(Output("city", expression="1"),)),
    DslQuery("orders", select=(Output("city", "median"),)),
    DslQuery("orders", select=(Output(agg="sum"),)),
    DslQuery("orders", where=Compare("total", "~", 1)),
    DslQuery("orders", where=Compare("total", "in", 1)),
    DslQuery("orders", where=Compare("total", "between", (1,))),
    DslQuery("orders", where=Compare("total", "=", (1, 2))),
    DslQuery("orders", where=AllOf(())),
    DslQuery("orders", where=SqlCondition("1; DROP TABLE orders")),
    DslQuery("orders", where=SqlCondition("SELECT 1")),
    DslQuery("orders", joins=(Join("customers", type="outer"),)),
    DslQuery("orders", joins=(Join("customers"),)),
    DslQuery("orders", order_by=(OrderKey(),)),
    DslQuery("orders", limit=-1),
])
def test_bad_shapes_are_refused(query: DslQuery) -> None:
    with pytest.raises(LakehouseError) as refused:
        to_tree(query)
    assert refused.value.code == "invalid_dsl" and refused.value.http_status == 400


@pytest.mark.parametrize(("query", "code"), [
    (DslQuery("orders", where=SqlCondition("city IN (SELECT * FROM read_csv('x'))")),
     "forbidden_function"),
    (DslQuery("orders", select=(Output(expression="getenv('HOME')"),)), "forbidden_function"),
    (DslQuery("secret"), "unknown_table"),
    (DslQuery("orders", select=(Output("nope"),)), "unknown_column"),
    (DslQuery("orders", where=Compare("city", ">", 3)), "type_mismatch"),
])
def test_dsl_meets_the_same_guard(query: DslQuery, code: str) -> None:
    with pytest.raises(LakehouseError) as refused:
        interpret_tree(to_tree(query), "duckdb", acme_view())
    assert refused.value.code == code
