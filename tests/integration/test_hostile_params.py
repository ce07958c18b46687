"""Hostile numbers and shapes in parameters, filters and SQL: each answers a 4xx naming what is
wrong, or the right rows (DuckDB is the oracle), never a 500.

Numbers past 64 bits in query parameters, literals past any type a result can carry, brackets
nested past what the parser can read, values of DuckDB's no other format has room for
(infinity, years past 9999, intervals) in every result format.
"""

# ruff: noqa: S608 - the hostile SQL is built from text on purpose, from constants of this file

from __future__ import annotations

import base64
import csv
import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.core import Core, build_core
from api.query_params import MAX_COUNT
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.executor.predicates import arrow_filter
from lakehouse.executor.sandbox import locked_connection, planning_database
from lakehouse.sql.parse import MAX_NESTING
from tests.conftest import PASSWORD, logged_in
from tests.integration.test_ingest_api import assert_error

HUGE = "1" + "0" * 30  # 10^30: past int64 (and the 4300-digit limit is far off)
DIGITS_5000 = "9" * 5000  # past Python's int-string limit (ValueError in int())


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(Settings.for_tests(tmp_path, query_on_dask=False), ingest=True)
    yield built
    built.close()


@pytest.fixture
def headers(core: Core) -> dict[str, str]:
    return logged_in(core, {"acme": ("writer", Role.WRITER)})["acme"]


@pytest.fixture
def clients(client_for: Callable[[Service], TestClient]) -> dict[str, TestClient]:
    return {"op": client_for(Service.OPERATION), "tenant": client_for(Service.TENANT),
            "catalog": client_for(Service.CATALOG)}


def _orders(core: Core, n: int = 20, *, flush: bool = True) -> None:
    assert core.ingest is not None and core.flusher is not None
    core.ingest.write("acme", [{"data_id": f"o{i}", "table": "orders",
                                "payload": {"amount": i, "city": ["Oslo", "Rome"][i % 2]}}
                               for i in range(n)]).answer(timeout_s=10)
    if flush:
        flush_here(core.flusher)


def _query(clients: dict[str, TestClient], headers: dict[str, str], sql: str,
           fmt: str = "json") -> Any:
    return clients["op"].post("/query/execute", headers=headers,
                              json={"query": sql, "format": fmt})


# Numbers in query parameters ----------------------------------------------------------------


def test_result_offset_past_int64_is_a_422(core: Core, clients: dict[str, TestClient],
                                           headers: dict[str, str]) -> None:
    _orders(core)
    query_id = _query(clients, headers, "SELECT amount FROM orders").json()["query_id"]
    for fmt in ("json", "csv"):
        body = assert_error(clients["op"].get(f"/query/{query_id}/result", headers=headers,
                                              params={"offset": HUGE, "format": fmt}),
                            422, "invalid_request")
        assert body["details"]["problems"][0]["location"] == ["query", "offset"]
    # The largest offset a page can have is past the rows: an empty page, not an error.
    last = clients["op"].get(f"/query/{query_id}/result", headers=headers,
                             params={"offset": MAX_COUNT})
    assert last.status_code == 200, last.text
    assert last.json()["rows"] == [] and last.json()["offset"] == MAX_COUNT


def test_snapshot_numbers_past_int64_are_a_422(core: Core, clients: dict[str, TestClient],
                                               headers: dict[str, str]) -> None:
    _orders(core)
    catalog, op = clients["catalog"], clients["op"]
    refused = [
        catalog.post("/metadata/partitions", params={"snapshot": HUGE}, headers=headers,
                     json={"table": "orders"}),
        catalog.post("/metadata/partitions", headers=headers,
                     json={"table": "orders", "snapshot": int(HUGE)}),
        catalog.get("/metadata/tables", params={"snapshot": HUGE}, headers=headers),
        op.post("/query/execute", headers=headers,
                json={"query": "SELECT 1", "snapshot": int(HUGE)}),
        op.get("/query/plan", headers=headers, params={"query": "SELECT 1", "snapshot": HUGE}),
    ]
    # Past the largest integer every JSON reader keeps exactly, as documented: 2**63 - 1,
    # read as a double, is 2**63 and not an int64.
    refused.append(catalog.post("/metadata/partitions", params={"snapshot": MAX_COUNT + 1},
                                headers=headers, json={"table": "orders"}))
    for response in refused:
        assert_error(response, 422, "invalid_request")
    # In range but never committed: still the 404 that names the current snapshot.
    assert_error(catalog.post("/metadata/partitions", params={"snapshot": MAX_COUNT},
                              headers=headers, json={"table": "orders"}),
                 404, "snapshot_not_found")


