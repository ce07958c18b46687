"""Where per-table maintenance options live: the catalog database, or memory (tests).

One contract suite (tests/contract/test_table_options.py) runs against both.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Protocol

from sqlalchemy import Engine, delete, insert, select, text

from lakehouse.catalog.options import NO_OPTIONS, TableOptions, parse_options
from lakehouse.catalog.schema import table_options


class TableOptionsStore(Protocol):
    def put(self, tenant: str, name: str, options: TableOptions) -> None:
        """Replace the table's options (all defaults: forget them)."""

    def get(self, tenant: str, name: str) -> TableOptions:
        """NO_OPTIONS when none are set."""

    def all(self) -> dict[tuple[str, str], TableOptions]: ...


class MemoryTableOptions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._options: dict[tuple[str, str], TableOptions] = {}

    def put(self, tenant: str, name: str, options: TableOptions) -> None:
        with self._lock:
            if options == NO_OPTIONS:
                self._options.pop((tenant, name), None)
            else:
                self._options[(tenant, name)] = options

    def get(self, tenant: str, name: str) -> TableOptions:
        with self._lock:
            return self._options.get((tenant, name), NO_OPTIONS)

    def all(self) -> dict[tuple[str, str], TableOptions]:
        with self._lock:
            return dict(self._options)


_GET = text("SELECT spec FROM table_options WHERE tenant = :tenant AND name = :name")


class SqlTableOptions:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def put(self, tenant: str, name: str, options: TableOptions) -> None:
        where = (table_options.c.tenant == tenant, table_options.c.name == name)
        with self._engine.begin() as conn:
            conn.execute(delete(table_options).where(*where))
            if options != NO_OPTIONS:
                conn.execute(insert(table_options).values(
                    tenant=tenant, name=name, spec=json.dumps(options.to_json()),
                    updated_at=int(time.time())))

    def get(self, tenant: str, name: str) -> TableOptions:
        # Text made once: every query asks for each table it reads, and building and
        # compiling the expression each time cost several times the read.
        with self._engine.connect() as conn:
            spec = conn.execute(_GET, {"tenant": tenant, "name": name}).scalar()
        return parse_options(json.loads(spec)) if spec is not None else NO_OPTIONS

    def all(self) -> dict[tuple[str, str], TableOptions]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(table_options.c.tenant, table_options.c.name,
                                       table_options.c.spec)).all()
        return {(r.tenant, r.name): parse_options(json.loads(r.spec)) for r in rows}
