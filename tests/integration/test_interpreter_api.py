"""The Query Interpreter over HTTP: real catalog, real flushes, tokens, tenant isolation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import logged_in
from tests.unit.sql_cases import HOSTILE

World = tuple[TestClient, dict[str, dict[str, str]]]


def _write(core: Core, tenant: str, table: str, rows: list[dict[str, Any]], *,
           flush: bool = True) -> None:
    assert core.ingest is not None and core.flusher is not None
    records = [{"data_id": f"{table}-{i}", "table": table, "payload": row}
               for i, row in enumerate(rows)]
    core.ingest.write(tenant, records).answer(timeout_s=10)
    if flush:
        flush_here(core.flusher)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    core = build_core(Settings.for_tests(tmp_path_factory.mktemp("interpreter")), ingest=True)
    users = {"acme": ("writer", Role.WRITER), "globex": ("reader", Role.READER),
             "ops": ("root", Role.ADMIN)}
    headers = logged_in(core, users)
    _write(core, "acme", "orders", [
        {"customer_id": 1, "total": 10.5, "city": "Oslo"},
        {"customer_id": 2, "total": 3.0, "city": "Rome"}])
    _write(core, "acme", "customers", [
        {"id": 1, "name": "Ann", "city": "Oslo", "profile": {"age": 30}}])
    _write(core, "globex", "secret", [{"code": "s3cr3t", "amount": 7}])
    _write(core, "acme", "fresh", [{"note": "not flushed yet"}], flush=False)
    with TestClient(create_app(Service.INTERPRETER, core),
                    raise_server_exceptions=False) as client:
        yield client, headers
    core.close()


def test_parse_sql(world: World) -> None:
    client, headers = world
    answer = client.post("/parse/sql", json={
        "query": "SELECT o.city, sum(o.total) AS s FROM orders o JOIN customers c "
                 "ON o.customer_id = c.id GROUP BY 1"}, headers=headers["acme"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "select" and body["dialect"] == "duckdb"
    assert [(t["table"], t["tenant"], t["bound_as"]) for t in body["tables"]] == [
        ("customers", "acme", "tenant_acme.customers"), ("orders", "acme", "tenant_acme.orders")]
    assert {(c["table"], c["column"]) for c in body["columns"]} == {
        ("customers", "id"), ("orders", "city"), ("orders", "customer_id"), ("orders", "total")}
    assert body["tree"]["node"] == "select" and body["tree"]["joins"][0]["node"] == "join"
    assert '"tenant_acme"."orders"' in body["sql"]


def test_parse_sql_in_another_dialect(world: World) -> None:
    client, headers = world
    body = client.post("/parse/sql", json={"query": "SELECT TOP 1 [city] FROM [orders]",
                                           "dialect": "tsql"}, headers=headers["acme"]).json()
    assert body["dialect"] == "tsql" and body["sql"].endswith("LIMIT 1")


def test_parse_dsl(world: World) -> None:
    client, headers = world
    dsl = {"from": "orders", "as": "o",
           "select": ["o.city", {"agg": "sum", "column": "o.total", "as": "spent"}],
           "joins": [{"table": "customers", "as": "c", "type": "left",
                      "on": [{"left": "o.customer_id", "right": "c.id"}]}],
           "where": {"and": [{"column": "o.total", "op": ">", "value": 1},
                             {"or": [{"column": "o.city", "op": "in", "value": ["Oslo", "Rome"]},
                                     "c.profile.age > 20"]}]},
           "group_by": ["o.city"], "having": {"column": "o.total", "agg": "sum", "op": ">",
                                              "value": 2},
           "order_by": [{"column": "spent", "desc": True}, "o.city"], "limit": 10}
    answer = client.post("/parse/dsl", json=dsl, headers=headers["acme"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["sql"].startswith('SELECT "o"."city" AS "city", SUM("o"."total") AS "spent"')
    assert "LEFT JOIN \"tenant_acme\".\"customers\"" in body["sql"]
    assert body["tree"]["node"] == "select"
    bad = client.post("/parse/dsl", json={"from": "orders", "where": {"column": "city",
                                                                      "op": "~", "value": 1}},
                      headers=headers["acme"])
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_dsl"
    shape = client.post("/parse/dsl", json={"from": "orders", "bogus": 1},
                        headers=headers["acme"])
    assert shape.status_code == 422 and shape.json()["error"] == "invalid_request"


def test_validate(world: World) -> None:
    client, headers = world

    def check(body: dict[str, Any]) -> dict[str, Any]:
        answer = client.post("/validate/query", json=body, headers=headers["acme"])
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    assert check({"query": "SELECT city FROM orders"}) == {"valid": True, "problems": []}
    found = check({"query": "SELECT city, nope\nFROM orders o JOIN customers c "
                            "ON o.customer_id = c.id WHERE o.total > 'x' AND o.city > 3"})
    assert found["valid"] is False
    assert [(p["code"], p["line"], p["column"]) for p in found["problems"]] == [
        ("ambiguous_column", 1, 8), ("unknown_column", 1, 14)]
    typed = check({"query": "SELECT sum(city) FROM orders WHERE city > 3"})
    assert [p["code"] for p in typed["problems"]] == ["type_mismatch", "type_mismatch"]
    syntax = check({"query": "SELECT (city FROM orders"})
    assert syntax["problems"][0]["code"] == "syntax_error"
    assert syntax["problems"][0]["line"] == 1
    assert check({"query": "DROP TABLE orders"})["problems"][0]["code"] == "forbidden_statement"
    assert check({"dsl": {"from": "nowhere"}})["problems"][0]["code"] == "unknown_table"
    assert check({"dsl": {"from": "orders"}})["valid"] is True
    both = client.post("/validate/query", json={"query": "SELECT 1", "dsl": {"from": "x"}},
                       headers=headers["acme"])
    assert both.status_code == 422


def test_types_are_duckdbs_before_anything_runs(world: World) -> None:
    """What DuckDB's binder refuses is refused by /validate/query and /query/execute alike, with
    the same code; what it accepts parses with each output's DuckDB type."""
    client, headers = world
    upper = client.post("/validate/query", json={"query": "SELECT upper(customer_id) FROM orders"},
                        headers=headers["acme"]).json()
    assert upper["valid"] is False and upper["problems"][0]["code"] == "type_mismatch"
    assert "upper" in upper["problems"][0]["message"]
    grouped = client.post("/validate/query", json={
        "query": "SELECT city, count(*) FROM orders"}, headers=headers["acme"]).json()
    assert [p["code"] for p in grouped["problems"]] == ["invalid_query"]
    parsed = client.post("/parse/sql", json={
        "query": "SELECT city, sum(customer_id) AS n, DATE '2024-01-01' + 5 AS d, "
                 "avg(total) FROM orders GROUP BY city"}, headers=headers["acme"])
    assert parsed.status_code == 200, parsed.text
    assert parsed.json()["outputs"] == [
        {"name": "city", "type": "VARCHAR"}, {"name": "n", "type": "HUGEINT"},
        {"name": "d", "type": "DATE"}, {"name": "avg(total)", "type": "DOUBLE"}]


