"""The route decision (which engine answers) as a table of cases, and the ClickHouse SQL the
route writes: what it reads, and what it refuses to write."""

from __future__ import annotations

import re

import pytest
import sqlglot

from lakehouse.optimizer.route import (
    CLICKHOUSE,
    DEFAULT,
    RouteFacts,
    ServedTable,
    choose_route,
    key_lookup,
)
from lakehouse.serving.dialect import (
    MirrorView,
    NotRoutable,
    Written,
    check_written,
    to_clickhouse,
)
from lakehouse.sql.interpret import interpret
from lakehouse.sql.schema_view import SchemaView

CURRENT = ServedTable("orders", served=True, mirrored=True)
NOT_SERVED = ServedTable("visits", served=False)
LAGGING = ServedTable("orders", served=True, mirrored=True, lagging_files=2)
UNFLUSHED = ServedTable("orders", served=True, mirrored=True, unflushed_rows=5)
NO_MIRROR = ServedTable("orders", served=True)

CASES = [
    # asked, tables, extra facts → engine, refused, code, words of the reason
    ("default", (CURRENT,), {}, DEFAULT, False, "", "asked for"),
    ("clickhouse", (CURRENT,), {}, CLICKHOUSE, False, "", "asked for"),
    ("clickhouse", (CURRENT, NOT_SERVED), {}, CLICKHOUSE, True, "not_routable",
     "'visits' is not served"),
    ("clickhouse", (LAGGING,), {}, CLICKHOUSE, True, "mirror_behind", "lacks 2"),
    ("clickhouse", (NO_MIRROR,), {}, CLICKHOUSE, True, "mirror_behind", "lacks all"),
    ("clickhouse", (UNFLUSHED,), {}, CLICKHOUSE, True, "mirror_behind", "5 rows"),
    ("clickhouse", (CURRENT,), {"time_travel": True}, CLICKHOUSE, True, "not_routable",
     "older snapshot"),
    ("clickhouse", (LAGGING,), {"untranslatable": "round() differs"}, CLICKHOUSE, True,
     "not_routable", "round() differs"),  # what no wait mends comes first
    ("clickhouse", (), {}, CLICKHOUSE, True, "not_routable", "no table"),
    (None, (CURRENT,), {"key_lookup": True}, CLICKHOUSE, False, "", "lookup by data_id"),
    (None, (CURRENT,), {}, DEFAULT, False, "", "measured faster"),
    (None, (LAGGING,), {"key_lookup": True}, DEFAULT, False, "", "lacks 2"),
    (None, (NOT_SERVED,), {"key_lookup": True}, DEFAULT, False, "", "not served"),
    (None, (), {}, DEFAULT, False, "", "no table"),
]


@pytest.mark.parametrize(("asked", "tables", "extra", "engine", "refused", "code", "words"),
                         CASES)
def test_the_route_of_each_case(asked: str | None, tables: tuple[ServedTable, ...],
                                extra: dict[str, object], engine: str, refused: bool,
                                code: str, words: str) -> None:
    route = choose_route(RouteFacts(asked, tables, **extra))  # type: ignore[arg-type]
    assert (route.engine, route.refused, route.code) == (engine, refused, code)
    assert words in route.reason


@pytest.mark.parametrize(("sql", "lookup"), [
    ("SELECT * FROM t WHERE data_id = 'a'", True),
    ("SELECT * FROM t WHERE x > 1 AND data_id IN ('a', 'b')", True),
    ("SELECT * FROM t WHERE data_id IN (SELECT y FROM u)", False),
    ("SELECT * FROM t WHERE data_id = 'a' OR x > 1", False),
    ("SELECT * FROM t JOIN u ON t.x = u.x WHERE t.data_id = 'a'", False),
    ("SELECT * FROM t WHERE data_id > 'a'", False),
    ("SELECT * FROM t", False),
])
def test_key_lookups(sql: str, lookup: bool) -> None:
    assert key_lookup(sqlglot.parse_one(sql, read="duckdb")) is lookup


def _view() -> SchemaView:
    return SchemaView.from_schemas("acme", {
        "t": {"type": "struct", "fields": [{"name": "a", "type": "int64"},
                                           {"name": "b", "type": "string"}]}})


def _written(sql: str, view: MirrorView | None = None) -> Written:
    return to_clickhouse(interpret(sql, None, _view()).tree, "tenant_acme", "lh_acme",
                         {"t": view or MirrorView((1, 2))}, _view().mapping_schema("duckdb"))


def _clickhouse(sql: str, view: MirrorView | None = None) -> str:
    return _written(sql, view).sql


LIVE = 'has({files_0: Array(UInt64)}, "_mirror_file")'


