"""The ClickHouse serving store through clickhouse-connect: `chdb:///path` runs the real
ClickHouse engine in this process (chDB), `http(s)://host:8123` talks to a server. One class
serves both: clickhouse-connect gives them one client API.

chDB holds one data folder per process, and one process per folder (it locks it): `open_store`
keeps one connection per DSN for the process and refuses a second embedded folder with a clear
error; each store on it is bound to a database prefix (CLICKHOUSE_DATABASE_PREFIX).

Reads run with `readonly=1` (no INSERT, DDL, settings or table functions); that does not
stop the scalar `file()` function or `INTO OUTFILE`, so reads only ever run SQL the platform
wrote from a guarded query (lakehouse/serving/dialect.py refuses any function it does not
know, and checks what it wrote).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlsplit

import pyarrow as pa
from sqlglot import exp

from lakehouse.errors import ConfigurationError, Unavailable
from lakehouse.serving.columns import (
    DEFAULT_PREFIX,
    create_table,
    database_of,
    mirror_type,
    quote,
)
from lakehouse.serving.dialect import DIALECT, READ_SETTINGS, MirrorView, visible

# The reader's settings are fixed when it opens, `readonly=1` last: from then on no query can
# change a setting, insert, make or drop a table, or call a table function (`readonly=2`
# would allow `file()` and `url()` as tables).


class ServingStore(Protocol):
    def database(self, tenant: str) -> str:
        """The tenant's own database (its name unquoted)."""

    def ensure_table(self, tenant: str, table: str, schema: pa.Schema) -> None:
        """The tenant's database and the table's mirror, made if missing."""

    def insert(self, tenant: str, table: str, rows: pa.Table, token: str) -> None:
        """Add `rows`; an insert with a token seen before adds nothing (exactly once)."""

    def read(self, sql: str, wait_s: float | None = None,
             parameters: Mapping[str, object] | None = None) -> pa.Table:
        """A read-only query's rows (`parameters`: the values of its `{name:Type}`s);
        StoreBusy when the store is still busy with other calls after `wait_s` (None: wait)."""

    def count(self, tenant: str, table: str, view: MirrorView) -> int:
        """The rows a query sees through `view`, 0 with no mirror."""

    def held_files(self, tenant: str, table: str) -> frozenset[int]:
        """The ids of the files whose rows the mirror holds (none: no mirror)."""

    def delete_files(self, tenant: str, table: str, file_ids: Sequence[int]) -> None:
        """Delete the rows of those files (replaced ones no query reads any more)."""

    def tables(self, tenant: str) -> list[str]: ...

    def columns(self, tenant: str, table: str) -> dict[str, str]:
        """The mirror's columns and their ClickHouse types (empty: no mirror)."""

    def add_column(self, tenant: str, table: str, field: pa.Field) -> None: ...

    def set_retention(self, tenant: str, table: str, seconds: float | None) -> None:
        """Rows older than `seconds` are removed as ClickHouse merges (a TTL; queries filter
        them at once); None: kept."""

    def drop_table(self, tenant: str, table: str) -> None: ...


DROPS_AT_ONCE = 500


class StoreBusy(Exception):
    """The store's one engine stayed busy with other calls for as long as a caller waits."""


class Connection:
    """`writer` makes tables and inserts; `reader` answers queries and is read-only for good
    (a client of its own: `readonly` set on a session cannot be taken back there)."""

    def __init__(self, writer: Any, reader: Any) -> None:
        self.writer = writer
        self.reader = reader
        self.lock = threading.Lock()  # chDB's embedded sessions share one engine


