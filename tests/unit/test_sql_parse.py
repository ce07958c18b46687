"""Parsing: one statement, a documented default dialect, errors with line and column."""

from __future__ import annotations

import pytest

from lakehouse.errors import LakehouseError
from lakehouse.sql.parse import DEFAULT_DIALECT, MAX_QUERY_CHARS, check_dialect, parse_query


def test_duckdb_is_the_default() -> None:
    assert DEFAULT_DIALECT == "duckdb"
    assert parse_query("SELECT 1", None)[1] == "duckdb"
    assert check_dialect(" Postgres ") == "postgres"


@pytest.mark.parametrize(("dialect", "sql"), [
    ("duckdb", "FROM orders SELECT city"),
    ("postgres", "SELECT city::text FROM orders"),
    ("mysql", "SELECT `city` FROM `orders`"),
    ("tsql", "SELECT TOP 3 [city] FROM [orders]"),
    ("bigquery", "SELECT city FROM `orders`"),
    ("snowflake", "SELECT city FROM orders LIMIT 3"),
    ("spark", "SELECT city FROM orders"),
    ("sqlite", "SELECT city FROM orders"),
])
def test_other_dialects_are_read(dialect: str, sql: str) -> None:
    tree, name = parse_query(sql, dialect)
    assert name == dialect and tree.key == "select"


@pytest.mark.parametrize(("sql", "code", "status", "line", "column"), [
    ("SELECT (a FROM t", "syntax_error", 400, 1, 11),  # where FROM starts
    ("SELECT a\nFROM t\nWHERE", "syntax_error", 400, 3, 1),
    ("SELECT 'unterminated", "syntax_error", 400, None, None),
    ("", "empty_query", 400, None, None),
    ("  ;  -- nothing", "empty_query", 400, None, None),
    ("SELECT 1; SELECT 2", "multiple_statements", 403, None, None),
])
def test_refusals(sql: str, code: str, status: int, line: int | None,
                  column: int | None) -> None:
    with pytest.raises(LakehouseError) as refused:
        parse_query(sql, None)
    error = refused.value
    assert (error.code, error.http_status) == (code, status)
    if line is not None:
        assert error.details["problems"][0]["line"] == line
        assert error.details["problems"][0]["column"] == column


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT 1 *", "SQL syntax error near line 1, column 10: the query ends at '*' but an "
                   "expression must follow it"),
    ("SELECT 1 * FROM t", "near line 1, column 12: an expression is missing before 'FROM'"),
    ("SELECT a\nFROM t\nWHERE", "near line 3, column 1: the query ends at 'WHERE' but a "
                                 "condition must follow it"),
    ("SELECT * FROM", "near line 1, column 10: expected table name after 'FROM', but the "
                      "query ends there"),
    ("SELECT * FRM t", "near line 1, column 14: unexpected 't'"),
    ("SELECT (a FROM t", "near line 1, column 11: expected ')' before 'FROM'"),
    ("SELECT 'abc", "check for a quote"),
])
def test_syntax_errors_say_where_and_what_in_sql_terms(sql: str, message: str) -> None:
    with pytest.raises(LakehouseError) as refused:
        parse_query(sql, None)
    assert message in refused.value.message
    assert "send it again" in refused.value.message or "never closed" in refused.value.message
    for internal in ("<class", "sqlglot", "Token", "Required keyword", "SENTINEL"):
        assert internal not in str(refused.value.to_body())


def test_unknown_dialect_and_huge_text() -> None:
    with pytest.raises(LakehouseError) as unknown:
        parse_query("SELECT 1", "klingon")
    assert unknown.value.code == "unknown_dialect" and "duckdb" in unknown.value.details["known"]
    with pytest.raises(LakehouseError) as huge:
        parse_query("SELECT " + "1+" * MAX_QUERY_CHARS + "1", None)
    assert huge.value.code == "query_too_long"


def test_deep_nesting_is_a_client_error() -> None:
    with pytest.raises(LakehouseError) as deep:
        parse_query("SELECT " + "(" * 5000 + "1" + ")" * 5000, None)
    assert 400 <= deep.value.http_status < 500
