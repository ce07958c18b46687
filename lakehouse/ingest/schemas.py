"""The schema records are checked against: the catalog's (what loads and flushes committed, in
exact types) with what unflushed records added to it (the write path's own, kept in the WAL's
index and moved by the writes that evolve it).

It is cached per table in `TableState.schema`. The catalog is read there only the first time a
table is seen; later changes are pushed (`adopt`, by the flush and by loads in this process) or
polled (`committed`, off the lock). This class holds no lock of its own: the ingest service calls
it under its lock, except `committed`, which reads the catalog and so must run outside it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

import orjson

from lakehouse.ingest.keys import TableRef, schema_key
from lakehouse.ingest.state import TableState
from lakehouse.schema import FieldType, merge_schemas
from lakehouse.wal.port import WriteAheadLog

log = logging.getLogger(__name__)

CatalogSchema = Callable[[TableRef], FieldType | None]


class SchemaCache:
    def __init__(self, wal: WriteAheadLog) -> None:
        self._wal = wal
        # The catalog's schema of a table, for tables the log has not seen yet.
        self.catalog_schema: CatalogSchema | None = None

    def of(self, state: TableState) -> FieldType | None:
        """The table's schema, read from the log (and the catalog) the first time it is asked."""
        if not state.schema_loaded:
            [raw] = self._wal.index_get([schema_key(state.ref)])
            state.schema = FieldType.from_json(orjson.loads(raw)) if raw else None
            state.schema_loaded = True
            if self.catalog_schema is not None:
                state.schema = merge_schemas(self._catalog_or_none(state.ref), state.schema)
        return state.schema

    def decided(self, state: TableState, schema: FieldType) -> None:
        """A write about to be committed evolves the table to `schema`: visible to the next
        request at once (`forget` undoes it if the write fails)."""
        state.schema, state.schema_loaded = schema, True

    def forget(self, state: TableState) -> None:
        """A write that evolved the table failed: the schema is read again from the log."""
        state.schema_loaded = False

    def adopt(self, state: TableState, committed: FieldType | None) -> None:
        """The catalog's schema of the table is now `committed`."""
        self.of(state)
        state.schema = merge_schemas(committed, state.schema)

    def adopt_catalog(self, state: TableState) -> None:
        """Take the catalog's schema as it is now (a load in this process just committed it)."""
        if self.catalog_schema is not None:
            state.schema = merge_schemas(self._catalog_or_none(state.ref), state.schema)

    @property
    def reads_catalog(self) -> bool:
        return self.catalog_schema is not None

    def committed(self, refs: Iterable[TableRef]) -> Iterator[tuple[TableRef, FieldType]]:
        """The catalog's schema of each of `refs` that it has one for and can be read, one table
        at a time, so the caller takes each under its lock without holding it over the reads."""
        if self.catalog_schema is None:
            return
        for ref in refs:
            committed = self._catalog_or_none(ref)
            if committed is not None:
                yield ref, committed

    def _catalog_or_none(self, ref: TableRef) -> FieldType | None:
        """The catalog's schema of `ref`; None (the write path's own schema stands) if the
        catalog cannot be read: records need only the log, never the catalog."""
        assert self.catalog_schema is not None  # noqa: S101 - callers check
        try:
            return self.catalog_schema(ref)
        except Exception as exc:
            log.warning("cannot read the catalog's schema; checking records against the write "
                        "path's", extra={"table": f"{ref.tenant}/{ref.table}",
                                         "error": str(exc)[:200]})
            return None
