"""A real PostgreSQL server for the contract suites (tests/postgres.py): one per test session,
and the stores of each kind on an empty catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine

from lakehouse.catalog.engine import catalog_engine
from lakehouse.catalog.schema import metadata
from tests.postgres import PostgresServer, running_postgres

T = TypeVar("T")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


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