def test_records_after_past_int64_is_a_422(core: Core, clients: dict[str, TestClient],
                                           headers: dict[str, str]) -> None:
    _orders(core)  # flushed: the page is read from Parquet, compared in Arrow
    tenant = clients["tenant"]
    assert_error(tenant.get("/data", headers=headers, params={"table": "orders", "after": HUGE}),
                 422, "invalid_request")
    newest = tenant.get("/data", headers=headers,
                        params={"table": "orders", "after": MAX_COUNT, "limit": 5})
    assert newest.status_code == 200, newest.text
    assert [r["data_id"] for r in newest.json()["records"]] == [f"o{i}" for i in
                                                                range(19, 14, -1)]


# Filters and SQL: literals and nesting -------------------------------------------------------


def _partitions(clients: dict[str, TestClient], headers: dict[str, str], condition: str) -> Any:
    return clients["catalog"].post("/metadata/partitions", headers=headers,
                                   json={"table": "orders", "filter": condition})


def test_partition_filters_refuse_what_they_cannot_read(
        core: Core, clients: dict[str, TestClient], headers: dict[str, str]) -> None:
    _orders(core)
    for condition in (f"amount > {DIGITS_5000}", f"amount IN (1, {DIGITS_5000})",
                      f"amount = -{DIGITS_5000}", f"amount > {'9' * 40}"):
        body = assert_error(_partitions(clients, headers, condition), 400, "number_out_of_range")
        assert "2^127 - 1" in body["message"]
    deep = assert_error(_partitions(clients, headers, "(" * 1200 + "amount > 1" + ")" * 1200),
                        400, "filter_too_deep")
    assert deep["details"] == {"depth": 1200, "max_depth": MAX_NESTING}
    assert_error(_partitions(clients, headers, "NOT " * 2400 + "amount > 1"), 400,
                 "filter_too_deep")  # no brackets: the parser's own recursion runs out
    assert_error(_partitions(clients, headers, "city = 'Oslo"), 400, "invalid_filter")
    # Within the bounds, filters prune as before: a number past int64 is a number.
    nested = _partitions(clients, headers, "(" * MAX_NESTING + "amount > 10" + ")" * MAX_NESTING)
    assert nested.status_code == 200, nested.text
    wide = _partitions(clients, headers, f"amount > {HUGE}")
    assert wide.status_code == 200 and wide.json()["files_pruned"] == 1, wide.text


def test_sql_literals_past_hugeint_are_refused_by_the_sql_layer(
        core: Core, clients: dict[str, TestClient], headers: dict[str, str]) -> None:
    _orders(core)
    for sql in (f"SELECT amount FROM orders WHERE amount > {DIGITS_5000}",
                f"SELECT amount FROM orders WHERE city = 'x' OR amount < -{DIGITS_5000}",
                f"SELECT amount FROM orders LIMIT {DIGITS_5000}",
                f"SELECT amount FROM orders AT (VERSION => {DIGITS_5000})",
                # DuckDB reads this as UHUGEINT, which Arrow hands back as -2^127
                "SELECT 170141183460469231731687303715884105728 AS x"):
        body = assert_error(_query(clients, headers, sql), 400, "number_out_of_range")
        assert body["details"]["problems"][0]["line"] == 1, body
    validated = clients["op"].post("/query/plan", headers=headers, json={
        "query": f"SELECT amount FROM orders WHERE amount > {DIGITS_5000}"})
    assert_error(validated, 400, "number_out_of_range")


