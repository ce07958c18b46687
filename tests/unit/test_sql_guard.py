"""The guard and the whole interpreter against the hostile corpus: every form refused, 4xx."""

from __future__ import annotations

import pytest

from lakehouse.errors import LakehouseError
from lakehouse.sql.guard import guard, is_forbidden_function
from lakehouse.sql.interpret import interpret, validate
from lakehouse.sql.parse import parse_query
from tests.unit.sql_cases import ACCEPTED, HOSTILE, acme_view


def test_the_corpus_is_large_enough() -> None:
    assert len(HOSTILE) >= 40
    assert len({sql for _, sql, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(("dialect", "sql", "code"), HOSTILE)
def test_hostile_sql_is_refused(dialect: str, sql: str, code: str) -> None:
    with pytest.raises(LakehouseError) as refused:
        interpret(sql, dialect, acme_view())
    assert 400 <= refused.value.http_status < 500
    assert refused.value.code == code, refused.value.to_body()
    problems = validate(sql, dialect, acme_view())
    assert problems and code in {p.code for p in problems}


@pytest.mark.parametrize(("dialect", "sql"), ACCEPTED)
def test_read_only_queries_pass(dialect: str, sql: str) -> None:
    tree, _ = parse_query(sql, dialect)
    assert guard(tree) == []
    assert validate(sql, dialect, acme_view()) == []
    found = interpret(sql, dialect, acme_view())
    assert all(b.tenant == "acme" for b in found.bindings)


@pytest.mark.parametrize(("name", "forbidden"), [
    ("read_parquet", True), ("READ_CSV", True), (" glob ", True), ("duckdb_settings", True),
    ("pragma_version", True), ("getenv", True), ("current_setting", True), ("query", True),
    ("pg_read_file", True), ("lower", False), ("sum", False), ("regexp_matches", False),
    ("list_filter", False), ("strftime", False),
])
def test_function_names(name: str, forbidden: bool) -> None:
    assert is_forbidden_function(name) is forbidden


def test_forbidden_statements_are_403_and_problems_are_400() -> None:
    view = acme_view()
    with pytest.raises(LakehouseError) as forbidden:
        interpret("DROP TABLE orders", None, view)
    assert forbidden.value.http_status == 403
    with pytest.raises(LakehouseError) as unknown:
        interpret("SELECT * FROM nowhere", None, view)
    assert unknown.value.http_status == 400
    assert unknown.value.details["problems"][0] == {
        "code": "unknown_table", "message": "no table 'nowhere' in your tenant", "line": 1,
        "column": 15}


def test_every_problem_of_a_query_is_listed_with_its_position() -> None:
    problems = guard(parse_query(
        "SELECT getenv('A'),\n  current_setting('b')\nFROM read_csv('x')", None)[0])
    assert [(p.code, p.line) for p in problems] == [
        ("forbidden_function", 1), ("forbidden_function", 2), ("forbidden_function", 3),
        ("table_function", 3)]