def test_transform_plan(world: World) -> None:
    client, headers = world
    answer = client.post("/transform/plan", json={
        "query": "SELECT city, count(*) FROM orders WHERE total > 5 GROUP BY city "
                 "ORDER BY 2 DESC LIMIT 3"}, headers=headers["acme"])
    assert answer.status_code == 200, answer.text
    plan = answer.json()["plan"]
    steps = []
    while plan is not None:
        steps.append(plan["step"])
        scan = plan
        plan = plan.get("input")
    assert steps == ["limit", "sort", "project", "aggregate", "scan"]
    assert scan["columns"] == ["total", "city"] and scan["filters"] == ['"orders"."total" > 5']
    assert scan["tenant"] == "acme"
    dsl = client.post("/transform/plan", json={"dsl": {"from": "orders", "limit": 1}},
                      headers=headers["acme"]).json()
    assert dsl["plan"]["step"] == "limit"


@pytest.mark.parametrize(("dialect", "sql", "code"), HOSTILE)
def test_hostile_sql_gets_a_4xx_everywhere(world: World, dialect: str, sql: str,
                                           code: str) -> None:
    client, headers = world
    for path in ("/parse/sql", "/transform/plan"):
        answer = client.post(path, json={"query": sql, "dialect": dialect},
                             headers=headers["acme"])
        if path == "/parse/sql" and code == "unknown_table":  # parses; does not bind (yet)
            assert answer.status_code == 200, answer.text
            assert answer.json()["sql"] is None
            assert code in {w["code"] for w in answer.json()["warnings"]}
            continue
        assert 400 <= answer.status_code < 500, (path, answer.text)
        body = answer.json()
        assert set(body) == {"error", "message", "details"} and body["error"] == code
    checked = client.post("/validate/query", json={"query": sql, "dialect": dialect},
                          headers=headers["acme"]).json()
    assert checked["valid"] is False and code in {p["code"] for p in checked["problems"]}


