"""One contract, every TableDeclarations implementation: in-memory and the SQL catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.catalog.declarations import (
    MemoryDeclarations,
    SqlDeclarations,
    TableDeclarations,
)
from lakehouse.catalog.engine import catalog_engine
from lakehouse.errors import Conflict
from lakehouse.schema.declared import parse_declaration

SPEC = {"table": "people", "columns": {"name": "string", "age": "int64",
                                       "tags": {"list": "string"},
                                       "address": {"struct": {"city": "string"}}},
        "required": ["name"], "partition_by": "name", "sort_key": ["age"],
        "checks": [{"column": "age", "check": "ge", "value": 0},
                   {"column": "name", "check": "isin", "value": ["a", "b"]}]}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TableDeclarations]:
    if request.param == "memory":
        yield MemoryDeclarations()
        return
    engine = catalog_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield SqlDeclarations(engine)
    engine.dispose()


def test_declare_get_list(store: TableDeclarations) -> None:
    table = parse_declaration(SPEC)
    store.declare("acme", table)
    store.declare("globex", table)
    assert store.get("acme", "people") == table
    assert store.get("acme", "other") is None
    assert store.get("initech", "people") is None
    assert [t for t, _ in store.list(None)] == ["acme", "globex"]
    assert [d.name for _, d in store.list("acme")] == ["people"]
    with pytest.raises(Conflict):
        store.declare("acme", table)
