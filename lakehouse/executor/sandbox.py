"""DuckDB over Arrow, with nothing else to reach: the relations a query may read, and no more.

Each query gets an in-memory database of its own for as long as it runs. External access is off
(no files, URLs, ATTACH, COPY or extension installs), Python replacement scans are off (a name
cannot find a variable of this process), and the configuration is locked before any query's SQL
runs. The relations are registered under random names and exposed as views
`"<schema>"."<table>"` — the names lakehouse/sql/bind.py gives every table — so the tenant
schema holds exactly what was scanned.

A relation may also be a view over its Parquet files that DuckDB reads itself
(lakehouse/executor/file_views.py): the database is then opened with external access on, told
the exact paths it may open (`allowed_paths`), and only then has external access turned off and
its configuration locked, before any of the query's SQL runs; other paths, globs, `glob()` and
settings are refused from then on.

Opening a database costs 35–60 ms (DuckDB builds its catalog of functions), more than a small
query takes, so finished databases are kept for the next query: its views, schemas and
registrations are dropped first, and a database whose query failed or was interrupted is closed
instead. A database allowed some files is kept for a query reading the same files (a repeated
query at the same snapshot); databases not yet locked are opened ahead, off the query's path.
Only read-only queries reach a sandbox (lakehouse/sql/guard.py), so a query cannot leave state
behind that the reset misses; the locked configuration stays locked for every later query.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

from lakehouse.errors import InvalidInput
from lakehouse.executor.arrow_names import as_duckdb_names
from lakehouse.executor.file_views import FileView, view_sql
from lakehouse.sql.scrub import scrub

log = logging.getLogger(__name__)

IDLE_PER_THREADS = 4  # kept databases per thread count: about the queries running at once
FILE_SETS_KEPT = 8  # databases kept for a set of files (a repeated query), all sets together
OPENED_AHEAD = 2  # unlocked databases ready to be allowed a query's files
# Memory one database may use (QUERY_MEMORY_LIMIT_MB; 0: DuckDB's default, 80% of the machine).
# Each query's database is its own, so this bounds a query (a fragment, on a worker), and a
# query over it fails with DuckDB's out-of-memory error instead of taking the process down.
_memory_limit_mb = 0


def set_memory_limit(mb: int) -> None:
    """The memory limit of the databases opened from now on (kept ones are closed)."""
    global _memory_limit_mb  # noqa: PLW0603 - a process setting, read when a database opens
    _memory_limit_mb = max(0, int(mb))
    _POOL.clear()
    _PLANNING.clear()
    _FILES.clear()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def locked_connection(threads: int) -> duckdb.DuckDBPyConnection:
    """A new in-memory database that reaches nothing outside itself: no files or URLs, no
    extension installed or loaded on demand, no Python variable as a table; its memory bounded
    (QUERY_MEMORY_LIMIT_MB); its configuration locked, so no SQL run on it can turn any of that
    back on. Every DuckDB the platform runs a caller's SQL (or a constant from it) on is one of
    these."""
    config: dict[str, Any] = {
        "enable_external_access": False, "autoinstall_known_extensions": False,
        "autoload_known_extensions": False, "threads": threads}
    if _memory_limit_mb:
        config["memory_limit"] = f"{_memory_limit_mb}MB"
    con = duckdb.connect(config=config)
    con.execute("SET python_enable_replacements = false")
    con.execute("SET lock_configuration = true")
    return con


def _unlocked() -> duckdb.DuckDBPyConnection:
    """A database that still may open files: never given SQL before `allowing` locks it."""
    return duckdb.connect(config={"autoinstall_known_extensions": False,
                                  "autoload_known_extensions": False, "threads": 1})


def allowing(con: duckdb.DuckDBPyConnection, threads: int,
             paths: Sequence[str]) -> duckdb.DuckDBPyConnection:
    """`con` (from `_unlocked`) locked as `locked_connection` is, except that it may read
    `paths`, exactly those: allowed first, then external access off, then the lock."""
    con.execute(f"SET threads = {int(threads)}")
    if _memory_limit_mb:
        con.execute(f"SET memory_limit = '{int(_memory_limit_mb)}MB'")
    listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
    con.execute(f"SET allowed_paths = [{listed}]")
    # Kept for the next query of the same files: their footers need not be read again (DuckDB
    # checks a file's modification time before it trusts what it kept).
    con.execute("SET parquet_metadata_cache = true")
    con.execute("SET enable_external_access = false")
    con.execute("SET python_enable_replacements = false")
    con.execute("SET lock_configuration = true")
    return con


class _Ahead:
    """Unlocked databases opened in the background, so a query reading files does not wait
    the 35–60 ms an opening takes."""

    def __init__(self, keep: int) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._ready: list[duckdb.DuckDBPyConnection] = []
        self._filling = False

    def take(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            con = self._ready.pop() if self._ready else None
            start = not self._filling
            self._filling = True
        if start:
            threading.Thread(target=self._fill, name="duckdb-ahead", daemon=True).start()
        return con if con is not None else _unlocked()

    def _fill(self) -> None:
        try:
            while True:
                with self._lock:
                    if len(self._ready) >= self._keep:
                        return
                con = _unlocked()
                with self._lock:
                    self._ready.append(con)
        except Exception:  # out of memory or shutting down: queries open their own
            log.debug("cannot open a database ahead", exc_info=True)
        finally:
            with self._lock:
                self._filling = False


class _Pool:
    """Locked, empty databases ready for a query, per thread count (a setting of the database
    that a locked configuration cannot change), or per thread count and files allowed; at most
    `keys` of those keys are kept, the least recently used dropped."""

    def __init__(self, keys: int | None = None) -> None:
        self._lock = threading.Lock()
        self._idle: OrderedDict[Hashable, list[duckdb.DuckDBPyConnection]] = OrderedDict()
        self._keys = keys

    def take(self, threads: int) -> duckdb.DuckDBPyConnection:
        return self.kept(threads) or locked_connection(threads)

    def kept(self, key: Hashable) -> duckdb.DuckDBPyConnection | None:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
        return None

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, OrderedDict()
        for kept in idle.values():
            for con in kept:
                con.close()

    def give(self, key: Hashable, con: duckdb.DuckDBPyConnection) -> None:
        dropped: list[duckdb.DuckDBPyConnection] = []
        with self._lock:
            idle = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            kept = len(idle) < IDLE_PER_THREADS
            if kept:
                idle.append(con)
            while self._keys is not None and len(self._idle) > self._keys:
                dropped += self._idle.popitem(last=False)[1]
        for old in dropped if kept else [*dropped, con]:
            old.close()


_POOL = _Pool()
_PLANNING = _Pool()  # a query's sandboxes and the planner's never meet
_FILES = _Pool(keys=FILE_SETS_KEPT)  # (threads, files) → databases allowed those files
_AHEAD = _Ahead(OPENED_AHEAD)


def _files_connection(threads: int, paths: tuple[str, ...]) -> duckdb.DuckDBPyConnection:
    return _FILES.kept((threads, paths)) or allowing(_AHEAD.take(), threads, paths)


@contextmanager
def planning_database() -> Iterator[duckdb.DuckDBPyConnection]:
    """A locked database for planning (folding constants, naming outputs), this caller's
    alone until the block ends. Not DuckDB's module-wide default one: that is shared by every
    thread (two queries planning at once left each other "an unfinished result"), and it reads
    files, loads extensions and changes its settings on request. Locked as a query's sandbox is:
    constants come from the caller's SQL, so whatever the guard might miss in them meets the
    same fence as the query itself. Kept between uses: opening one costs more than planning a
    point query (a database per scan thread made such queries several times slower)."""
    con = _PLANNING.take(1)
    try:
        yield con
    except duckdb.Error as exc:
        # A refused constant leaves the database as it was; an internal or fatal error may
        # have broken it, and the next planner (any tenant's) must not get it.
        if _sound(con, exc):
            _PLANNING.give(1, con)
        else:
            con.close()
        raise
    except BaseException:
        con.close()  # interrupted midway: not trusted to be empty
        raise
    _PLANNING.give(1, con)


def _sound(con: duckdb.DuckDBPyConnection, error: duckdb.Error) -> bool:
    if isinstance(error, duckdb.FatalException | duckdb.InternalException):
        return False
    try:
        return con.execute("SELECT 1").fetchone() == (1,)
    except duckdb.Error:
        return False


# DuckDB types Arrow has no type for: exported as another (HUGEINT as decimal128(38, 0)), they
# would come back into the next step's sandbox as that type, and `sum(x) // 3` over a fragment's
# partial sums would divide a DECIMAL (a DOUBLE answer) where one node divides a HUGEINT. A
# result's field carries its DuckDB type in its metadata; a sandbox reading it casts it back.
_DUCKDB_TYPE = b"duckdb_type"
_NOT_IN_ARROW = frozenset({"HUGEINT", "UHUGEINT"})


def _marked(table: pa.Table, types: Sequence[Any]) -> pa.Table:
    lossy = {i: str(kind) for i, kind in enumerate(types) if str(kind) in _NOT_IN_ARROW}
    if not lossy:
        return table
    fields = [field.with_metadata({**(field.metadata or {}), _DUCKDB_TYPE: lossy[i].encode()})
              if i in lossy else field for i, field in enumerate(table.schema)]
    return pa.Table.from_arrays(table.columns, schema=pa.schema(fields, table.schema.metadata))


def _restored(rows: pa.Table, hidden: str) -> str:
    """The SELECT a relation's view runs: its rows, in their DuckDB types."""
    casts = [f"CAST({_quote(field.name)} AS {field.metadata[_DUCKDB_TYPE].decode()}) AS "
             f"{_quote(field.name)}" for field in rows.schema
             if field.metadata and field.metadata.get(_DUCKDB_TYPE, b"").decode() in _NOT_IN_ARROW]
    if not casts:
        return f"SELECT * FROM {hidden}"  # noqa: S608 - names made here
    return f"SELECT * REPLACE ({', '.join(casts)}) FROM {hidden}"  # noqa: S608


