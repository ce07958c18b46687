"""The type checker next to DuckDB's binder, on a corpus of expressions over every column type:
the checker may refuse (400 type_mismatch, with a position) only what DuckDB's binder refuses too.
What it lets through that DuckDB refuses is still refused when the query runs (400
query_failed), so a user sees the same accept or refuse either way; the counts are printed."""

from __future__ import annotations

import itertools

import duckdb
import pytest

from lakehouse.errors import LakehouseError
from lakehouse.sql.interpret import interpret
from lakehouse.sql.schema_view import SchemaView, sql_type

STORED = {"i": "int64", "f": "float64", "n": {"type": "decimal", "precision": 10, "scale": 2},
          "s": "string", "d": "date", "ts": {"type": "timestamp"}, "b": "bool", "tm": "time",
          "l": {"type": "list", "element": "int64"}}
VIEW = SchemaView.from_schemas("acme", {"t": {"type": "struct", "fields": [
    {"name": name, "type": kind} for name, kind in STORED.items()]}})
OPERANDS = [*STORED, "5", "5.5", "'5'", "3000000000", "DATE '2020-01-01'",
            "TIMESTAMP '2020-01-01 10:00:00'", "INTERVAL 1 DAY", "NULL", "true",
            "CAST(3 AS INTEGER)"]
OPERATORS = ["=", "<>", "<", ">=", "+", "-", "*", "/", "%", "||", "IS DISTINCT FROM"]
FUNCTIONS = ["sum({})", "avg({})", "min({})", "max({})", "count({})", "stddev({})"]


def _corpus() -> list[str]:
    pairs = [f"{a} {op} {b}" for a, b in itertools.product(OPERANDS, repeat=2)
             if a in STORED or b in STORED for op in OPERATORS]
    return pairs + [f.format(c) for f in FUNCTIONS for c in STORED]


def _duckdb() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    columns = ", ".join(f"{name} {sql_type(kind)}" for name, kind in STORED.items())
    con.execute(f"CREATE TABLE t ({columns})")
    return con


def _checker_refuses(expression: str) -> bool:
    try:
        interpret(f"SELECT {expression} AS x FROM t", None, VIEW)  # noqa: S608 - a test corpus
    except LakehouseError as exc:
        problems = exc.details.get("problems") or []
        return any(p.get("code") == "type_mismatch" for p in problems)
    return False


def _duckdb_refuses(con: duckdb.DuckDBPyConnection, expression: str) -> bool:
    try:
        con.execute(f"EXPLAIN SELECT {expression} AS x FROM t")  # noqa: S608 - a test corpus
    except duckdb.Error:
        return True
    return False


def test_the_checker_refuses_nothing_duckdb_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    con = _duckdb()
    wrong, let_through, agreed = [], 0, 0
    for expression in _corpus():
        ours, theirs = _checker_refuses(expression), _duckdb_refuses(con, expression)
        if ours and not theirs:
            wrong.append(expression)
        elif theirs and not ours:
            let_through += 1
        else:
            agreed += 1
    with capsys.disabled():
        print(f"\ntype checker vs DuckDB's binder: {agreed} agree, {let_through} left to DuckDB "
              f"(refused when run), {len(wrong)} refused wrongly")
    assert wrong == []


@pytest.mark.parametrize("expression", [
    "d + 5", "5 + d", "d - 5", "d + CAST(3 AS INTEGER)", "s = 5", "s <> i", "s = f", "ts = 5",
    "d = '2020-01-01'", "i + '5'", "d - d", "ts - ts", "d + INTERVAL 1 DAY", "s || i",
])
def test_what_duckdb_accepts_is_accepted(expression: str) -> None:
    assert not _duckdb_refuses(_duckdb(), expression)
    assert not _checker_refuses(expression)


@pytest.mark.parametrize("expression", [
    "s > 5", "s < i", "ts > 5", "d < 5", "s + 1", "s - i", "sum(s)", "avg(s)",
])
def test_what_both_refuse_is_refused_before_it_runs(expression: str) -> None:
    assert _duckdb_refuses(_duckdb(), expression)
    assert _checker_refuses(expression)
