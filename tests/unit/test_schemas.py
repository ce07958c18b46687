"""What records are checked against: the schema cache (lakehouse/ingest/schemas.py) and the
declarations cache (lakehouse/ingest/declared_cache.py), on the in-memory WAL and declarations."""

from __future__ import annotations

import logging

import orjson
import pytest

from lakehouse.catalog.declarations import MemoryDeclarations
from lakehouse.ingest.declared_cache import DECLARATION_TTL_S, DeclaredCache
from lakehouse.ingest.keys import TableRef, schema_key
from lakehouse.ingest.schemas import SchemaCache
from lakehouse.ingest.state import TableState
from lakehouse.schema import FieldType, infer
from lakehouse.schema.declared import DeclaredTable
from lakehouse.wal.memory import MemoryWal

REF = TableRef("acme", "records")
LOGGED = infer({"a": 1})  # what unflushed records made of the table
COMMITTED = infer({"b": "x"})  # what the catalog holds


def _cache(wal: MemoryWal, catalog: dict[TableRef, FieldType] | None) -> SchemaCache:
    cache = SchemaCache(wal)
    if catalog is not None:
        cache.catalog_schema = catalog.get
    return cache


@pytest.fixture
def wal() -> MemoryWal:
    logged = MemoryWal()
    logged.append([], {schema_key(REF): orjson.dumps(LOGGED.to_json())})
    return logged


def test_first_seen_the_log_and_the_catalog_are_merged_once(wal: MemoryWal) -> None:
    catalog = {REF: COMMITTED}
    cache = _cache(wal, catalog)
    state = TableState(REF)
    both = cache.of(state)
    assert both is not None and [name for name, _ in both.fields] == ["b", "a"]
    catalog.clear()  # read again only when told to
    assert cache.of(state) == both


def test_an_unreadable_catalog_leaves_the_write_paths_schema_and_warns(
        wal: MemoryWal, caplog: pytest.LogCaptureFixture) -> None:
    def down(ref: TableRef) -> FieldType | None:
        raise ConnectionError("catalog down")

    cache = SchemaCache(wal)
    cache.catalog_schema = down
    with caplog.at_level(logging.WARNING, logger="lakehouse.ingest.schemas"):
        assert cache.of(TableState(REF)) == LOGGED
        assert list(cache.committed([REF])) == []
    assert [r.getMessage() for r in caplog.records].count(
        "cannot read the catalog's schema; checking records against the write path's") == 2


def test_adopted_and_polled_schemas_merge_over_the_logged_one(wal: MemoryWal) -> None:
    catalog: dict[TableRef, FieldType] = {}
    cache = _cache(wal, catalog)
    state = TableState(REF)
    cache.adopt(state, COMMITTED)
    assert state.schema == cache.of(state) and state.schema is not None
    assert [name for name, _ in state.schema.fields] == ["b", "a"]
    other = TableRef("acme", "other")
    catalog[REF] = COMMITTED
    assert list(cache.committed([REF, other])) == [(REF, COMMITTED)]  # none for `other`


def test_a_failed_write_forgets_the_schema_it_decided(wal: MemoryWal) -> None:
    cache = _cache(wal, None)
    state = TableState(REF)
    cache.decided(state, COMMITTED)
    assert cache.of(state) == COMMITTED
    cache.forget(state)
    assert cache.of(state) == LOGGED  # read again from the log


def test_declarations_are_looked_up_again_after_the_ttl_or_when_forgotten() -> None:
    declarations = MemoryDeclarations()
    now = [0.0]
    cache = DeclaredCache(declarations, lambda: now[0])
    assert cache.get(REF) is None
    declared = DeclaredTable("records", infer({"a": 1}), (), (), False, None, ())
    declarations.declare("acme", declared)
    assert cache.get(REF) is None  # cached
    now[0] = DECLARATION_TTL_S + 0.1
    assert cache.get(REF) == declared
    other = TableRef("acme", "other")
    assert cache.get(other) is None
    declarations.declare("acme", DeclaredTable("other", infer({"a": 1}), (), (), False, None, ()))
    cache.forget(other)
    assert cache.get(other) is not None
