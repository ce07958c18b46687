"""What a query being generated can see: its columns, the enclosing queries' columns, the group
keys of an aggregate, and which constructs it used (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

from tools.sqlgen.schema import Kind


@dataclass(frozen=True)
class Features:
    """Constructs the generator may use (every one, unless a run turns some off). Four make
    issue 20's classes, now regression tests of their own: a subquery in the select list
    without a name (class 1: a 500 when ORDER BY referred to it by position), duplicate output
    names (class 2: columns of one name collapsed), `*` over base tables (class 3: it showed
    the platform's own columns), parenthesised joins (class 4: refused)."""

    unaliased_subquery_in_select: bool = True
    duplicate_output_names: bool = True
    star_over_base_tables: bool = True
    parenthesised_joins: bool = True
    unaliased_expressions: bool = True  # a result column named by its expression
    correlated_subqueries_in_select: bool = True
    invalid_queries: bool = True  # a few queries DuckDB refuses: the platform must 4xx
    right_full_joins: bool = True
    windows: bool = True
    ctes: bool = True
    set_operations: bool = True

    def without(self, *names: str) -> Features:
        return replace(self, **dict.fromkeys(names, False))


# Issue 20's classes 1–4, by the feature that produces them.
ISSUE_20_CLASSES: dict[str, int] = {
    "unaliased_subquery_in_select": 1,
    "duplicate_output_names": 2,
    "star_over_base_tables": 3,
    "parenthesised_joins": 4,
}
ALL = Features()


@dataclass(frozen=True, slots=True)
class Col:
    """A column as a query sees it: `qualifier.name`, of a kind, defined at a nesting level."""

    qualifier: str
    name: str
    kind: Kind
    level: int = 0

    @property
    def ref(self) -> str:
        return f"{self.qualifier}.{self.name}"


@dataclass(frozen=True, slots=True)
class Key:
    """A GROUP BY key: its SQL and kind; outputs may use it outside aggregates."""

    sql: str
    kind: Kind


@dataclass
class Ctx:
    """Where an expression is generated."""

    cols: list[Col]  # the current query's FROM columns (row level)
    outer: list[Col] = field(default_factory=list)  # enclosing queries' columns
    level: int = 0  # nesting depth of the current query
    keys: list[Key] | None = None  # an aggregate's output: only keys, aggregates, literals
    clause: str = "where"  # select, where, on, having, order
    subqueries: bool = True
    simple: bool = False  # a query that splits: no subqueries, only decomposable aggregates
    in_aggregate: bool = False  # inside an aggregate's argument

    def row(self) -> Ctx:
        """The context of an aggregate's argument: row level over the same columns."""
        return replace(self, keys=None, in_aggregate=True, outer=[])


@dataclass
class State:
    """Bookkeeping of one query: names, the constructs used, correlation."""

    rng: random.Random
    features: Features
    counter: int = 0
    uses: set[str] = field(default_factory=set)
    # Subqueries being generated, by level: did one read a column of an enclosing level?
    open_levels: dict[int, bool] = field(default_factory=dict)
    ctes: list[tuple[str, list[tuple[str, Kind]]]] = field(default_factory=list)
    bases: set[str] = field(default_factory=set)  # aliases of base tables
    cte_rows: dict[str, int] = field(default_factory=dict)
    wide: bool = False  # the last join condition keeps most pairs (<, <>, OR)
    key_domain: int = 8  # distinct values of the last join condition's key

    def alias(self, prefix: str = "q") -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def used(self, col: Col, level: int) -> None:
        """`col` read at `level`: every open subquery between them is correlated."""
        for open_level in self.open_levels:
            if col.level < open_level <= level:
                self.open_levels[open_level] = True
                self.uses.add("correlated")
