"""DuckDB over Arrow, with nothing else to reach: the relations a query may read, and no more.

Each query gets a fresh in-memory connection. External access is off (no files, URLs, ATTACH,
COPY or extension installs), Python replacement scans are off (a name cannot find a variable of
this process), and the configuration is locked before the query's own SQL runs. The relations
are registered under random names and exposed as views `"<schema>"."<table>"` — the names
lakehouse/sql/bind.py gives every table — so the tenant schema holds exactly what was scanned.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping

import duckdb
import pyarrow as pa

from lakehouse.errors import InvalidInput


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Sandbox:
    def __init__(self, relations: Mapping[str, pa.Table], threads: int = 2) -> None:
        self._con = duckdb.connect(config={
            "enable_external_access": False, "autoinstall_known_extensions": False,
            "autoload_known_extensions": False, "threads": max(1, threads)})
        self._lock = threading.Lock()
        self._con.execute("SET python_enable_replacements = false")
        schemas: set[str] = set()
        for relation, rows in relations.items():
            schema, _, table = relation.rpartition(".")
            hidden = f"r_{uuid.uuid4().hex}"
            self._con.register(hidden, rows)
            if schema and schema not in schemas:
                self._con.execute(f"CREATE SCHEMA {_quote(schema)}")
                schemas.add(schema)
            target = f"{_quote(schema)}.{_quote(table)}" if schema else _quote(table)
            self._con.execute(f"CREATE VIEW {target} AS SELECT * FROM {hidden}")  # noqa: S608
        self._con.execute("SET lock_configuration = true")

    def run(self, sql: str) -> pa.Table:
        with self._lock:
            try:
                relation = self._con.sql(sql)
                if relation is None:
                    raise InvalidInput("only queries that return rows run here",
                                       code="query_failed")
                return relation.to_arrow_table()
            except duckdb.InterruptException:
                raise
            except duckdb.Error as exc:  # the query's own fault: a bad cast, a division by 0
                raise InvalidInput(f"the query cannot run: {str(exc).splitlines()[0][:300]}",
                                   code="query_failed",
                                   details={"error": type(exc).__name__}) from exc

    def interrupt(self) -> None:
        self._con.interrupt()

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def run_sql(relations: Mapping[str, pa.Table], sql: str, threads: int = 2) -> pa.Table:
    """`sql` over `relations` in a fresh sandbox (what a fragment on a worker runs)."""
    with Sandbox(relations, threads) as sandbox:
        return sandbox.run(sql)
