"""One contract, every TableOptionsStore implementation: memory, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.catalog.options import DAY_S, NO_OPTIONS, TableOptions
from lakehouse.catalog.table_options import (
    MemoryTableOptions,
    SqlTableOptions,
    TableOptionsStore,
)
from tests.contract.conftest import each_store


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TableOptionsStore]:
    yield from each_store(request, tmp_path, MemoryTableOptions, SqlTableOptions)


def test_put_get_all_replace_and_clear(store: TableOptionsStore) -> None:
    week = TableOptions(retention_s=7 * DAY_S, min_files=8)
    assert store.get("acme", "events") == NO_OPTIONS
    store.put("acme", "events", week)
    store.put("globex", "events", TableOptions(target_file_bytes=1 << 20))
    assert store.get("acme", "events") == week
    assert store.get("acme", "other") == NO_OPTIONS
    assert set(store.all()) == {("acme", "events"), ("globex", "events")}
    store.put("acme", "events", TableOptions(retention_s=DAY_S))
    assert store.get("acme", "events") == TableOptions(retention_s=DAY_S)
    store.put("acme", "events", NO_OPTIONS)
    assert store.get("acme", "events") == NO_OPTIONS
    assert set(store.all()) == {("globex", "events")}
