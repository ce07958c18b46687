"""Tables' declarations as the write path sees them: looked up at most every few seconds, so a
write does not wait on the catalog database, and a declaration made by another process is seen
soon after (one made in this process is seen at once: it calls `forget`)."""

from __future__ import annotations

from collections.abc import Callable

from lakehouse.catalog.declarations import TableDeclarations
from lakehouse.ingest.keys import TableRef
from lakehouse.schema.declared import DeclaredTable

DECLARATION_TTL_S = 5.0


class DeclaredCache:
    def __init__(self, declarations: TableDeclarations | None, clock: Callable[[], float],
                 ttl_s: float = DECLARATION_TTL_S) -> None:
        self.declarations = declarations
        self._clock = clock
        self._ttl_s = ttl_s
        self._cached: dict[TableRef, tuple[float, DeclaredTable | None]] = {}  # → (expiry, it)

    def get(self, ref: TableRef) -> DeclaredTable | None:
        if self.declarations is None:
            return None
        now = self._clock()
        cached = self._cached.get(ref)
        if cached is None or cached[0] < now:
            cached = (now + self._ttl_s, self.declarations.get(ref.tenant, ref.table))
            self._cached[ref] = cached
        return cached[1]

    def forget(self, ref: TableRef) -> None:
        self._cached.pop(ref, None)
