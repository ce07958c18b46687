"""Random queries over a Dataset, in the spirit of SQLancer and SQLsmith (pure).

A query is generated from `(seed, index)` alone, so any query of a run can be made again from
its id. Each is valid DuckDB whose answer does not depend on the order rows arrive in: a LIMIT
(at the top or in a subquery) always follows an ORDER BY over every output column, window
functions that depend on row order order by every column they can see, scalar subqueries are
aggregates or LIMIT 1. `Query.order_keys` and `Query.limited` tell the comparison what order
the answer promises. Queries meant to split (decomposable aggregates and top-N over inner joins
of distinct tables) are generated often, so a forced distributed plan really distributes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TypeVar

from tools.sqlgen.expressions import FAMILY, Expressions
from tools.sqlgen.schema import Dataset, Kind, Table
from tools.sqlgen.scope import ALL, Col, Ctx, Features, Key, State

K = TypeVar("K")
# Each key's number of distinct values, roughly: how much an equality join multiplies rows.
DOMAIN = {Kind.INT: 8, Kind.TEXT: 14, Kind.DATE: 9, Kind.TIMESTAMP: 60,
          Kind.TIMESTAMPTZ: 60, Kind.DECIMAL: 20, Kind.FLOAT: 60, Kind.BOOL: 2}
MAX_ROWS = 2500  # the most rows a FROM clause may make (cross joins are bounded by it)
SHAPES = {"plain": 22, "aggregate": 20, "split_aggregate": 16, "top_n": 8, "window": 8,
          "distinct": 6, "setop": 12, "invalid": 2}
JOINS = {"JOIN": 30, "LEFT JOIN": 25, "CROSS JOIN": 8, ",": 10, "RIGHT JOIN": 5,
         "FULL JOIN": 5, "USING": 5}


@dataclass(frozen=True, slots=True)
class OrderKey:
    position: int  # 0-based output column
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Tlp:
    """Ternary logic partitioning: `whole` returns what the three `parts` (WHERE p,
    WHERE NOT p, WHERE p IS NULL) return together (as sets when `distinct`)."""

    whole: str
    parts: tuple[str, str, str]
    distinct: bool


@dataclass(frozen=True)
class Query:
    id: str
    sql: str
    order_keys: tuple[OrderKey, ...] = ()
    limited: bool = False  # a top-level LIMIT: the ORDER BY is total, compare in sequence
    uses: frozenset[str] = frozenset()
    tlp: Tlp | None = None
    valid: bool = True  # False: made to be refused (DuckDB refuses it: so must we)
    shape: str = "plain"


@dataclass
class Rel:
    sql: str
    alias: str
    cols: list[Col]
    rows: int
    table: str | None = None  # the base table it reads


@dataclass
class From:
    """A FROM clause being built. A comma binds looser than JOIN (`a, b JOIN c ON …` joins b
    and c first), so an ON condition sees only the relations since the last comma: the
    segment."""

    sql: str
    cols: list[Col]
    segment: list[Col]
    rows: int
    where: list[str] = field(default_factory=list)  # conditions of comma joins

    def add(self, sql: str, right: Rel, rows: int) -> None:
        self.sql += sql
        self.cols += right.cols
        self.segment += right.cols
        self.rows = rows


@dataclass
class Select:
    items: list[str]
    names: list[str]
    kinds: list[Kind]
    from_sql: str = ""
    where: list[str] = field(default_factory=list)
    group: list[str] = field(default_factory=list)
    having: str = ""
    distinct: bool = False
    order: str = ""
    limit: str = ""
    order_keys: tuple[OrderKey, ...] = ()
    cols: list[Col] = field(default_factory=list)  # what FROM made visible (for TLP)
    rows: int = 1  # about how many rows it returns at most

    def sql(self, where: list[str] | None = None, *, tail: bool = True) -> str:
        conds = self.where if where is None else where
        parts = [f"SELECT {'DISTINCT ' if self.distinct else ''}{', '.join(self.items)}"]
        if self.from_sql:
            parts.append(f"FROM {self.from_sql}")
        if conds:
            parts.append("WHERE " + " AND ".join(conds))
        if self.group:
            parts.append("GROUP BY " + ", ".join(self.group))
        if self.having:
            parts.append(f"HAVING {self.having}")
        if tail and self.order:
            parts.append(self.order)
        if tail and self.limit:
            parts.append(self.limit)
        return " ".join(parts)


def weighted(rng: random.Random, weights: dict[K, int]) -> K:
    return rng.choices(list(weights), list(weights.values()))[0]


class QueryGenerator(Expressions):
    def __init__(self, dataset: Dataset, rng: random.Random, features: Features) -> None:
        self.dataset = dataset
        self.features = features
        self.st = State(rng, features)

    # The query ---------------------------------------------------------------------------

    def query(self, query_id: str) -> Query:
        shape = weighted(self.st.rng, SHAPES)
        if not self.features.set_operations and shape == "setop":
            shape = "plain"
        if not self.features.windows and shape == "window":
            shape = "plain"
        valid = True
        if shape == "invalid":
            shape, valid = "plain", False
        with_ = ""
        if self.features.ctes and shape not in ("split_aggregate", "top_n") and self.chance(0.12):
            with_ = self.ctes()
        tlp = None
        if shape == "setop":
            sql, keys, limited = self.set_operation(0, [], None, 2, top=True)
        else:
            select = self.select(0, [], None, shape, 2, top=True)
            sql, keys, limited = select.sql(), select.order_keys, bool(select.limit)
            if shape in ("plain", "distinct") and not select.limit and self.chance(0.5):
                tlp = self.tlp(select, with_)
        if not valid:
            sql = self.broken(sql)
        return Query(query_id, f"{with_}{sql}", keys, limited, frozenset(self.st.uses), tlp,
                     valid, shape if valid else "invalid")

    def ctes(self) -> str:
        self.st.uses.add("cte")
        defined = []
        for _ in range(self.st.rng.randint(1, 2)):
            name = self.st.alias("cte")
            if self.chance(0.2):
                body, kinds = self.set_operation_kinds(1, 1)
            else:
                select = self.select(1, [], None, self.pick(("plain", "aggregate", "distinct")),
                                     1)
                body, kinds = select.sql(), select.kinds
                self.st.cte_rows[name] = select.rows
            defined.append(f"{name} AS ({body})")
            self.st.ctes.append((name, [(f"c{i}", k) for i, k in enumerate(kinds)]))
        return "WITH " + ", ".join(defined) + " "

    def tlp(self, select: Select, with_: str) -> Tlp:
        ctx = Ctx(select.cols, level=0, clause="where")
        p = self.predicate(ctx, 2)
        whole = with_ + select.sql(tail=False)
        parts = tuple(with_ + select.sql([*select.where, cond], tail=False)
                      for cond in (f"({p})", f"(NOT ({p}))", f"(({p}) IS NULL)"))
        return Tlp(whole, parts, select.distinct)  # type: ignore[arg-type]

    def broken(self, sql: str) -> str:
        """A query DuckDB refuses."""
        roll = self.st.rng.randint(0, 3)
        if roll == 0:
            return sql.replace("SELECT ", "SELECT no_such_column, ", 1)
        if roll == 1:
            return sql + " UNION SELECT 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13"
        if roll == 2:
            return sql.replace("SELECT ", "SELECT 1 + 'text', ", 1)
        return sql.replace("SELECT ", "SELECT count(*) FILTER (WHERE count(*) > 1), ", 1)

    # FROM --------------------------------------------------------------------------------

    def base(self, level: int, table: Table | None = None) -> Rel:
        table = table or self.pick(self.dataset.tables)
        alias = self.st.alias("a")
        self.st.bases.add(alias)
        cols = [Col(alias, c.name, c.kind, level) for c in table.columns]
        return Rel(f"{table.name} AS {alias}", alias, cols, max(1, len(table.rows)), table.name)

    def relation(self, level: int, depth: int, *, simple: bool) -> Rel:
        roll = self.st.rng.random()
        if simple or depth <= 0 or roll < (0.8 if level == 0 else 0.9):
            return self.base(level)
        if roll < 0.84 and self.st.ctes:
            name, columns = self.pick(self.st.ctes)
            alias = self.st.alias("a")
            return Rel(f"{name} AS {alias}", alias, [Col(alias, n, k, level) for n, k in columns],
                       self.st.cte_rows.get(name, 60))
        self.st.uses.add("derived_table")
        rows = 60
        if self.features.set_operations and self.chance(0.15):
            body, kinds = self.set_operation_kinds(level + 1, depth - 1)
        else:
            shapes = ("plain", "plain", "aggregate", "distinct", "window")
            select = self.select(level + 1, [], None, self.pick(
                shapes if self.features.windows else shapes[:-1]), depth - 1)
            body, rows, kinds = select.sql(), select.rows, select.kinds
        alias = self.st.alias("d")
        return Rel(f"({body}) AS {alias}", alias,
                   [Col(alias, f"c{i}", k, level) for i, k in enumerate(kinds)], max(1, rows))

    def from_clause(self, level: int, depth: int, count: int, *, simple: bool,
                    distinct_tables: bool = False) -> tuple[str, list[Col], list[str], int]:
        """FROM's text, the columns it makes visible, conditions for WHERE (comma joins) and
        about how many rows it makes at most."""
        rels: list[Rel] = []
        for _ in range(count):
            rel = self.relation(level, depth, simple=simple)
            if distinct_tables and rel.table in {r.table for r in rels}:
                continue
            rels.append(rel)
        if len({r.table for r in rels if r.table}) < len([r for r in rels if r.table]):
            self.st.uses.add("self_join")
        found = From(rels[0].sql, list(rels[0].cols), list(rels[0].cols), rels[0].rows)
        i = 1
        while i < len(rels):
            right, i = self._next(rels, i, simple)
            if not self._join(found, right, simple, level):
                break  # too many rows: the FROM clause ends here
        return found.sql, found.cols, found.where, found.rows

    def _next(self, rels: list[Rel], i: int, simple: bool) -> tuple[Rel, int]:
        """The next relation to join, or the next two joined in parentheses."""
        right = rels[i]
        if not (self.features.parenthesised_joins and not simple and i + 1 < len(rels)
                and self.chance(0.15)):
            return right, i + 1
        pair = rels[i + 1]
        self.st.wide = False
        on = self.join_condition(right.cols, pair.cols)
        rows = (right.rows * pair.rows if on is None or self.st.wide
                else self.joined(right.rows, pair.rows))
        kind = self.pick(("JOIN", "LEFT JOIN", "JOIN"))
        self.st.uses.add("parenthesised_joins")
        return Rel(f"({right.sql} {kind} {pair.sql} ON {on or 'TRUE'})", "",
                   right.cols + pair.cols, rows), i + 2

    def _join(self, found: From, right: Rel, simple: bool, level: int) -> bool:
        """Join `right` to what was found so far; False (nothing joined) when the rows would
        be too many."""
        kind = self.join_kind(simple, found.rows * right.rows)
        self.st.wide = False
        self.st.key_domain = 2
        condition = self.join_condition(found.cols if kind == "," else found.segment,
                                        right.cols)
        product = found.rows * right.rows
        if condition is None or self.st.wide:
            if product > MAX_ROWS:
                return False
        elif self.joined(found.rows, right.rows) > MAX_ROWS:
            return False
        if kind == "USING":
            shared = self.using_column(found.segment, right.cols)
            if shared is not None:
                found.add(f" JOIN {right.sql} USING ({shared})", right,
                          self.joined(found.rows, right.rows))
                self.st.uses.add("join:using")
                return True
            kind = "JOIN"
        if kind == "CROSS JOIN" and product > MAX_ROWS:
            kind = "JOIN"
        self.st.uses.add(f"join:{kind.lower()}")
        if kind == ",":
            if condition is not None and (self.chance(0.8) or product > MAX_ROWS):
                found.where.append(condition)
                product = product if self.st.wide else self.joined(found.rows, right.rows)
            found.add(f", {right.sql}", right, product)
            found.segment = list(right.cols)
        elif kind == "CROSS JOIN":
            found.add(f" CROSS JOIN {right.sql}", right, product)
        else:
            on = self._on(found, right, condition, level, product)
            rows = (self.joined(found.rows, right.rows) if condition and not self.st.wide
                    else product)
            found.add(f" {kind} {right.sql} ON {on}", right, rows)
        return True

    def _on(self, found: From, right: Rel, condition: str | None, level: int,
            product: int) -> str:
        on = condition or "TRUE"
        if self.chance(0.35):  # a condition on one side alone: pushed into its scan
            side = self.simple_predicate(Ctx(right.cols if self.chance(0.6) else found.segment,
                                             level=level, subqueries=False))
            if side is not None:
                on = f"{on} AND {side}"
        elif self.chance(0.1) and product <= MAX_ROWS:
            either = Ctx(found.segment + right.cols, level=level, subqueries=False)
            on = f"({on} OR {self.comparison(either, 0)})"
            self.st.wide = True
        return on

    def joined(self, left: int, right: int) -> int:
        """About how many rows an equality join of the two makes (keys repeat a lot)."""
        return max(left, right, left * right // self.st.key_domain)

    def join_kind(self, simple: bool, product: int) -> str:
        if simple:
            return self.pick(("JOIN", "JOIN", ",", "CROSS JOIN") if product <= MAX_ROWS
                             else ("JOIN", ","))
        kinds = dict(JOINS)
        if not self.features.right_full_joins:
            kinds.pop("RIGHT JOIN")
            kinds.pop("FULL JOIN")
        return weighted(self.st.rng, kinds)

    def join_condition(self, left: list[Col], right: list[Col]) -> str | None:
        pairs = [(a, b) for a in left for b in right if b.kind in FAMILY[a.kind]
                 and a.kind is not Kind.BOOL]
        same = [(a, b) for a, b in pairs if a.kind is b.kind]
        if not pairs:
            return None
        a, b = self.pick(same if same and self.chance(0.85) else pairs)
        self.st.key_domain = DOMAIN[a.kind]
        if self.chance(0.1):
            self.st.wide = True  # the caller counts the rows of a cross product
            return f"{a.ref} {self.pick(('<', '<=', '<>'))} {b.ref}"
        if self.chance(0.1):
            return f"{a.ref} IS NOT DISTINCT FROM {b.ref}"
        return f"{a.ref} = {b.ref}"

    def using_column(self, left: list[Col], right: list[Col]) -> str | None:
        names = [c.name for c in left]
        shared = [c.name for c in right if names.count(c.name) == 1
                  and next(x for x in left if x.name == c.name).kind is c.kind
                  and [r.name for r in right].count(c.name) == 1]
        return self.pick(shared) if shared else None

    def table_count(self, simple: bool, level: int = 0) -> int:
        if level > 0:
            return weighted(self.st.rng, {1: 70, 2: 22, 3: 8})
        weights = {1: 34, 2: 32, 3: 18, 4: 8, 5: 4, 6: 4} if not simple else {
            1: 40, 2: 35, 3: 20, 4: 5}
        return weighted(self.st.rng, weights)

    # SELECT lives in select.py (SelectGenerator), sharing this class's helpers.
    def select(self, level: int, outer: list[Col], want: list[Kind] | None, shape: str,
               depth: int, *, top: bool = False) -> Select:
        raise NotImplementedError

    def set_operation(self, level: int, outer: list[Col], want: list[Kind] | None, depth: int,
                      *, top: bool = False) -> tuple[str, tuple[OrderKey, ...], bool]:
        raise NotImplementedError

    def set_operation_kinds(self, level: int, depth: int) -> tuple[str, list[Kind]]:
        raise NotImplementedError


def generate(dataset: Dataset, seed: int, index: int, features: Features = ALL) -> Query:
    """Query `index` of run `seed`: the same every time."""
    from tools.sqlgen.select import SelectGenerator

    rng = random.Random(f"query:{seed}:{index}")
    return SelectGenerator(dataset, rng, features).query(f"{seed}:{index}")


__all__ = ["Ctx", "Key", "OrderKey", "Query", "QueryGenerator", "Select", "Tlp", "generate"]
