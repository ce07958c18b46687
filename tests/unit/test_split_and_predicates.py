"""Splitting queries into partial and final parts gives the single-node answer (DuckDB as the
oracle, random data cut into fragments); scan predicates become exact Arrow filters or nothing."""

from __future__ import annotations

import decimal
import random

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import sqlglot

from lakehouse.executor.predicates import arrow_filter
from lakehouse.optimizer.split import PARTIALS, split

ROWS = pa.table({
    "k": pa.array([random.Random(1).choice("abc") for _ in range(500)]),
    "g": pa.array([i % 7 for i in range(500)], pa.int64()),
    "x": pa.array([random.Random(i).uniform(-5, 5) if i % 11 else None for i in range(500)]),
    "n": pa.array(range(500), pa.int64()),
})
SPLITTABLE = [
    "SELECT k, sum(x), count(*), count(x), min(n), max(n), avg(x) FROM t GROUP BY k ORDER BY k",
    "SELECT sum(n * 2) AS s, avg(n) AS a FROM t WHERE g > 2",
    "SELECT g, count(*) AS c FROM t GROUP BY g HAVING count(*) > 70 ORDER BY c DESC, g",
    "SELECT k, g, sum(x) FROM t GROUP BY k, g ORDER BY 3 DESC LIMIT 4",
    "SELECT n, x FROM t ORDER BY x DESC NULLS LAST, n LIMIT 7",
    "SELECT count(*) FROM t WHERE n < 0",
]
NOT_SPLITTABLE = [
    "SELECT count(DISTINCT k) FROM t",
    "SELECT k FROM t WHERE n > (SELECT avg(n) FROM t)",
    "SELECT DISTINCT k FROM t",
    "SELECT k, row_number() OVER (ORDER BY n) FROM t",
    "SELECT median(x) FROM t",
    "SELECT n FROM t ORDER BY n",  # no LIMIT: nothing to cut
]


def _run(sql: str, tables: dict[str, pa.Table]) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    # Merged sums of integers come back as 128-bit decimals; the executor casts them back.
    return [tuple(round(float(v), 9) if isinstance(v, float | decimal.Decimal) else v
                  for v in row) for row in con.execute(sql).fetchall()]


@pytest.mark.parametrize("sql", SPLITTABLE)
def test_partial_then_final_equals_the_whole(sql: str) -> None:
    parts = split(sqlglot.parse_one(sql, read="duckdb"))
    assert parts is not None, sql
    fragments = [ROWS.slice(0, 100), ROWS.slice(100, 250), ROWS.slice(450, 50),
                 ROWS.slice(350, 100), ROWS.slice(0, 0)]
    partials = pa.concat_tables([duckdb_query(parts.partial_sql, f) for f in fragments])
    assert _run(parts.final_sql, {PARTIALS: partials}) == _run(sql, {"t": ROWS})


def duckdb_query(sql: str, rows: pa.Table) -> pa.Table:
    con = duckdb.connect()
    con.register("t", rows)
    return con.sql(sql).to_arrow_table()


@pytest.mark.parametrize("sql", NOT_SPLITTABLE)
def test_what_does_not_split(sql: str) -> None:
    assert split(sqlglot.parse_one(sql, read="duckdb")) is None


SCHEMA = pa.schema([("i", pa.int64()), ("f", pa.float64()), ("s", pa.string()),
                    ("d", pa.date32()), ("m", pa.decimal128(12, 2)),
                    ("nested", pa.struct([("a", pa.int64())]))])


@pytest.mark.parametrize(("predicate", "expected"), [
    ("i = 3", "(i == 3)"),
    ("3 < i", "(i > 3)"),
    ("i BETWEEN 1 AND 4 AND s = 'x'", "(((i >= 1) and (i <= 4)) and (s == \"x\"))"),
    ("s IN ('a', 'b')",
     'is_in(s, {value_set=string:[\n  "a",\n  "b"\n], null_matching_behavior=MATCH})'),
    ("d < CAST('1995-01-01' AS DATE) + INTERVAL 1 YEAR", "(d < 1996-01-01)"),
    ("m >= 0.06 - 0.01", "(m >= 0.05)"),
    ("f IS NULL OR i > 1", "(is_null(f, {nan_is_null=false}) or (i > 1))"),
    ("NOT (i = 1)", "invert((i == 1))"),
])
def test_predicates_translate_exactly(predicate: str, expected: str) -> None:
    found = arrow_filter(predicate, SCHEMA)
    assert found is not None and str(found) == expected


@pytest.mark.parametrize("predicate", [
    "i = 2.5",  # a fraction compared with an integer column
    "m = 0.001",  # more digits than the column has
    "lower(s) = 'x'",  # a function of the column
    "nested.a = 1",  # a nested field
    "i = f",  # two columns
    "missing = 1",
    "d < CAST('1995-01-01 10:00' AS TIMESTAMP)",  # a time of day against a date
    # A new value at each call (DuckDB draws per row): folded, one draw would prune for all.
    "f < random()", "i < floor(random() * 10)", "s = CAST(uuid() AS VARCHAR)",
    "i = nextval('n')", "f < setseed(0.5)",
])
def test_what_stays_with_duckdb(predicate: str) -> None:
    assert arrow_filter(predicate, SCHEMA) is None


def test_untranslatable_parts_leave_the_rest() -> None:
    found = arrow_filter("i > 1 AND lower(s) = 'x'", SCHEMA)
    rows = pa.table({"i": [1, 2, 3], "s": ["X", "y", "x"]})
    assert found is not None and rows.filter(found).num_rows == 2
    assert pc.sum(rows.filter(found).column("i")).as_py() == 5
