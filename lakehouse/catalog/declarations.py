"""Where table declarations live: the catalog database, or memory (tests, pure logic).

One contract suite (tests/contract/test_declarations.py) runs against both.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Protocol

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from lakehouse.catalog.schema import declared_tables
from lakehouse.errors import Conflict
from lakehouse.schema.declared import DeclaredTable, parse_declaration


class TableDeclarations(Protocol):
    def declare(self, tenant: str, table: DeclaredTable) -> None:
        """Store a declaration; Conflict if the table is declared already."""

    def get(self, tenant: str, name: str) -> DeclaredTable | None: ...

    def list(self, tenant: str | None) -> list[tuple[str, DeclaredTable]]: ...


class MemoryDeclarations:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[tuple[str, str], DeclaredTable] = {}

    def declare(self, tenant: str, table: DeclaredTable) -> None:
        with self._lock:
            if (tenant, table.name) in self._tables:
                raise Conflict(f"table {table.name!r} is declared already",
                               code="table_declared", details={"table": table.name})
            self._tables[(tenant, table.name)] = table

    def get(self, tenant: str, name: str) -> DeclaredTable | None:
        with self._lock:
            return self._tables.get((tenant, name))

    def list(self, tenant: str | None) -> list[tuple[str, DeclaredTable]]:
        with self._lock:
            return sorted(((t, d) for (t, _), d in self._tables.items()
                           if tenant is None or t == tenant), key=lambda x: (x[0], x[1].name))


class SqlDeclarations:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def declare(self, tenant: str, table: DeclaredTable) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(declared_tables).values(
                    tenant=tenant, name=table.name, spec=json.dumps(table.to_json()),
                    created_at=int(time.time())))
        except IntegrityError as exc:
            raise Conflict(f"table {table.name!r} is declared already", code="table_declared",
                           details={"table": table.name}) from exc

    def get(self, tenant: str, name: str) -> DeclaredTable | None:
        with self._engine.connect() as conn:
            spec = conn.execute(select(declared_tables.c.spec).where(
                declared_tables.c.tenant == tenant, declared_tables.c.name == name)).scalar()
        return parse_declaration(json.loads(spec), stored=True) if spec is not None else None

    def list(self, tenant: str | None) -> list[tuple[str, DeclaredTable]]:
        query = select(declared_tables.c.tenant, declared_tables.c.spec).order_by(
            declared_tables.c.tenant, declared_tables.c.name)
        if tenant is not None:
            query = query.where(declared_tables.c.tenant == tenant)
        with self._engine.connect() as conn:
            return [(row.tenant, parse_declaration(json.loads(row.spec), stored=True))
                    for row in conn.execute(query)]