def _unbound(client: TestClient, headers: dict[str, str], sql: str) -> dict[str, Any]:
    """What /validate/query says of a query over tables the caller does not have."""
    checked = client.post("/validate/query", json={"query": sql}, headers=headers)
    assert checked.status_code == 200 and checked.json()["valid"] is False
    [problem] = checked.json()["problems"]
    return dict(problem)


def test_tenants_see_only_their_own_tables(world: World) -> None:
    client, headers = world
    theirs = _unbound(client, headers["globex"], "SELECT * FROM orders")
    missing = _unbound(client, headers["globex"], "SELECT * FROM nothing_here")
    assert theirs["code"] == missing["code"] == "unknown_table"
    # The same answer as for a table that exists nowhere: nothing tells B that A has one.
    assert theirs["message"].replace("orders", "X") == missing["message"].replace(
        "nothing_here", "X")
    parsed = client.post("/parse/sql", json={"query": "SELECT * FROM orders"},
                         headers=headers["globex"]).json()
    assert parsed["warnings"] == [theirs] and parsed["tables"] == [
        {"tenant": "globex", "table": "orders", "bound_as": None, "aliases": ["orders"]}]
    assert _unbound(client, headers["acme"], "SELECT code FROM secret")["code"] == (
        "unknown_table")
    own = client.post("/parse/sql", json={"query": "SELECT code, amount FROM secret"},
                      headers=headers["globex"]).json()
    assert [t["bound_as"] for t in own["tables"]] == ["tenant_globex.secret"]
    sneaky = client.post("/parse/sql", json={"query": "SELECT * FROM tenant_acme.orders"},
                         headers=headers["globex"])
    assert sneaky.status_code == 403 and sneaky.json()["error"] == "qualified_table"
    spoofed = client.post("/parse/sql", json={"query": "SELECT * FROM orders"},
                          headers={**headers["globex"], "X-Tenant-Id": "acme"})
    assert spoofed.status_code == 403
    plan = client.post("/transform/plan", json={"query": "SELECT * FROM secret"},
                       headers=headers["globex"]).json()["plan"]
    assert plan["input"]["tenant"] == "globex"


def test_an_admin_acts_on_the_tenant_it_names(world: World) -> None:
    client, headers = world
    as_acme = client.post("/parse/sql", json={"query": "SELECT city FROM orders"},
                          headers={**headers["ops"], "X-Tenant-Id": "acme"})
    assert as_acme.status_code == 200
    assert as_acme.json()["tables"][0]["bound_as"] == "tenant_acme.orders"
    own = client.post("/parse/sql", json={"query": "SELECT city FROM orders"},
                      headers=headers["ops"])
    assert [w["code"] for w in own.json()["warnings"]] == ["unknown_table"]


