"""Plans of SQL text kept for the next query that asks the same thing.

Planning a query (parse, bind, type-check, optimize) is Python from end to end: 4 ms for a
small grouping query, tens for a TPC-H one, holding the interpreter lock the services' event
loop needs (docs/scaling.md, "Overload"). Dashboards and clients ask the same text again and
again, so a plan is kept under everything planning reads: the tenant, the snapshot (its
tables, files and statistics never change), the view (which adds the write buffer's columns)
and the cost model, besides the text and the dialect asked for. Equal keys read equal inputs,
so the kept plan is the one planning would make. Kept trees and plans are only read after
planning: nothing downstream changes them.

The snapshot a text names (AT (VERSION => N)) is kept per text too, since the key needs it
before the text is parsed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from lakehouse.optimizer.cost_model import CostModel
    from lakehouse.optimizer.optimize import Optimized
    from lakehouse.sql.interpret import Interpretation
    from lakehouse.sql.schema_view import SchemaView

PLANS_KEPT = 64
PLANS_PER_TENANT = 16  # one tenant's texts do not push every other tenant's plans out
TEXTS_KEPT = 1024
# Longer texts are planned every time, not kept. A plan's trees grow with its text (an 80 KB
# text of literals planned into some 68 MB), so the bound on the text bounds what is kept:
# TPC-H's longest query is under 2 KB.
MAX_TEXT = 4096


K = TypeVar("K")
V = TypeVar("V")


class NotSeen:
    def __repr__(self) -> str:
        return "NOT_SEEN"


NOT_SEEN: Final = NotSeen()


@dataclass(frozen=True, slots=True)
class PlanKey:
    tenant: str
    snapshot: int
    text: str
    dialect: str | None  # as asked: None is the default dialect
    model: CostModel
    view: SchemaView
    digest: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # Hashed once, outside the cache's lock (a view hashes every column of every table).
        object.__setattr__(self, "digest", hash((self.tenant, self.snapshot, self.text,
                                                 self.dialect, self.model, self.view)))

    def __hash__(self) -> int:
        return self.digest


class PlanCache:
    def __init__(self, plans_kept: int = PLANS_KEPT, texts_kept: int = TEXTS_KEPT,
                 per_tenant: int = PLANS_PER_TENANT) -> None:
        self._plans_kept = plans_kept
        self._per_tenant = per_tenant
        self._texts_kept = texts_kept
        self._lock = threading.Lock()
        self._plans: OrderedDict[PlanKey, tuple[Interpretation, Optimized]] = OrderedDict()
        self._named: OrderedDict[tuple[str, str | None], int | None] = OrderedDict()
        self.reused = 0
        self.planned = 0

    def named(self, text: str, dialect: str | None) -> int | NotSeen | None:
        """The snapshot `text` names (None: none), or NOT_SEEN when it was not parsed lately."""
        with self._lock:
            return self._named.get((text, dialect), NOT_SEEN)

    def keep_named(self, text: str, dialect: str | None, snapshot: int | None) -> None:
        if len(text) <= MAX_TEXT:
            with self._lock:
                _put(self._named, (text, dialect), snapshot, self._texts_kept)

    def get(self, key: PlanKey | None) -> tuple[Interpretation, Optimized] | None:
        """The plan kept under `key`, counted as reused; None (counted as planned) when there
        is none, or no key (a tree built from the DSL)."""
        with self._lock:
            if key is None or (found := self._plans.get(key)) is None:
                self.planned += 1
                return None
            self._plans.move_to_end(key)
            self.reused += 1
            return found

    def keep(self, key: PlanKey, plan: tuple[Interpretation, Optimized]) -> None:
        if len(key.text) > MAX_TEXT:
            return
        with self._lock:
            own = [kept for kept in self._plans if kept.tenant == key.tenant and kept != key]
            if len(own) >= self._per_tenant:
                del self._plans[own[0]]  # the tenant's least recently used
            _put(self._plans, key, plan, self._plans_kept)

    def __len__(self) -> int:
        with self._lock:
            return len(self._plans)


def _put(kept: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    kept[key] = value
    kept.move_to_end(key)
    while len(kept) > limit:
        kept.popitem(last=False)