class ClickHouseStore:
    def __init__(self, connection: Connection, prefix: str = DEFAULT_PREFIX) -> None:
        self._connection = connection
        self._client = connection.writer
        self._reader = connection.reader
        self.prefix = prefix

    def _run(self, call: Callable[[], Any]) -> Any:
        with self._connection.lock:
            return call()

    def _read(self, call: Callable[[], Any], wait_s: float | None = None) -> Any:
        """A call of the reader. chDB hands what was left of a query that failed midway (an
        overflow, a time limit) to the next Arrow answer, which then fails ("Invalid
        flatbuffers message"): a throwaway query takes it, so the next caller's does not."""
        lock = self._connection.lock
        if not lock.acquire(timeout=-1 if wait_s is None else max(0.0, wait_s)):
            raise StoreBusy(f"the serving store was busy for {wait_s:g} s")
        try:
            return call()
        except Exception:
            with contextlib.suppress(Exception):
                self._reader.query_arrow("SELECT 1")
            raise
        finally:
            lock.release()

    def database(self, tenant: str) -> str:
        return database_of(tenant, self.prefix)

    def _target(self, tenant: str, table: str) -> str:
        return f"{quote(self.database(tenant), database=True)}.{quote(table)}"

    def ensure_table(self, tenant: str, table: str, schema: pa.Schema) -> None:
        ddl = create_table(self.database(tenant), table, schema)
        self._run(lambda: self._client.command(
            f"CREATE DATABASE IF NOT EXISTS {quote(self.database(tenant), database=True)}"))
        self._run(lambda: self._client.command(ddl))

    def insert(self, tenant: str, table: str, rows: pa.Table, token: str) -> None:
        target = self._target(tenant, table)
        self._run(lambda: self._client.insert_arrow(
            target, rows, settings={"insert_deduplication_token": token}))

    def read(self, sql: str, wait_s: float | None = None,
             parameters: Mapping[str, object] | None = None) -> pa.Table:
        found: pa.Table = self._read(lambda: self._reader.query_arrow(
            sql, parameters=dict(parameters or {})), wait_s)
        return found

    def count(self, tenant: str, table: str, view: MirrorView) -> int:
        if table not in self.tables(tenant):
            return 0
        rows = visible(self.database(tenant), table, view).subquery("v")
        found = self.read(exp.select("count() AS n").from_(rows).sql(dialect=DIALECT),
                          parameters={"files": list(view.files)})
        return int(found.column("n")[0].as_py())

    def held_files(self, tenant: str, table: str) -> frozenset[int]:
        # A file is a partition (lakehouse/serving/columns.py): no row is read.
        found = self._read(lambda: self._reader.query(
            "SELECT DISTINCT partition_id FROM system.parts WHERE database = {db:String} AND "
            "table = {table:String} AND active",
            parameters={"db": self.database(tenant), "table": table}))
        return frozenset(int(row[0]) for row in found.result_rows)

    def delete_files(self, tenant: str, table: str, file_ids: Sequence[int]) -> None:
        if not file_ids:
            return
        target = self._target(tenant, table)
        ids = [int(f) for f in file_ids]
        for start in range(0, len(ids), DROPS_AT_ONCE):  # (a statement's size is bounded)
            drops = ", ".join(f"DROP PARTITION ID '{f}'"
                              for f in ids[start:start + DROPS_AT_ONCE])
            self._run(partial(self._client.command, f"ALTER TABLE {target} {drops}"))

    def tables(self, tenant: str) -> list[str]:
        found = self._read(lambda: self._reader.query(
            "SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name",
            parameters={"db": self.database(tenant)}))
        return [row[0] for row in found.result_rows]

    def columns(self, tenant: str, table: str) -> dict[str, str]:
        found = self._read(lambda: self._reader.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} AND "
            "table = {table:String}", parameters={"db": self.database(tenant), "table": table}))
        return {str(name): str(kind) for name, kind in found.result_rows}

    def add_column(self, tenant: str, table: str, field: pa.Field) -> None:
        target = self._target(tenant, table)
        self._run(lambda: self._client.command(
            f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {quote(field.name)} "
            f"{mirror_type(field)}"))

    def set_retention(self, tenant: str, table: str, seconds: float | None) -> None:
        found = self._read(lambda: self._reader.query(
            "SELECT engine_full FROM system.tables WHERE database = {db:String} AND "
            "name = {table:String}", parameters={"db": self.database(tenant), "table": table}))
        if not found.result_rows:
            return  # no mirror yet: the backfill sets it at its end
        has_ttl = " TTL " in f" {found.result_rows[0][0]} "
        if seconds is None and not has_ttl:
            return  # ClickHouse refuses to remove a TTL a table does not have
        target = self._target(tenant, table)
        # Upserts stay: one older than the version it replaced (a record's own timestamp) still
        # hides that version, as in our scans; queries filter expired rows anyway.
        change = ("REMOVE TTL" if seconds is None else
                  f"MODIFY TTL `_timestamp` + INTERVAL {max(1, int(seconds))} SECOND "
                  "WHERE NOT ifNull(`_upsert`, false)")
        self._run(lambda: self._client.command(f"ALTER TABLE {target} {change}"))

    def drop_table(self, tenant: str, table: str) -> None:
        self._run(lambda: self._client.command(
            f"DROP TABLE IF EXISTS {self._target(tenant, table)}"))


_connections: dict[str, Connection] = {}
_opening = threading.Lock()


def open_store(dsn: str, prefix: str = DEFAULT_PREFIX,
               limits: Mapping[str, int | str] | None = None) -> ClickHouseStore:
    """The store `dsn` names with databases `{prefix}{tenant}` (one connection per DSN in this
    process). Every read runs with the route's semantics (READ_SETTINGS) and `limits` (a
    query's time, memory and threads; the first opening's count)."""
    return ClickHouseStore(_connection(dsn, {**(limits or {}), **READ_SETTINGS}), prefix)


def _connection(dsn: str, read_settings: Mapping[str, int | str]) -> Connection:
    scheme = urlsplit(dsn).scheme
    if scheme not in ("chdb", "http", "https"):
        raise ConfigurationError(f"CLICKHOUSE_DSN {dsn!r}: chdb:///path (embedded) or "
                                 "http(s)://host:8123 (a server)")
    with _opening:
        found = _connections.get(dsn)
        if found is not None:
            return found
        embedded = [d for d in _connections if d.startswith("chdb:")]
        if scheme == "chdb" and embedded:
            raise ConfigurationError(
                f"CLICKHOUSE_DSN {dsn!r}: this process already holds the embedded store "
                f"{embedded[0]!r}, and chDB opens one folder per process; services in "
                "separate processes share a ClickHouse server (http://host:8123)")
        import clickhouse_connect  # heavy: only where the store is used

        try:
            writer = clickhouse_connect.get_client(dsn=dsn)
            # (Settings are applied in order: `readonly` must come last.)
            reader = clickhouse_connect.get_client(
                dsn=dsn, settings={**read_settings, "readonly": 1})
        except Exception as exc:
            raise Unavailable(f"the ClickHouse store at {_safe(dsn)} cannot be opened: "
                              f"{type(exc).__name__}: {exc}"[:500],
                              code="clickhouse_unavailable") from exc
        found = _connections[dsn] = Connection(writer, reader)
        return found


def _safe(dsn: str) -> str:
    parts = urlsplit(dsn)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
