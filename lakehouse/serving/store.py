"""The ClickHouse serving store through clickhouse-connect: `chdb:///path` runs the real
ClickHouse engine in this process (chDB), `http(s)://host:8123` talks to a server. One class
serves both: clickhouse-connect gives them one client API.

chDB holds one data folder per process, and one process per folder (it locks it): `open_store`
keeps one store per DSN for the process and refuses a second embedded folder with a clear
error. Reads run with `readonly=1` (no INSERT, DDL, settings, or the `file`, `url`, `s3`,
`remote` table functions); they only ever see SQL the platform wrote from a guarded query.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

import pyarrow as pa

from lakehouse.errors import ConfigurationError, Unavailable
from lakehouse.serving.columns import create_table, database_of, quote

READ_SETTINGS = {"readonly": 1}


class ServingStore(Protocol):
    def ensure_table(self, tenant: str, table: str, schema: pa.Schema) -> None:
        """The tenant's database and the table's mirror, made if missing."""

    def insert(self, tenant: str, table: str, rows: pa.Table, token: str) -> None:
        """Add `rows`; an insert with a token seen before adds nothing (exactly once)."""

    def read(self, sql: str) -> pa.Table:
        """A read-only query's rows."""

    def count(self, tenant: str, table: str) -> int:
        """The rows a query sees (upserts folded), 0 with no mirror."""

    def tables(self, tenant: str) -> list[str]: ...

    def drop_table(self, tenant: str, table: str) -> None: ...


class ClickHouseStore:
    """`writer` makes tables and inserts; `reader` answers queries and is read-only for good
    (a client of its own: `readonly` set on a session cannot be taken back there)."""

    def __init__(self, writer: Any, reader: Any) -> None:
        self._client = writer
        self._reader = reader
        self._lock = threading.Lock()  # chDB's embedded sessions share one engine

    def _run(self, call: Callable[[], Any]) -> Any:
        with self._lock:
            return call()

    def ensure_table(self, tenant: str, table: str, schema: pa.Schema) -> None:
        ddl = create_table(tenant, table, schema)
        self._run(lambda: self._client.command(
            f"CREATE DATABASE IF NOT EXISTS {quote(database_of(tenant))}"))
        self._run(lambda: self._client.command(ddl))

    def insert(self, tenant: str, table: str, rows: pa.Table, token: str) -> None:
        target = f"{quote(database_of(tenant))}.{quote(table)}"
        self._run(lambda: self._client.insert_arrow(
            target, rows, settings={"insert_deduplication_token": token}))

    def read(self, sql: str) -> pa.Table:
        found: pa.Table = self._run(lambda: self._reader.query_arrow(sql))
        return found

    def count(self, tenant: str, table: str) -> int:
        if table not in self.tables(tenant):
            return 0
        found = self.read(f"SELECT count() AS n FROM {quote(database_of(tenant))}."  # noqa: S608
                          f"{quote(table)} FINAL")
        return int(found.column("n")[0].as_py())

    def tables(self, tenant: str) -> list[str]:
        found = self._run(lambda: self._reader.query(
            "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name",
            parameters={"db": database_of(tenant)}))
        return [row[0] for row in found.result_rows]

    def drop_table(self, tenant: str, table: str) -> None:
        self._run(lambda: self._client.command(
            f"DROP TABLE IF EXISTS {quote(database_of(tenant))}.{quote(table)}"))


_stores: dict[str, ClickHouseStore] = {}
_opening = threading.Lock()


def open_store(dsn: str) -> ClickHouseStore:
    """The store `dsn` names, one per DSN in this process."""
    scheme = urlsplit(dsn).scheme
    if scheme not in ("chdb", "http", "https"):
        raise ConfigurationError(f"CLICKHOUSE_DSN {dsn!r}: chdb:///path (embedded) or "
                                 "http(s)://host:8123 (a server)")
    with _opening:
        found = _stores.get(dsn)
        if found is not None:
            return found
        embedded = [d for d in _stores if d.startswith("chdb:")]
        if scheme == "chdb" and embedded:
            raise ConfigurationError(
                f"CLICKHOUSE_DSN {dsn!r}: this process already holds the embedded store "
                f"{embedded[0]!r}, and chDB opens one folder per process")
        import clickhouse_connect  # heavy: only where the store is used

        try:
            writer = clickhouse_connect.get_client(dsn=dsn)
            reader = clickhouse_connect.get_client(dsn=dsn, settings=READ_SETTINGS)
        except Exception as exc:
            raise Unavailable(f"the ClickHouse store at {_safe(dsn)} cannot be opened: "
                              f"{type(exc).__name__}: {exc}"[:500],
                              code="clickhouse_unavailable") from exc
        found = _stores[dsn] = ClickHouseStore(writer, reader)
        return found


def _safe(dsn: str) -> str:
    parts = urlsplit(dsn)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