class Sandbox:
    def __init__(self, relations: Mapping[str, pa.Table | FileView], threads: int = 2, *,
                 schemas: Iterable[str] = ()) -> None:
        """`relations`: rows, or views over files DuckDB reads itself. `schemas`: the internal
        schemas the SQL names beyond those of `relations` (a relation the plan lost), kept out
        of error texts as theirs are."""
        self._threads = max(1, threads)
        paths = tuple(sorted({p for rows in relations.values() if isinstance(rows, FileView)
                              for p in rows.paths}))
        self._paths = paths
        self._key: Hashable = (self._threads, paths) if paths else self._threads
        self._pool = _FILES if paths else _POOL
        self._con = (_files_connection(self._threads, paths) if paths
                     else _POOL.take(self._threads))
        self._lock = threading.Lock()  # one statement at a time
        self._state = threading.Lock()  # interrupt and close never cross
        self._closed = False
        self._hidden: list[str] = []
        self._relations: dict[str, str] = {}  # hidden name → relation, to scrub error texts
        self._internal = [*schemas]
        self._schemas: list[str] = []
        self._views: list[str] = []
        self._reusable = True
        try:
            for relation, rows in relations.items():
                schema, _, table = relation.rpartition(".")
                if isinstance(rows, FileView):
                    select = view_sql(rows, self._register(rows.replaced, relation),
                                      self._register(rows.memory, relation))
                else:
                    select = _restored(rows, self._register(rows, relation) or "")
                if schema and schema not in self._schemas:
                    self._con.execute(f"CREATE SCHEMA {_quote(schema)}")
                    self._schemas.append(schema)
                target = f"{_quote(schema)}.{_quote(table)}" if schema else _quote(table)
                self._con.execute(f"CREATE VIEW {target} AS {select}")
                self._views.append(target)
        except BaseException:
            self._reusable = False
            self.close()
            raise

    def _register(self, rows: pa.Table | None, relation: str) -> str | None:
        """`rows` under a random name (None: no rows to register)."""
        if rows is None:
            return None
        hidden = f"r_{uuid.uuid4().hex}"
        self._con.register(hidden, rows)
        self._hidden.append(hidden)
        self._relations[hidden] = relation
        return hidden

    def run(self, sql: str) -> pa.Table:
        with self._lock:
            try:
                relation = self._con.sql(sql)
                if relation is None:
                    self._reusable = False
                    raise InvalidInput("only queries that return rows run here",
                                       code="query_failed")
                types = relation.types
                return _marked(as_duckdb_names(relation.to_arrow_table(), relation.columns,
                                               types), types)
            except duckdb.InterruptException:
                self._reusable = False
                raise
            except duckdb.Error as exc:  # the query's own fault: a bad cast, a division by 0
                self._reusable = False
                message = scrub(_without_paths(str(exc), self._paths),
                                schemas=[*self._schemas, *self._internal],
                                relations=self._relations)
                kind = type(exc).__name__.removesuffix("Exception").lower() or "error"
                raise InvalidInput(f"the query cannot run: {message}", code="query_failed",
                                   details={"kind": kind}) from exc

    def interrupt(self) -> None:
        with self._state:
            # Once closed, the database may already serve another query: leave it alone.
            if not self._closed:
                self._reusable = False
                self._con.interrupt()

    def close(self) -> None:
        with self._state:
            if self._closed:
                return
            self._closed = True
            keep = self._reusable and self._reset()
        if keep:
            self._pool.give(self._key, self._con)
        else:
            self._con.close()

    def _reset(self) -> bool:
        """Empty the database for the next query; False if it cannot be trusted to be."""
        try:
            for view in self._views:
                self._con.execute(f"DROP VIEW {view}")
            for schema in self._schemas:
                self._con.execute(f"DROP SCHEMA {_quote(schema)}")
            for hidden in self._hidden:
                self._con.unregister(hidden)
        except duckdb.Error:
            log.warning("a sandbox could not be emptied; closing it", exc_info=True)
            return False
        return True

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _without_paths(text: str, paths: Sequence[str]) -> str:
    """Where the platform keeps files is not the caller's business: a data file is named as
    such."""
    for path in paths:
        text = text.replace(path, "a data file")
    return text


def run_sql(relations: Mapping[str, pa.Table | FileView], sql: str,
            threads: int = 2) -> pa.Table:
    """`sql` over `relations` in a sandbox (what a fragment on a worker runs)."""
    with Sandbox(relations, threads) as sandbox:
        return sandbox.run(sql)
