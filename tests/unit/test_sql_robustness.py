"""Mangled queries — every prefix, suffix and one-word deletion of the test queries — are
answered or refused with a 4xx by the interpreter; nothing else escapes it."""

from __future__ import annotations

import pytest

from lakehouse.errors import LakehouseError
from lakehouse.sql.interpret import interpret, validate
from tests.unit.sql_cases import ACCEPTED, HOSTILE, acme_view
from tests.unit.test_sql_plan import QUERIES


def _variants(text: str) -> set[str]:
    words = text.split(" ")
    return ({" ".join(words[:i]) for i in range(1, len(words))}
            | {" ".join(words[i:]) for i in range(1, len(words))}
            | {" ".join(words[:i] + words[i + 1:]) for i in range(len(words))})


SOURCES = [*ACCEPTED, *((d, q) for d, q, _ in HOSTILE), *(("duckdb", q) for q in QUERIES)]


@pytest.mark.parametrize(("dialect", "sql"), SOURCES)
def test_mangled_queries_never_escape(dialect: str, sql: str) -> None:
    view = acme_view()
    for text in sorted(_variants(sql)):
        try:
            interpret(text, dialect, view).plan(view)
        except LakehouseError as exc:
            assert 400 <= exc.http_status < 500, (text, exc.to_body())
        problems = validate(text, dialect, view)
        assert all(p.code for p in problems)