def test_tables_become_the_rows_of_the_tenants_mirrors_a_query_sees() -> None:
    plain = _written("SELECT a FROM t")
    want = 'SELECT "t"."a" AS "a" FROM (SELECT * FROM "lh_acme"."t" WHERE ' + LIVE + ') AS "t"'  # noqa: S608 - expected text
    assert plain.sql == want
    assert plain.parameters == {"files_0": [1, 2]}  # the live files, outside the SQL
    # Retention is a filter; no live file, no row.
    kept = _written("SELECT a FROM t", MirrorView((3,), cutoff=1_700_000_000_000_000))
    assert (f'FROM (SELECT * FROM "lh_acme"."t" WHERE {LIVE} AND "_timestamp" >= '  # noqa: S608
            "fromUnixTimestamp64Micro(toInt64(1700000000000000), 'UTC')) AS \"t\"") in kept.sql
    assert _written("SELECT a FROM t", MirrorView(())).parameters == {"files_0": []}
    # Upserts among the live files: the versions they replaced are left out.
    newest = _clickhouse("SELECT a FROM t", MirrorView((1,), upserts=True))
    assert (f'NOT ("data_id" IN (SELECT "data_id" FROM "lh_acme"."t" WHERE {LIVE} '  # noqa: S608
            'AND "_upsert")) OR "_seq" IN (SELECT MAX("_seq")') in newest.replace("max(", "MAX(")
    # Thousands of files make the parameter longer, not the SQL.
    many = _written("SELECT a FROM t", MirrorView(tuple(range(1, 20_001))))
    assert many.sql == plain.sql and len(many.parameters["files_0"]) == 20_000
    # Each table its own list; a table read twice, one.
    joined = _written("SELECT x.a FROM t x JOIN t y ON x.a = y.a")
    assert joined.parameters == {"files_0": [1, 2]} and joined.sql.count("files_0") == 2
    assert "CAST(\"t\".\"a\" AS Nullable(Float64)) / CAST(2 AS Nullable(Float64))" in \
        _clickhouse("SELECT a / 2 AS h FROM t")
    assert "substringUTF8(" in _clickhouse("SELECT substring(b, 2, 1) AS s FROM t")
    assert "Date32" in _clickhouse("SELECT DATE '1960-01-02' AS d FROM t")
    # 0.06 - 0.01 is 0.05 only in decimals: ClickHouse reads 0.06 as a Float64.
    assert "CAST('0.06' AS Nullable(Decimal(2, 2)))" in _clickhouse(
        "SELECT a FROM t WHERE a > 0.06 - 0.01")


@pytest.mark.parametrize(("sql", "written"), [
    # ClickHouse wraps 64-bit integers around: sums and means over Decimal(38, 0) (exact, as
    # DuckDB's HUGEINT), + - * in Int128 cast back with a check (an overflow fails).
    ("SELECT sum(a) AS s FROM t", 'SUM(CAST("t"."a" AS Decimal(38, 0)))'),
    ("SELECT avg(DISTINCT a) AS m FROM t", 'AVG(DISTINCT CAST("t"."a" AS Decimal(38, 0)))'),
    ("SELECT sum(a) FILTER (WHERE a > 1) AS s FROM t",
     'SUM(CAST("t"."a" AS Decimal(38, 0))) FILTER('),
    ("SELECT avg(a) OVER () AS m FROM t", 'AVG(CAST("t"."a" AS Decimal(38, 0))) OVER ()'),
    ("SELECT a * 2 + a AS x FROM t", "ACCURATECAST((TOINT128(ACCURATECAST((TOINT128(\"T\".\"A\") * "
     "TOINT128(2)), 'NULLABLE(INT64)')) + TOINT128(\"T\".\"A\")), 'NULLABLE(INT64)')"),
    ("SELECT sum(a * 1.5) AS s FROM t", 'SUM("t"."a" * CAST('),  # a decimal: exact already
    # A sum of integers is a DECIMAL (DuckDB's HUGEINT): arithmetic on it is not 64-bit.
    ("SELECT sum(a) * 2 + a AS s FROM t GROUP BY a",
     'SUM(CAST("t"."a" AS Decimal(38, 0))) * 2 + "t"."a" AS "s"'),
])
def test_integers_are_exact_or_fail_as_in_duckdb(sql: str, written: str) -> None:
    found = _clickhouse(sql)
    assert written in (found.upper() if written.isupper() else found), found


@pytest.mark.parametrize(("sql", "reason"), [
    ("SELECT CAST(b AS DOUBLE) AS d FROM t", "text cast to DOUBLE"),
    ("SELECT CAST(b AS DATE) AS d FROM t", "a cast to DATE"),
    ("SELECT CAST(a AS INTEGER) AS i FROM t", "a cast to INT"),
    ("SELECT CAST(DATE '2020-02-30' AS TIMESTAMP) AS x FROM t", "a cast to DATE"),
    ("SELECT a % 2 AS m FROM t", "%"),
    ("SELECT concat_ws('-', b, 'z') AS c FROM t", "concat_ws"),
    ("SELECT extract(epoch FROM DATE '2020-01-01') AS e FROM t", "extract(epoch)"),
    ("SELECT b FROM t WHERE b LIKE '%\\%'", "backslash"),
    ("SELECT substring(b, 2, -1) AS s FROM t", "negative"),
    ("SELECT a FROM t WHERE (SELECT count(*) FROM t u WHERE u.a < t.a) = 0", "count()"),
    ("SELECT 99999999999999999999999 AS n FROM t", "past 64 bits"),
])
def test_what_answers_otherwise_is_refused(sql: str, reason: str) -> None:
    with pytest.raises(NotRoutable, match=re.escape(reason)):
        _clickhouse(sql)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'CSV')",
    "SELECT * FROM other_tenant.t",
    "SELECT * FROM lh_acme.u",
    "SELECT * FROM lh_acme.t INTO OUTFILE '/tmp/x'",
    "SELECT * FROM lh_acme.t SETTINGS readonly = 0",
    "SELECT * FROM lh_acme.t FORMAT JSON",
    "SELECT * FROM lh_acme.t WHERE has({files_1: Array(UInt64)}, a)",
])
def test_written_sql_reads_only_the_querys_mirrors(sql: str) -> None:
    with pytest.raises(NotRoutable):
        check_written(sql, "lh_acme", {"t"})
    check_written('SELECT "a" FROM "lh_acme"."t"', "lh_acme", {"t"})