def test_a_query_parses_before_its_tables_exist(world: World) -> None:
    """The original system's example, before `orders` exists for this tenant: the tree and the
    tables it names, and why it does not bind yet; /validate/query calls that an error."""
    client, headers = world
    sql = "SELECT customer_id, SUM(amount) FROM orders GROUP BY customer_id"
    answer = client.post("/parse/sql", json={"query": sql}, headers=headers["globex"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["kind"] == "select" and body["sql"] is None and body["tree"]["node"] == "select"
    assert [t["table"] for t in body["tables"]] == ["orders"]
    assert [w["code"] for w in body["warnings"]] == ["unknown_table"]
    assert body["warnings"][0]["line"] == 1
    assert _unbound(client, headers["globex"], sql)["code"] == "unknown_table"
    # A column or type that does not bind is a warning too; a CTE is not a table it names.
    typed = client.post("/parse/sql", json={
        "query": "WITH t AS (SELECT 1 AS x) SELECT nope, x FROM t JOIN orders o ON o.city = 1"},
        headers=headers["acme"]).json()
    assert [w["code"] for w in typed["warnings"]] == ["unknown_column"]
    assert typed["tables"] == [{"tenant": "acme", "table": "orders",
                                "bound_as": "tenant_acme.orders", "aliases": ["o"]}]
    # What a query may never do is still refused, table or no table.
    refused = client.post("/parse/sql", json={"query": "DELETE FROM orders"},
                          headers=headers["globex"])
    assert refused.status_code == 403
    bound = client.post("/parse/sql", json={"query": "SELECT city FROM orders"},
                        headers=headers["acme"]).json()
    assert bound["warnings"] == [] and bound["sql"] is not None


def test_records_not_yet_flushed_are_queryable(world: World) -> None:
    client, headers = world
    body = client.post("/parse/sql", json={"query": "SELECT note FROM fresh"},
                       headers=headers["acme"]).json()
    assert body["columns"] == [{"table": "fresh", "column": "note"}]


@pytest.mark.parametrize(("path", "body", "status", "error"), [
    ("/parse/sql", {"query": "SELECT 1", "dialect": "klingon"}, 400, "unknown_dialect"),
    ("/parse/sql", {"query": ""}, 400, "empty_query"),
    ("/parse/sql", {}, 422, "invalid_request"),
    ("/parse/sql", {"query": 7}, 422, "invalid_request"),
    ("/parse/sql", {"query": "x" * 100_001}, 422, "invalid_request"),
    ("/validate/query", {"query": "SELECT 1", "dialect": "klingon"}, 400, "unknown_dialect"),
    # Named beside a DSL query, where it does not matter, a wrong dialect is still wrong.
    ("/validate/query", {"dsl": {"from": "orders"}, "dialect": "klingon"}, 400,
     "unknown_dialect"),
    ("/transform/plan", {"dsl": {"from": "orders"}, "dialect": "klingon"}, 400,
     "unknown_dialect"),
    ("/transform/plan", {}, 422, "invalid_request"),
    ("/parse/dsl", {"from": "orders; DROP TABLE x"}, 400, "invalid_dsl"),
    ("/parse/dsl", {"from": "orders", "where": {"not": {"not": {"not": {"and": []}}}}}, 422,
     "invalid_request"),
])
def test_bad_input_is_a_4xx_in_the_error_shape(world: World, path: str, body: dict[str, Any],
                                               status: int, error: str) -> None:
    client, headers = world
    answer = client.post(path, json=body, headers=headers["acme"])
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == error and set(answer.json()) == {"error", "message",
                                                                      "details"}


def test_deeply_nested_dsl_is_refused(world: World) -> None:
    client, headers = world
    condition: Any = {"column": "total", "op": ">", "value": 1}
    for _ in range(40):
        condition = {"not": condition}
    answer = client.post("/parse/dsl", json={"from": "orders", "where": condition},
                         headers=headers["acme"])
    assert 400 <= answer.status_code < 500


@pytest.mark.parametrize("path", ["/parse/sql", "/parse/dsl", "/validate/query",
                                  "/transform/plan"])
def test_a_token_is_required(world: World, path: str) -> None:
    client, _ = world
    answer = client.post(path, json={"query": "SELECT 1"})
    assert answer.status_code == 401 and answer.json()["error"] == "missing_token"
