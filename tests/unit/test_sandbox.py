"""The DuckDB sandbox: a query sees exactly its relations, even in a database reused from an
earlier query, and cannot reach files or change the configuration."""

from __future__ import annotations

import contextlib
import threading
import time

import duckdb
import pyarrow as pa
import pytest

from lakehouse.errors import InvalidInput
from lakehouse.executor import sandbox as sandbox_module
from lakehouse.executor.sandbox import Sandbox, run_sql


def _rows(n: int) -> pa.Table:
    return pa.table({"x": list(range(n))})


@pytest.fixture(autouse=True)
def pool(monkeypatch: pytest.MonkeyPatch) -> sandbox_module._Pool:
    fresh = sandbox_module._Pool()
    monkeypatch.setattr(sandbox_module, "_POOL", fresh)
    return fresh


def test_a_reused_database_holds_nothing_of_the_query_before() -> None:
    with Sandbox({"tenant_a.t": _rows(3)}, threads=1) as first:
        assert first.run('SELECT sum(x) AS s FROM "tenant_a"."t"').to_pylist() == [{"s": 3}]
        database = first._con
    with Sandbox({"tenant_b.u": _rows(2)}, threads=1) as second:
        assert second._con is database
        for stolen in ('SELECT * FROM "tenant_a"."t"',
                       "SELECT * FROM duckdb_views() WHERE schema_name = 'tenant_a'"):
            with contextlib.suppress(InvalidInput):
                assert second.run(stolen).num_rows == 0
        schemas = second.run("SELECT schema_name FROM duckdb_schemas() WHERE NOT internal")
        assert set(schemas.column("schema_name").to_pylist()) <= {"main", "tenant_b"}


def test_the_configuration_stays_locked_and_files_out_of_reach() -> None:
    run_sql({"tenant_a.t": _rows(1)}, 'SELECT * FROM "tenant_a"."t"', threads=1)
    with Sandbox({"tenant_a.t": _rows(1)}, threads=1) as reused, pytest.raises(InvalidInput):
        reused.run("SELECT * FROM read_csv('/etc/passwd')")
    with Sandbox({}, threads=1) as again:
        with pytest.raises(InvalidInput):
            again.run("SET enable_external_access = true")
        flag = again.run("SELECT current_setting('enable_external_access') AS on")
        assert flag.to_pylist() == [{"on": False}]


def test_a_failed_query_does_not_return_its_database(pool: sandbox_module._Pool) -> None:
    with Sandbox({"t": _rows(1)}, threads=1) as failing, pytest.raises(InvalidInput):
        failing.run("SELECT x / 0 :: INTEGER FROM t WHERE error('boom') IS NULL")
    assert pool._idle.get(1, []) == []
    with Sandbox({"t": _rows(1)}, threads=1) as fine:
        fine.run("SELECT * FROM t")
    assert len(pool._idle[1]) == 1


def test_interrupt_after_close_does_not_reach_the_next_query() -> None:
    first = Sandbox({"t": _rows(1)}, threads=1)
    first.run("SELECT * FROM t")
    first.close()
    with Sandbox({"t": _rows(10)}, threads=1) as second:
        first.interrupt()  # a late cancel of the finished query
        assert second.run("SELECT count(*) AS n FROM t").to_pylist() == [{"n": 10}]


def test_interrupt_stops_a_running_query() -> None:
    with Sandbox({"t": _rows(1)}, threads=1) as slow:
        timer = threading.Timer(0.2, slow.interrupt)
        timer.start()
        started = time.monotonic()
        with pytest.raises(duckdb.InterruptException):
            slow.run("SELECT count(*) FROM range(1000000000000) a")
        assert time.monotonic() - started < 5