@pytest.mark.parametrize("flush", [True, False], ids=["flushed", "in-the-log"])
def test_numbers_past_a_columns_type_are_answered_as_duckdb_answers(
        core: Core, clients: dict[str, TestClient], headers: dict[str, str],
        flush: bool) -> None:
    """A constant no BIGINT holds compares exactly (the scan leaves it to DuckDB)."""
    _orders(core, flush=flush)
    oracle = duckdb.connect()
    oracle.execute("CREATE TABLE orders AS SELECT i::BIGINT AS amount FROM range(20) t(i)")
    for where in ("amount > 99999999999999999999", "amount < 99999999999999999999",
                  "amount > -99999999999999999999", f"amount IN (1, {HUGE})",
                  f"amount BETWEEN 3 AND {HUGE}", "amount > 1e400", "amount < 1e400",
                  f"amount < {'9' * 38}", f"amount > {DIGITS_5000}.5"):
        sql = f"SELECT amount FROM orders WHERE {where} ORDER BY amount"
        response = _query(clients, headers, sql)
        assert response.status_code == 200, (where, response.text)
        expected = [list(row) for row in oracle.execute(sql).fetchall()]
        assert response.json()["rows"] == expected, where


def test_brackets_nested_past_the_bound_are_refused_before_parsing(
        clients: dict[str, TestClient], headers: dict[str, str]) -> None:
    deep = assert_error(_query(clients, headers, "SELECT " + "(" * (MAX_NESTING + 1) + "1"
                               + ")" * (MAX_NESTING + 1)), 400, "query_too_deep")
    assert deep["details"]["depth"] == MAX_NESTING + 1
    ok = _query(clients, headers, "SELECT " + "(" * MAX_NESTING + "1" + ")" * MAX_NESTING
                + " AS x, '" + "(" * 100 + "' AS brackets_in_a_string")
    assert ok.status_code == 200, ok.text
    assert ok.json()["rows"] == [[1, "(" * 100]]


# Values only DuckDB has room for ----------------------------------------------------------

# What JSON and CSV write for each (a DuckDB expression), and DuckDB's own text of it.
ODD_VALUES: list[tuple[str, str]] = [
    ("'infinity'::TIMESTAMP", "infinity"),
    ("'-infinity'::TIMESTAMP", "-infinity"),
    ("'infinity'::DATE", "infinity"),
    ("'-infinity'::DATE", "-infinity"),
    ("'infinity'::TIMESTAMPTZ", "infinity"),
    ("'infinity'::TIMESTAMP_S", "infinity"),
    ("'-infinity'::TIMESTAMP_MS", "-infinity"),
    ("'infinity'::TIMESTAMP_NS", "infinity"),
    ("DATE '10000-01-01'", "10000-01-01"),
    ("'294247-01-01'::DATE", "294247-01-01"),
    ("'5877641-06-25'::DATE", "5877641-06-25"),
    ("'-5000-03-01'::DATE", "-5000-03-01"),  # 5001 BC: astronomical years, as DuckDB reads
    ("'0000-12-31'::DATE", "0000-12-31"),  # 1 BC
    ("TIMESTAMP '10000-01-01 10:20:30.000123'", "10000-01-01T10:20:30.000123"),
    ("'-290307-01-01 00:00:01'::TIMESTAMP", "-290307-01-01T00:00:01"),
    ("TIMESTAMPTZ '12000-06-01 10:00:00+00'", "12000-06-01T10:00:00+00:00"),
    ("TIMESTAMP_NS '2020-01-01 00:00:00.123456789'", "2020-01-01T00:00:00.123456789"),
]
INTERVALS: list[tuple[str, str]] = [
    ("INTERVAL 3 DAY", "P3D"),
    ("INTERVAL 1 MONTH", "P1M"),
    ("INTERVAL 14 MONTH", "P1Y2M"),
    ("INTERVAL 90 MINUTE", "PT1H30M"),
    ("INTERVAL '1 year 2 months -3 days 04:05:06.000007'", "P1Y2M-3DT4H5M6.000007S"),
    ("-INTERVAL 36 HOUR", "PT-36H"),
    ("INTERVAL 0 SECOND", "PT0S"),
    ("INTERVAL 5 MICROSECOND + INTERVAL 2 MONTH", "P2MT0.000005S"),
]


