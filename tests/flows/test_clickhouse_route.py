"""The ClickHouse route against the default engine on the same data, over the HTTP API: NULLs
in every position, outer joins, empty aggregates, IN and NOT IN with NULLs, text beyond ASCII,
negative numbers, decimals, dates and timestamps. Each query either answers exactly what the
default engine answers (rows, column names and types) or is refused with a 400 that says why;
the refused ones are listed here, so none is refused by accident. Then what may not go there:
a table not served, rows not flushed, a mirror behind, an older snapshot; and the optimizer's
own choice, shown by EXPLAIN. ClickHouse is the real engine, embedded (chDB); Prefect the test
harness's server (the backfill is a flow run).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core
from api.services import Service
from flows.ingest import flush_here
from flows.load import start_load
from flows.runs import watch
from lakehouse.auth.identity import Role
from lakehouse.load.loader import Loader, LoadRequest
from lakehouse.load.sources import roots_for
from tests.conftest import logged_in

TENANT = "routed"
PEOPLE = [
    {"data_id": "p1", "name": "Åsa", "city": "Oslo", "age": 31, "score": 2.5,
     "tags": ["a", "b"], "born": "1994-02-03"},
    {"data_id": "p2", "name": "bob", "city": None, "age": -4, "score": None,
     "tags": [], "born": None},
    {"data_id": "p3", "name": "Émile", "city": "Paris", "age": None, "score": -1.25,
     "tags": None, "born": "2001-12-31"},
    {"data_id": "p4", "name": "ZOË", "city": "Oslo", "age": 58, "score": 10.0,
     "tags": ["c"], "born": "1967-07-14"},
    {"data_id": "p5", "name": None, "city": "Kyiv", "age": 7, "score": 0.0,
     "tags": ["a"], "born": "2018-01-01"},
]
ORDERS = [
    {"data_id": "o1", "person": "p1", "amount": 12.5, "qty": 3},
    {"data_id": "o2", "person": "p1", "amount": None, "qty": 1},
    {"data_id": "o3", "person": "p4", "amount": 99.99, "qty": None},
    {"data_id": "o4", "person": "p9", "amount": 5.0, "qty": 2},
    {"data_id": "o5", "person": None, "amount": 1.0, "qty": 7},
]

# A bulk load's keys may repeat without an upsert: both rows are rows, on either route.
# `big` near the 64-bit limit: ClickHouse wraps such sums around, DuckDB's are exact.
STOCK = pa.table({"data_id": ["s1", "s2", "s1", "s3"], "item": ["nut", "bolt", "nut", "gear"],
                  "n": [5, 7, 2, None],
                  "big": pa.array([9 * 10**18, 9 * 10**18 - 1, 1, None], pa.int64())})

SAME = [
    "SELECT * EXCLUDE (tags) FROM people ORDER BY data_id",
    "SELECT name, city, age FROM people WHERE city = 'Oslo' ORDER BY name",
    "SELECT name FROM people WHERE city IS NULL OR age IS NULL ORDER BY name NULLS FIRST",
    "SELECT name, age FROM people ORDER BY age DESC, name",
    "SELECT name, age FROM people ORDER BY age NULLS FIRST, name",
    "SELECT city, count(*) AS n, count(age) AS aged, sum(age) AS total, avg(score) AS mean, "
    "min(name) AS first, max(born) AS youngest FROM people GROUP BY city ORDER BY city",
    "SELECT count(*) AS n, sum(age) AS total, avg(age) AS mean, min(name) AS first "
    "FROM people WHERE age > 1000",
    "SELECT count(DISTINCT city) AS cities, count(*) FILTER (WHERE age > 10) AS adults "
    "FROM people",
    "SELECT p.name, o.amount, o.qty FROM people p LEFT JOIN orders o ON o.person = p.data_id "
    "ORDER BY p.data_id, o.data_id",
    "SELECT p.name, o.data_id FROM orders o LEFT JOIN people p ON o.person = p.data_id "
    "ORDER BY o.data_id",
    "SELECT p.data_id, o.data_id FROM people p FULL OUTER JOIN orders o "
    "ON o.person = p.data_id ORDER BY p.data_id NULLS LAST, o.data_id NULLS LAST",
    "SELECT p.name, sum(o.amount) AS spent, count(o.data_id) AS orders FROM people p "
    "LEFT JOIN orders o ON o.person = p.data_id GROUP BY p.name ORDER BY p.name NULLS LAST",
    "SELECT name FROM people WHERE data_id IN (SELECT person FROM orders) ORDER BY name",
    "SELECT name FROM people WHERE data_id NOT IN (SELECT person FROM orders) ORDER BY name",
    "SELECT name FROM people WHERE data_id NOT IN (SELECT person FROM orders "
    "WHERE person IS NOT NULL) ORDER BY name",
    "SELECT name FROM people WHERE age NOT IN (31, 58) ORDER BY name",
    "SELECT name FROM people WHERE age NOT IN (31, NULL) ORDER BY name",
    "SELECT name FROM people WHERE city IN ('Oslo', NULL) ORDER BY name",
    "SELECT name FROM people WHERE EXISTS (SELECT 1 FROM orders WHERE person = people.data_id)"
    " ORDER BY name",
    "SELECT name FROM people WHERE NOT EXISTS (SELECT 1 FROM orders "
    "WHERE person = people.data_id) ORDER BY name NULLS LAST",
    "SELECT name, age / 2 AS half, age * 2 AS twice, age - 10 AS less "
    "FROM people ORDER BY data_id",
    "SELECT year(DATE '1967-07-14') AS y, month(DATE '2026-12-06') AS m, "
    "date_trunc('month', DATE '1955-03-09') AS first, DATE '1960-02-27' + INTERVAL 3 DAY AS "
    "later, count(*) AS n FROM people WHERE DATE '2000-01-01' < DATE '2001-01-01'",
    "SELECT name FROM people p WHERE EXISTS (SELECT 1 FROM people q WHERE q.city = p.city "
    "AND q.data_id <> p.data_id) ORDER BY name",
    "SELECT -age AS age FROM people ORDER BY age NULLS LAST",
    "SELECT name, score / 0 AS inf FROM people WHERE score > 0 ORDER BY data_id",
    "SELECT coalesce(city, 'nowhere') AS city, CASE WHEN age < 0 THEN 'odd' WHEN age IS NULL "
    "THEN 'unknown' ELSE 'ok' END AS verdict FROM people ORDER BY data_id",
    "SELECT name, length(name) AS letters FROM people ORDER BY data_id",
    "SELECT name || '!' AS loud, concat(city, '-', name) AS joined FROM people "
    "ORDER BY data_id",
    "SELECT substring(name, 2, 2) AS middle FROM people ORDER BY data_id",
    "SELECT name FROM people WHERE name LIKE '%o%' ORDER BY name",
    "SELECT name FROM people WHERE name ILIKE '%o%' ORDER BY name",
    "SELECT abs(age) AS a, floor(score) AS f, ceil(score) AS c FROM people ORDER BY data_id",
    "SELECT city FROM people UNION SELECT 'Rome' ORDER BY city NULLS FIRST",
    "SELECT city FROM people UNION ALL SELECT city FROM people ORDER BY city NULLS FIRST",
    "SELECT city FROM people INTERSECT SELECT 'Oslo' ORDER BY city",
    "SELECT city FROM people EXCEPT SELECT 'Oslo' ORDER BY city NULLS FIRST",
    "WITH adults AS (SELECT name, age FROM people WHERE age >= 18) "
    "SELECT count(*) AS n, max(name) AS last FROM adults",
    "SELECT name, rank() OVER (PARTITION BY city ORDER BY age DESC NULLS LAST) AS r "
    "FROM people ORDER BY data_id",
    "SELECT city, count(*) AS n FROM people GROUP BY city HAVING count(*) > 1 ORDER BY city",
    "SELECT name FROM people ORDER BY data_id LIMIT 2 OFFSET 1",
    "SELECT DISTINCT city FROM people ORDER BY city NULLS LAST",
    "SELECT o.qty * o.amount AS value FROM orders o ORDER BY o.data_id",
    "SELECT sum(qty) / count(*) AS ratio FROM orders",
    "SELECT max(amount) - min(amount) AS spread FROM orders",
    "SELECT 0.06 - 0.01 AS exact, 1.1 + 2.2 AS sum, -1.50 * 2 AS twice, 1e2 AS hundred, "
    "9223372036854775807 AS top FROM orders WHERE data_id = 'o1'",
    "SELECT sum(age) FILTER (WHERE city = 'Oslo') AS oslo, count(*) AS n FROM people",
    "SELECT trim('  ' || name || '  ') AS trimmed FROM people ORDER BY data_id",
    "SELECT nullif(city, 'Oslo') AS other, coalesce(age, 0) AS any FROM people "
    "ORDER BY data_id",
    "SELECT CAST('2026-12-06 10:11:12.345678' AS TIMESTAMP) AS at, "
    "CAST(DATE '1901-05-06' AS TIMESTAMP) AS old FROM people WHERE data_id = 'p1'",
]
REFUSED = {
    "SELECT lower(name) AS l FROM people ORDER BY data_id": "lower()",
    "SELECT upper(name) AS u FROM people ORDER BY data_id": "upper()",
    "SELECT age // 3 AS q FROM people ORDER BY data_id": "integer division",
    "SELECT name, city IN ('Oslo', NULL) AS maybe FROM people ORDER BY data_id": "IN as a value",
    "SELECT round(score, 1) AS r FROM people ORDER BY data_id": "round()",
    "SELECT name, tags FROM people ORDER BY data_id": "is a list",
    "SELECT * FROM people ORDER BY data_id": "is a list",
    "SELECT strpos(name, 'o') AS at FROM people ORDER BY data_id": "not known to answer",
    "SELECT greatest(age, 10) AS g FROM people ORDER BY data_id": "not known to answer",
    "SELECT coalesce(age, score, 0) AS any FROM people ORDER BY data_id": "could not run",
    "SELECT count(*) AS n FROM people WHERE CAST(born AS DATE) >= DATE '2000-01-01'":
        "a cast to DATE",
    "SELECT CAST(age AS VARCHAR) AS text FROM people ORDER BY data_id": "a cast to",
    "SELECT CAST(score AS INTEGER) AS whole FROM people ORDER BY data_id": "a cast to",
    "SELECT age % 3 AS rest FROM people ORDER BY data_id": "%",
    "SELECT 99999999999999999999999999999999999 AS n FROM people WHERE data_id = 'p1'":
        "past 64 bits",
    "SELECT name FROM people p WHERE (SELECT count(*) FROM people q "
    "WHERE q.age < p.age) = 0 ORDER BY name": "count()",
}


def _write(core: Core, table: str, rows: list[dict[str, Any]]) -> None:
    assert core.ingest is not None and core.flusher is not None
    core.ingest.write(TENANT, [{"data_id": r["data_id"], "table": table, "payload": {
        k: v for k, v in r.items() if k != "data_id"}} for r in rows]).answer(timeout_s=10)
    flush_here(core.flusher)


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from prefect.settings import PREFECT_API_URL

    from api.core import build_core
    from lakehouse.config import Settings

    sources = tmp_path_factory.mktemp("sources")
    pq.write_table(STOCK, sources / "stock.parquet")
    settings = Settings.for_tests(tmp_path_factory.mktemp("routed"),
                                  prefect_api_url=PREFECT_API_URL.value(), query_on_dask=False,
                                  load_roots=str(sources), load_on_dask=False)
    core = build_core(settings, ingest=True)
    _write(core, "people", PEOPLE)
    _write(core, "orders", ORDERS)
    headers = logged_in(core, {TENANT: ("ada", Role.WRITER)})[TENANT]
    with TestClient(create_app(Service.CATALOG, core)) as catalog, TestClient(
            create_app(Service.OPERATION, core)) as operation:
        for table in ("people", "orders"):
            answer = catalog.put(f"/metadata/tables/{table}/options",
                                 json={"serving": "clickhouse"}, headers=headers)
            assert answer.status_code == 200, answer.text
            watch(answer.json()["mirror"]["run_id"]).wait(timeout_s=120)
        yield {"core": core, "query": operation, "catalog": catalog, "headers": headers,
               "stock": str(sources / "stock.parquet")}
    core.close()


def _ask(routed: dict[str, Any], sql: str, engine: str, **more: Any) -> Any:
    return routed["query"].post("/query/execute", headers=routed["headers"],
                                json={"query": sql, "engine": engine, **more})


@pytest.mark.parametrize("sql", SAME)
def test_the_route_answers_as_the_default_engine(routed: dict[str, Any], sql: str) -> None:
    default = _ask(routed, sql, "default")
    assert default.status_code == 200, default.text
    served = _ask(routed, sql, "clickhouse")
    assert served.status_code == 200, served.text
    got, want = served.json(), default.json()
    assert got["engine"] == "clickhouse"
    assert got["columns"] == want["columns"]
    assert got["rows"] == want["rows"], (got["rows"], want["rows"])


@pytest.mark.parametrize(("sql", "reason"), REFUSED.items())
def test_what_would_answer_otherwise_is_refused_with_the_reason(
        routed: dict[str, Any], sql: str, reason: str) -> None:
    assert _ask(routed, sql, "default").status_code == 200
    refused = _ask(routed, sql, "clickhouse")
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["error"] == "not_routable"
    assert reason in body["message"] and "default engine" in body["message"]
    auto = _ask(routed, sql, "auto")
    assert auto.status_code == 200 and auto.json()["engine"] == "default"


def test_the_optimizer_routes_key_lookups_and_explain_says_why(routed: dict[str, Any]) -> None:
    lookup = "SELECT name, age FROM people WHERE data_id = 'p4'"
    answer = _ask(routed, lookup, "auto")
    assert answer.status_code == 200, answer.text
    assert answer.json()["engine"] == "clickhouse" and answer.json()["rows"] == [["ZOË", 58]]
    scan = "SELECT city, count(*) AS n FROM people GROUP BY city ORDER BY city"
    assert _ask(routed, scan, "auto").json()["engine"] == "default"
    for sql, engine, why in ((lookup, "clickhouse", "lookup by data_id"),
                             (scan, "default", "measured faster")):
        plan = routed["query"].post("/query/plan", headers=routed["headers"],
                                    json={"query": sql})
        assert plan.status_code == 200, plan.text
        assert plan.json()["route"]["engine"] == engine
        assert why in plan.json()["route"]["reason"]
    forced = routed["query"].post("/query/plan", headers=routed["headers"],
                                  json={"query": scan, "engine": "clickhouse"})
    route = forced.json()["route"]
    assert (route["engine"], route["reason"]) == ("clickhouse", "asked for")
    assert "FROM " + f'"{routed["core"].serving_store().database(TENANT)}"."people"' in route["sql"]


def test_what_may_not_go_there_is_refused_and_says_what_to_do(routed: dict[str, Any]) -> None:
    core = routed["core"]
    assert core.ingest is not None and core.flusher is not None and core.mirror_keeper
    # A table not served.
    _write(core, "visits", [{"data_id": "v1", "page": "/"}])
    refused = _ask(routed, "SELECT count(*) AS n FROM visits", "clickhouse")
    assert refused.status_code == 400 and refused.json()["error"] == "not_routable"
    assert "'visits' is not served" in refused.json()["message"]
    assert _ask(routed, "SELECT count(*) AS n FROM visits", "auto").json()["engine"] == "default"
    # An older snapshot.
    snapshot = core.catalog.current_snapshot()
    refused = _ask(routed, "SELECT count(*) AS n FROM people", "clickhouse", snapshot=snapshot)
    assert refused.status_code == 400 and "older snapshot" in refused.json()["message"]
    # Rows not flushed yet, then flushed and not yet copied: 409, and the answer after.
    core.ingest.write(TENANT, [{"data_id": "p6", "table": "people", "payload": {
        "name": "Nils", "city": "Oslo", "age": 40}}]).answer(timeout_s=10)
    lookup = "SELECT name FROM people WHERE data_id = 'p6'"
    refused = _ask(routed, lookup, "clickhouse")
    assert refused.status_code == 409 and refused.json()["error"] == "mirror_behind"
    assert "not flushed" in refused.json()["message"]
    auto = _ask(routed, lookup, "auto")  # read-your-writes: the default engine answers
    assert auto.json()["engine"] == "default" and auto.json()["rows"] == [["Nils"]]
    flush_here(core.flusher)
    refused = _ask(routed, lookup, "clickhouse")
    assert refused.status_code == 409 and "lacks 1 of its files" in refused.json()["message"]
    core.mirror_keeper.run_round()
    assert _ask(routed, lookup, "clickhouse").json()["rows"] == [["Nils"]]


def test_a_loaded_table_whose_keys_repeat_answers_as_the_default_engine(
        routed: dict[str, Any]) -> None:
    core = routed["core"]
    assert core.catalog and core.storage and core.declarations and core.mirror_keeper
    assert core.ingest is not None and core.flusher is not None
    loader = Loader(core.catalog, core.storage, roots_for(core.settings), core.declarations)
    start_load(LoadRequest(TENANT, "stock", routed["stock"]), loader).wait(timeout_s=120)
    answer = routed["catalog"].put("/metadata/tables/stock/options",
                                   json={"serving": "clickhouse"}, headers=routed["headers"])
    assert answer.status_code == 200, answer.text
    watch(answer.json()["mirror"]["run_id"]).wait(timeout_s=120)

    def both(sql: str, rows: list[list[Any]]) -> None:
        default, served = _ask(routed, sql, "default"), _ask(routed, sql, "clickhouse")
        assert default.status_code == served.status_code == 200, served.text
        assert served.json()["rows"] == default.json()["rows"]
        # (JSON carries integers past 2^53 as text.)
        assert [[int(v) if isinstance(v, str) and v.isdigit() else v for v in row]
                for row in served.json()["rows"]] == rows

    everything = "SELECT data_id, item, n FROM stock ORDER BY data_id, n"
    both(everything, [["s1", "nut", 2], ["s1", "nut", 5], ["s2", "bolt", 7], ["s3", "gear", None]])
    both("SELECT count(*) AS n, count(DISTINCT data_id) AS ids FROM stock", [[4, 3]])
    # 64-bit integers: sums and means exact, an overflow fails, on both routes.
    both("SELECT sum(big) AS s, avg(big) AS m, sum(DISTINCT big) AS d, sum(n) AS small "
         "FROM stock", [[18 * 10**18, 6 * 10**18, 18 * 10**18, 14]])
    both("SELECT item, sum(big) OVER (PARTITION BY item) AS s FROM stock ORDER BY item, s",
         [["bolt", 9 * 10**18 - 1], ["gear", None], ["nut", 9 * 10**18 + 1],
          ["nut", 9 * 10**18 + 1]])
    both("SELECT big - 1 AS less, n * 3 AS more FROM stock WHERE data_id = 's2'",
         [[9 * 10**18 - 2, 21]])
    for overflow in ("SELECT big * 2 AS twice FROM stock", "SELECT big + big AS twice FROM stock"):
        default, served = _ask(routed, overflow, "default"), _ask(routed, overflow, "clickhouse")
        assert default.status_code == served.status_code == 400, (default.text, served.text)
    refused = _ask(routed, "SELECT CAST(item AS DOUBLE) AS x FROM stock", "clickhouse")
    assert refused.status_code == 400 and "text cast to DOUBLE" in refused.json()["message"]
    lookup = "SELECT item, n FROM stock WHERE data_id = 's1' ORDER BY n"
    auto = _ask(routed, lookup, "auto")
    assert auto.json()["engine"] == "clickhouse", auto.text
    assert auto.json()["rows"] == [["nut", 2],
                                                                             ["nut", 5]]
    # An upsert of s1 replaces both loaded versions, on both routes.
    core.ingest.write(TENANT, [{"data_id": "s1", "table": "stock", "upsert": True,
                                "payload": {"item": "nut", "n": 9}}]).answer(timeout_s=10)
    flush_here(core.flusher)
    core.mirror_keeper.run_round()
    both(everything, [["s1", "nut", 9], ["s2", "bolt", 7], ["s3", "gear", None]])
    assert _ask(routed, lookup, "auto").json()["rows"] == [["nut", 9]]


def test_a_busy_store_holds_up_no_query_the_optimizer_sent_there(
        routed: dict[str, Any]) -> None:
    """While the store's one engine is busy (here: its lock held, as a long query of another
    tenant holds it), a lookup the optimizer would send there runs on the default engine after
    a moment; a query that asks for ClickHouse waits its time limit, then says so."""
    store = routed["core"].serving_store()
    lookup = "SELECT name FROM people WHERE data_id = 'p1'"
    assert _ask(routed, lookup, "auto").json()["engine"] == "clickhouse"
    with store._connection.lock:
        auto = _ask(routed, lookup, "auto")
        assert auto.status_code == 200 and auto.json()["engine"] == "default"
        assert auto.json()["rows"] == [["Åsa"]]
        forced = _ask(routed, lookup, "clickhouse", timeout_s=1)
        assert forced.status_code == 408, forced.text
        assert "busy" in forced.json()["message"]
    assert _ask(routed, lookup, "auto").json()["engine"] == "clickhouse"


def test_another_tenant_reaches_none_of_these_mirrors(routed: dict[str, Any]) -> None:
    core = routed["core"]
    other = logged_in(core, {"outsider": ("eve", Role.WRITER)})["outsider"]
    for sql in ("SELECT count(*) AS n FROM people",
                f"SELECT count(*) AS n FROM {core.serving_store().database(TENANT)}.people",  # noqa: S608
                "SELECT * FROM file('/etc/passwd', 'LineAsString')"):
        answer = routed["query"].post("/query/execute", headers=other,
                                      json={"query": sql, "engine": "clickhouse"})
        assert 400 <= answer.status_code < 500, answer.text
        assert "Åsa" not in answer.text and "Oslo" not in answer.text
