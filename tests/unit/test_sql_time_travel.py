"""AT (VERSION => N): one snapshot per query, the clauses taken out, other forms refused."""

from __future__ import annotations

import pytest

from lakehouse.errors import LakehouseError
from lakehouse.sql.interpret import interpret, validate
from lakehouse.sql.parse import parse_query
from lakehouse.sql.time_travel import pinned_snapshot
from tests.unit.sql_cases import acme_view


@pytest.mark.parametrize(("sql", "snapshot"), [
    ("SELECT * FROM orders", None),
    ("SELECT * FROM orders AT (VERSION => 7)", 7),
    ("SELECT * FROM orders AT (VERSION => 7) AS o", 7),
    ("SELECT count(*) FROM orders AT (VERSION => 2) o JOIN customers c ON o.id = c.id", 2),
    ("SELECT * FROM orders AT (VERSION => 3) WHERE id IN (SELECT id FROM orders AT "
     "(VERSION => 3))", 3),
    ("WITH o AS (SELECT * FROM orders AT (VERSION => 4)) SELECT * FROM o", 4),
])
def test_the_snapshot_a_query_names(sql: str, snapshot: int | None) -> None:
    tree, _ = parse_query(sql)
    pinned = pinned_snapshot(tree)
    assert pinned.snapshot == snapshot
    assert "VERSION" not in pinned.tree.sql()
    assert parse_query(sql)[0] == tree  # the caller's tree is left as it was


def test_the_interpreter_accepts_the_clause_and_says_which_snapshot() -> None:
    found = interpret("SELECT city FROM orders AT (VERSION => 5)", None, acme_view())
    assert found.snapshot == 5 and "VERSION" not in found.sql
    assert found.to_json()["snapshot"] == 5
    assert validate("SELECT city FROM orders AT (VERSION => 5)", None, acme_view()) == []


@pytest.mark.parametrize(("sql", "code", "status"), [
    ("SELECT * FROM orders AT (VERSION => 1) a, orders AT (VERSION => 2) b",
     "conflicting_snapshots", 400),
    ("SELECT * FROM orders AT (TIMESTAMP => '2026-01-01'::TIMESTAMP)",
     "unsupported_time_travel", 400),
    ("SELECT * FROM orders AT (OFFSET => -60)", "unsupported_time_travel", 400),
    ("SELECT * FROM orders BEFORE (VERSION => 1)", "unsupported_time_travel", 400),
    ("SELECT * FROM orders AT (VERSION => 0)", "unsupported_time_travel", 400),
    ("SELECT * FROM orders AT (VERSION => 1.5)", "unsupported_time_travel", 400),
    ("SELECT * FROM orders AT (VERSION => (SELECT 1))", "unsupported_time_travel", 400),
    ("SELECT * FROM orders FOR SYSTEM_TIME AS OF '2026-01-01'", "unsupported_time_travel",
     400),
])
def test_other_forms_are_refused_with_what_to_write(sql: str, code: str, status: int) -> None:
    with pytest.raises(LakehouseError) as refused:
        pinned_snapshot(parse_query(sql, "snowflake")[0])
    assert (refused.value.code, refused.value.http_status) == (code, status)
    problems = validate(sql, "snowflake", acme_view())
    assert [p.code for p in problems] == [code]
    assert problems[0].line == 1 and problems[0].column is not None