def test_odd_values_answer_in_json_as_documented(
        clients: dict[str, TestClient], headers: dict[str, str]) -> None:
    for expression, written in [*ODD_VALUES, *INTERVALS]:
        response = _query(clients, headers, f"SELECT {expression} AS v")
        assert response.status_code == 200, (expression, response.text)
        assert response.json()["rows"] == [[written]], expression
    # Nested in lists, structs and maps too, beside ordinary values.
    nested = _query(clients, headers, "SELECT [DATE '2020-01-01', 'infinity'::DATE, NULL] AS l, "
                    "{'i': INTERVAL 1 DAY, 't': TIMESTAMP '10000-01-01 00:00:00'} AS s, "
                    "MAP {'k': DATE '10000-01-01'} AS m")
    assert nested.status_code == 200, nested.text
    assert nested.json()["rows"] == [[["2020-01-01", "infinity", None],
                                      {"i": "P1D", "t": "10000-01-01T00:00:00"},
                                      [["k", "10000-01-01"]]]]


def test_the_text_of_dates_reads_back_in_duckdb() -> None:
    """What JSON writes for a date or timestamp is DuckDB's to read: cast back, it is the value
    that was selected."""
    oracle = duckdb.connect()
    for expression, written in ODD_VALUES:
        kind = oracle.execute(f"SELECT typeof({expression})").fetchone()[0]  # type: ignore[index]
        same = oracle.execute(f"SELECT '{written}'::{kind} = {expression}").fetchone()
        assert same == (True,), (expression, written)


# CSV writes timestamps as pyarrow does (a space, the unit's decimals, +0000), in any year.
CSV_TIMESTAMPS = {
    "TIMESTAMP '10000-01-01 10:20:30.000123'": "10000-01-01 10:20:30.000123",
    "'-290307-01-01 00:00:01'::TIMESTAMP": "-290307-01-01 00:00:01.000000",
    "TIMESTAMPTZ '12000-06-01 10:00:00+00'": "12000-06-01 10:00:00.000000+0000",
    "TIMESTAMP_NS '2020-01-01 00:00:00.123456789'": "2020-01-01 00:00:00.123456789",
}


def test_odd_values_answer_in_every_format(clients: dict[str, TestClient],
                                          headers: dict[str, str]) -> None:
    selected = ", ".join(f"{e} AS c{i}" for i, (e, _) in enumerate([*ODD_VALUES, *INTERVALS]))
    sql = f"SELECT {selected}, [INTERVAL 2 DAY] AS li, '\\xAA'::BLOB AS b, [1, 2] AS l"
    expected = duckdb.connect().sql(sql).to_arrow_table()
    # CSV: the same text as JSON where pyarrow has none, pyarrow's own text elsewhere.
    text = _query(clients, headers, sql, "csv")
    assert text.status_code == 200, text.text
    [row] = list(csv.DictReader(io.StringIO(text.text)))
    for i, (expression, written) in enumerate([*ODD_VALUES, *INTERVALS]):
        assert row[f"c{i}"] == CSV_TIMESTAMPS.get(expression, written), expression
    assert row["li"] == '["P2D"]' and row["l"] == "[1,2]"
    assert base64.b64decode(row["b"]) == b"\xaa"
    # Arrow: DuckDB's own values, exactly.
    arrow = _query(clients, headers, sql, "arrow")
    assert arrow.status_code == 200, arrow.text
    assert pa.ipc.open_stream(arrow.content).read_all().equals(expected)
    # Parquet: an interval as its three parts; seconds as milliseconds, infinity kept.
    parquet = _query(clients, headers, sql, "parquet")
    assert parquet.status_code == 200, parquet.text
    read = pq.read_table(io.BytesIO(parquet.content))
    interval = len(ODD_VALUES) + 4  # '1 year 2 months -3 days 04:05:06.000007'
    assert read.column(f"c{interval}").to_pylist() == [
        {"months": 14, "days": -3, "nanoseconds": 14_706_000_007_000}]
    assert read.column("li").to_pylist() == [[{"months": 0, "days": 2, "nanoseconds": 0}]]
    seconds = [e for e, _ in ODD_VALUES].index("'infinity'::TIMESTAMP_S")
    assert read.column(f"c{seconds}").type == pa.timestamp("ms")
    assert read.column(f"c{seconds}").cast(pa.int64()).to_pylist() == [2**63 - 1]
    for i, (expression, _) in enumerate(ODD_VALUES):
        if "TIMESTAMP_S" not in expression:
            assert read.column(f"c{i}").equals(expected.column(f"c{i}")), expression


