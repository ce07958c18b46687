"""The type checker next to DuckDB's binder, on a corpus of expressions over every column type
(date, time and interval arithmetic, implicit casts, text against numbers, NULL, lists and
structs, aggregates): the interpreter must accept exactly what DuckDB's binder accepts on an
empty table of the same columns, refuse exactly what it refuses (400 type_mismatch or
invalid_query, before anything runs), and report the result type DuckDB reports."""

from __future__ import annotations

import itertools

import duckdb
import pytest

from lakehouse.errors import LakehouseError
from lakehouse.sql.interpret import interpret
from lakehouse.sql.schema_view import SchemaView, sql_type

STORED = {"i": "int64", "f": "float64", "n": {"type": "decimal", "precision": 10, "scale": 2},
          "s": "string", "d": "date", "ts": {"type": "timestamp"},
          "tz": {"type": "timestamp", "tz": "UTC"}, "b": "bool", "tm": "time",
          "l": {"type": "list", "element": "int64"},
          "st": {"type": "struct", "fields": [{"name": "a", "type": "string"},
                                              {"name": "k", "type": "int64"}]}}
VIEW = SchemaView.from_schemas("acme", {"t": {"type": "struct", "fields": [
    {"name": name, "type": kind} for name, kind in STORED.items()]}})
OPERANDS = [*STORED, "5", "5.5", "'5'", "3000000000", "DATE '2020-01-01'",
            "TIMESTAMP '2020-01-01 10:00:00'", "INTERVAL 1 DAY", "NULL", "true",
            "CAST(3 AS INTEGER)", "st.a", "l[1]"]
OPERATORS = ["=", "<>", "<", ">=", "+", "-", "*", "/", "%", "||", "IS DISTINCT FROM"]
FUNCTIONS = ["sum({})", "avg({})", "min({})", "max({})", "count({})", "stddev({})",
             "coalesce({}, 1)", "coalesce({}, 'x')", "{} IN (1, 2)", "{} IN ('a', 'b')",
             "{} BETWEEN 1 AND 5", "{} LIKE 'a%'", "CASE WHEN b THEN {} ELSE 0 END",
             "CASE WHEN b THEN {} ELSE 'z' END", "{} IS NULL", "NOT {}", "-{}",
             "length({})", "upper({})", "abs({})", "date_trunc('day', {})", "year({})",
             "{}[1]", "list_contains({}, 1)", "{}.a", "CAST({} AS VARCHAR)",
             "CAST({} AS BIGINT)", "{} + INTERVAL 1 HOUR", "{} - INTERVAL '2' DAY"]


def _corpus() -> list[str]:
    pairs = [f"{a} {op} {b}" for a, b in itertools.product(OPERANDS, repeat=2)
             if a in STORED or b in STORED for op in OPERATORS]
    return pairs + [f.format(c) for f in FUNCTIONS for c in STORED]


def _duckdb() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    columns = ", ".join(f"{name} {sql_type(kind)}" for name, kind in STORED.items())
    con.execute(f"CREATE TABLE t ({columns})")
    return con


def _ours(expression: str) -> str | None:
    """The result type the interpreter gives the expression; None when it refuses it."""
    try:
        found = interpret(f"SELECT {expression} AS x FROM t", None, VIEW)  # noqa: S608 - a test corpus
    except LakehouseError as exc:
        problems = exc.details.get("problems") or [{"code": exc.code}]
        codes = {p.get("code") for p in problems}
        assert codes <= {"type_mismatch", "invalid_query"}, (expression, exc.message)
        return None
    assert [o.name for o in found.outputs] == ["x"], (expression, found.outputs)
    return found.outputs[0].type


def _theirs(con: duckdb.DuckDBPyConnection, expression: str) -> str | None:
    """The type DuckDB's binder gives the expression; None when it refuses it."""
    try:
        described = con.execute(f"DESCRIBE SELECT {expression} AS x FROM t").fetchall()  # noqa: S608
    except duckdb.Error:
        return None
    return str(described[0][1])


def test_the_checker_accepts_refuses_and_types_as_duckdbs_binder(
        capsys: pytest.CaptureFixture[str]) -> None:
    con = _duckdb()
    corpus = _corpus()
    different = []
    refused = 0
    for expression in corpus:
        ours, theirs = _ours(expression), _theirs(con, expression)
        refused += theirs is None
        if ours != theirs:
            different.append((expression, ours, theirs))
    with capsys.disabled():
        print(f"\ntype checker vs DuckDB's binder: {len(corpus)} expressions, {refused} refused "
              f"by both, {len(different)} different")
    assert different == []


@pytest.mark.parametrize(("expression", "kind"), [
    ("d + 5", "DATE"), ("5 + d", "DATE"), ("d - 5", "DATE"), ("d + CAST(3 AS INTEGER)", "DATE"),
    ("s = 5", "BOOLEAN"), ("s <> i", "BOOLEAN"), ("s = f", "BOOLEAN"), ("ts = 5", "BOOLEAN"),
    ("d = '2020-01-01'", "BOOLEAN"), ("i + '5'", "BIGINT"), ("d - d", "BIGINT"),
    ("ts - ts", "INTERVAL"), ("d + INTERVAL 1 DAY", "TIMESTAMP"), ("s || i", "VARCHAR"),
    ("sum(i)", "HUGEINT"), ("avg(n)", "DOUBLE"), ("st.k * 2", "BIGINT"), ("l[1] + 1", "BIGINT"),
])
def test_what_duckdb_accepts_is_accepted_with_its_type(expression: str, kind: str) -> None:
    assert _theirs(_duckdb(), expression) == kind
    assert _ours(expression) == kind


@pytest.mark.parametrize("expression", [
    "s > 5", "s < i", "ts > 5", "d < 5", "s + 1", "s - i", "sum(s)", "avg(s)", "d + 3000000000",
    "tm * 2", "l + 1", "st + 1", "b * 2", "upper(i)",
])
def test_what_duckdb_refuses_is_refused_before_it_runs(expression: str) -> None:
    assert _theirs(_duckdb(), expression) is None
    assert _ours(expression) is None


def test_a_refusal_found_by_the_binder_says_why_and_names_no_internal_schema() -> None:
    with pytest.raises(LakehouseError) as refused:
        interpret("SELECT upper(i) FROM t", None, VIEW)
    assert refused.value.code == "type_mismatch"
    assert "upper" in refused.value.message and "s_" not in refused.value.message
    assert "tenant_acme" not in refused.value.message


def test_a_query_shape_duckdb_refuses_is_an_invalid_query() -> None:
    with pytest.raises(LakehouseError) as refused:
        interpret("SELECT i, count(*) FROM t", None, VIEW)
    assert refused.value.code == "invalid_query" and "GROUP BY" in refused.value.message