def test_result_pages_encode_odd_values_too(clients: dict[str, TestClient],
                                            headers: dict[str, str]) -> None:
    run = _query(clients, headers, "SELECT * FROM (VALUES ('infinity'::DATE, INTERVAL 1 DAY), "
                 "(DATE '10000-01-01', INTERVAL 2 MONTH)) t(d, i) ORDER BY i")
    assert run.status_code == 200, run.text
    page = clients["op"].get(f"/query/{run.json()['query_id']}/result", headers=headers,
                             params={"offset": 1, "limit": 1})
    assert page.status_code == 200, page.text
    assert page.json()["rows"] == [["10000-01-01", "P2M"]]


def test_a_union_is_refused_in_parquet_only(clients: dict[str, TestClient],
                                            headers: dict[str, str]) -> None:
    sql = "SELECT union_value(k := 1) AS u"
    assert _query(clients, headers, sql).json()["rows"] == [[1]]
    assert _query(clients, headers, sql, "csv").text.splitlines() == ['"u"', '"1"']
    assert_error(_query(clients, headers, sql, "parquet"), 400, "unsupported_result_type")


# Logouts at once ----------------------------------------------------------------------------


def test_eight_logouts_with_the_same_tokens_at_once_all_succeed(
        core: Core, client_for: Callable[[Service], TestClient]) -> None:
    auth = client_for(Service.AUTH)
    core.auth.create_user("alice", PASSWORD, "acme", Role.WRITER)
    for _ in range(3):
        session = auth.post("/auth/login",
                            json={"username": "alice", "password": PASSWORD}).json()
        start = threading.Barrier(8)

        def logout(session: dict[str, str] = session,
                   start: threading.Barrier = start) -> Any:
            start.wait()
            return auth.post("/auth/logout", json={"refresh_token": session["refresh_token"]},
                             headers={"Authorization": f"Bearer {session['access_token']}"})

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: logout(), range(8)))
        assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
        assert_error(auth.post("/auth/validate",
                               headers={"Authorization": f"Bearer {session['access_token']}"}),
                     401, "token_revoked")


# DuckDB at planning time ------------------------------------------------------------------

LOCKED = {"enable_external_access": "false", "autoload_known_extensions": "false",
          "autoinstall_known_extensions": "false", "python_enable_replacements": "false",
          "lock_configuration": "true"}


def test_planning_evaluates_constants_in_a_database_locked_like_the_sandbox() -> None:
    def inspect() -> dict[str, str]:
        with planning_database() as connection:
            with pytest.raises(duckdb.Error):
                connection.execute("SET autoload_known_extensions = true")
            with pytest.raises(duckdb.PermissionException):
                connection.execute("SELECT content FROM read_text('/etc/passwd')").fetchall()
            rows = connection.execute("SELECT name, value FROM duckdb_settings() WHERE name IN "
                                      "(SELECT unnest($1))", [list(LOCKED)]).fetchall()
        return {name: str(value).lower() for name, value in rows}

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(inspect).result() == LOCKED
    sandbox = locked_connection(threads=1)
    assert {k: str(v).lower() for k, v in sandbox.execute(
        "SELECT name, value FROM duckdb_settings() WHERE name IN (SELECT unnest($1))",
        [list(LOCKED)]).fetchall()} == LOCKED


def test_a_constant_that_would_read_a_file_reads_nothing(
        core: Core, clients: dict[str, TestClient], headers: dict[str, str]) -> None:
    """The scan folds a predicate's constants in the planning database: a constant reaching a
    file there is an error DuckDB keeps to itself (the part stays with the query), and the query
    itself is refused by the guard before anything runs."""
    schema = pa.schema([("amount", pa.int64())])
    for constant in ("length((SELECT content FROM read_text('/etc/passwd')))",
                     "(SELECT count(*) FROM read_csv('/etc/passwd'))",
                     "length(getenv('HOME'))"):
        assert arrow_filter(f"amount = {constant}", schema) is None, constant
    _orders(core, flush=False)  # rows in the log: the scan filters them with arrow_filter
    for constant in ("length((SELECT content FROM read_text('/etc/passwd')))",
                     "length(getenv('HOME'))"):
        refused = _query(clients, headers,
                         f"SELECT amount FROM orders WHERE amount = {constant}")
        assert_error(refused, 403, "forbidden_function")
