"""Random typed expressions: values of each kind, predicates, aggregates (pure).

Every expression is generated for a kind and is valid DuckDB for every row: no data-dependent
error can occur (divisors go through NULLIF, no multiplication of two columns, no cast that can
fail), so a platform that skips rows early cannot turn DuckDB's error into an answer. Nothing
depends on the order rows arrive in (no any_value, string_agg orders its input).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TypeVar

from tools.sqlgen.schema import DAYS, NUMERIC, TEXTS, Kind
from tools.sqlgen.scope import Col, Ctx, State

T = TypeVar("T")
FAMILY: dict[Kind, tuple[Kind, ...]] = {
    Kind.INT: (Kind.INT, Kind.INT, Kind.FLOAT, Kind.DECIMAL),
    Kind.FLOAT: (Kind.FLOAT, Kind.INT, Kind.DECIMAL),
    Kind.DECIMAL: (Kind.DECIMAL, Kind.INT, Kind.FLOAT),
    Kind.TEXT: (Kind.TEXT,),
    Kind.DATE: (Kind.DATE, Kind.DATE, Kind.TIMESTAMP),
    Kind.TIMESTAMP: (Kind.TIMESTAMP, Kind.TIMESTAMP, Kind.DATE, Kind.TIMESTAMPTZ),
    Kind.TIMESTAMPTZ: (Kind.TIMESTAMPTZ, Kind.TIMESTAMP),
    Kind.BOOL: (Kind.BOOL,),
}
CAST_NAMES = {Kind.INT: "BIGINT", Kind.FLOAT: "DOUBLE", Kind.DECIMAL: "DECIMAL(18, 3)",
              Kind.TEXT: "VARCHAR", Kind.DATE: "DATE", Kind.TIMESTAMP: "TIMESTAMP",
              Kind.TIMESTAMPTZ: "TIMESTAMPTZ", Kind.BOOL: "BOOLEAN"}
COMPARE = ("=", "<>", "<", "<=", ">", ">=")
LIKE_PATTERNS = ("a%", "%b", "_", "%", "a_", "%a%", "A%", "1%", "x\\_y")


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Expressions:
    """The expression half of the generator; QueryGenerator adds the subqueries."""

    st: State

    # Subqueries (QueryGenerator) -------------------------------------------------------------

    def scalar_subquery(self, kind: Kind, ctx: Ctx, depth: int) -> str | None:
        raise NotImplementedError

    def column_subquery(self, kind: Kind, ctx: Ctx, depth: int) -> str | None:
        raise NotImplementedError

    def exists_subquery(self, ctx: Ctx, depth: int) -> str | None:
        raise NotImplementedError

    # Leaves ----------------------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.st.rng.random() < p

    def pick(self, items: Sequence[T]) -> T:
        return self.st.rng.choice(items)

    def literal(self, kind: Kind, *, loose: bool = False) -> str:  # noqa: PLR0911
        """A literal of `kind`; `loose`: the forms DuckDB casts implicitly (text for dates,
        a decimal for a float), which is what pruning must read right."""
        rng = self.st.rng
        if kind is Kind.INT:
            return str(rng.choice((rng.randint(0, 7), rng.randint(0, 7), rng.randint(-3, 12),
                                   1000)))
        if kind is Kind.FLOAT:
            value = rng.randint(-20, 40) / 4
            return f"{value}" if loose or self.chance(0.5) else f"CAST({value} AS DOUBLE)"
        if kind is Kind.DECIMAL:
            return str(Decimal(rng.randint(-200, 800)).scaleb(-rng.choice((0, 1, 2))))
        if kind is Kind.TEXT:
            return quote(rng.choice(TEXTS))
        if kind is Kind.BOOL:
            return rng.choice(("TRUE", "FALSE"))
        day = rng.choice(DAYS[:6]) if self.chance(0.9) else rng.choice(DAYS)
        if kind is Kind.DATE:
            return quote(day.isoformat()) if loose else f"DATE {quote(day.isoformat())}"
        stamp = dt.datetime(day.year, day.month, day.day, rng.choice((0, 6, 12)),
                            rng.choice((0, 30)))
        text = stamp.isoformat(sep=" ")
        if kind is Kind.TIMESTAMP:
            return quote(text) if loose else f"TIMESTAMP {quote(text)}"
        return quote(text + "+00") if loose else f"TIMESTAMPTZ {quote(text + '+00')}"

    def null(self, kind: Kind) -> str:
        # Typed: a bare NULL is an INTEGER to DuckDB's function overloads (`NULL + 1`).
        return f"CAST(NULL AS {CAST_NAMES[kind]})"

    def column(self, kind: Kind | None, ctx: Ctx, *, outer: bool = True) -> Col | None:
        """A column of `kind` (any kind when None) the context can read; enclosing queries'
        columns now and then (a correlated subquery)."""
        mine = [c for c in ctx.cols if kind is None or c.kind is kind]
        theirs = [c for c in ctx.outer if kind is None or c.kind is kind] if outer else []
        if theirs and (not mine or self.chance(0.3)):
            col = self.pick(theirs)
        elif mine:
            col = self.pick(mine)
        else:
            return None
        self.st.used(col, ctx.level)
        return col

    def leaf(self, kind: Kind, ctx: Ctx) -> str:
        if ctx.keys is not None:  # an aggregate's output: keys, aggregates, literals
            keys = [k for k in ctx.keys if k.kind is kind]
            roll = self.st.rng.random()
            if keys and roll < 0.5:
                return self.pick(keys).sql
            if roll < 0.9:
                found = self.aggregate(kind, ctx, 1)
                if found is not None:
                    return found
            return self.literal(kind) if self.chance(0.9) else self.null(kind)
        roll = self.st.rng.random()
        if roll < 0.75:
            col = self.column(kind, ctx)
            if col is not None:
                return col.ref
        return self.null(kind) if roll > 0.97 else self.literal(kind)

    # Values ----------------------------------------------------------------------------------

    def value(self, kind: Kind, ctx: Ctx, depth: int) -> str:
        if kind is Kind.BOOL:
            if depth <= 0 or self.chance(0.3):
                return self.leaf(kind, ctx)
            return f"({self.predicate(ctx, depth - 1)})"
        if depth <= 0 or self.chance(0.4):
            return self.leaf(kind, ctx)
        builders = self._builders(kind)
        for _ in range(3):
            built = self.pick(builders)(ctx, depth - 1)
            if built is not None:
                return built
        return self.leaf(kind, ctx)

    def _builders(self, kind: Kind) -> list[Callable[[Ctx, int], str | None]]:
        common: list[Callable[[Ctx, int], str | None]] = [
            lambda c, d: self._case(kind, c, d), lambda c, d: self._coalesce(kind, c, d),
            lambda c, d: self._scalar(kind, c, d)]
        if kind is Kind.TEXT:
            return common + [self._text] * 4
        if kind in NUMERIC:
            return common + [lambda c, d: self._number(kind, c, d)] * 4
        return common + [lambda c, d: self._time(kind, c, d)] * 2

    def _case(self, kind: Kind, ctx: Ctx, depth: int) -> str:
        whens = " ".join(f"WHEN {self.predicate(ctx, depth)} THEN {self.value(kind, ctx, depth)}"
                         for _ in range(self.st.rng.randint(1, 2)))
        tail = f" ELSE {self.value(kind, ctx, depth)}" if self.chance(0.7) else ""
        return f"CASE {whens}{tail} END"

    def _coalesce(self, kind: Kind, ctx: Ctx, depth: int) -> str:
        name = self.pick(("coalesce", "coalesce", "nullif", "greatest", "least"))
        args = [self.value(kind, ctx, depth) for _ in range(2 if name == "nullif" else
                                                          self.st.rng.randint(2, 3))]
        return f"{name}({', '.join(args)})"

    def _scalar(self, kind: Kind, ctx: Ctx, depth: int) -> str | None:
        if not ctx.subqueries or ctx.simple or ctx.in_aggregate or not self.chance(0.3):
            return None
        return self.scalar_subquery(kind, ctx, depth)

    def _number(self, kind: Kind, ctx: Ctx, depth: int) -> str | None:
        def v(k: Kind = kind) -> str:
            return self.value(k, ctx, depth)

        roll = self.st.rng.randint(0, 9)
        if roll <= 2:
            return f"({v()} {self.pick(('+', '-'))} {v()})"
        if roll == 3:
            factor = self.pick(("2", "-1", "3")) if kind is not Kind.FLOAT else "0.5"
            return f"({v()} * {factor})"
        if roll == 4:
            return f"{self.pick(('abs', '-'))}({v()})"
        if kind is Kind.INT:
            choices = [f"({v()} % {self.pick(('3', '4', '-5'))})", f"length({v(Kind.TEXT)})",
                       f"CAST({self.predicate(ctx, depth)} AS INTEGER)",
                       f"sign({v(Kind.FLOAT)})", f"({v()} // {self.pick(('2', '3'))})"]
            dates = [c for c in ctx.cols if c.kind is Kind.DATE] if ctx.keys is None else []
            if dates:
                choices.append(f"extract({self.pick(('year', 'month', 'day'))} FROM "
                               f"{self.pick(dates).ref})")
            return self.pick(choices)
        if kind is Kind.FLOAT:
            return self.pick((f"CAST({v(Kind.INT)} AS DOUBLE)", f"round({v()}, 1)",
                              f"({v()} / NULLIF({v()}, 0))", f"sqrt(abs({v()}))",
                              f"CAST({v(Kind.DECIMAL)} AS DOUBLE)"))
        return self.pick((f"CAST({v(Kind.INT)} AS DECIMAL(18, 2))", f"round({v()}, 1)",
                          f"CAST({v(Kind.FLOAT)} AS DECIMAL(12, 2))"))

    def _text(self, ctx: Ctx, depth: int) -> str:
        def v(k: Kind = Kind.TEXT) -> str:
            return self.value(k, ctx, depth)

        other = self.pick((Kind.INT, Kind.DECIMAL, Kind.DATE, Kind.BOOL, Kind.FLOAT))
        return self.pick((f"({v()} || {v()})", f"upper({v()})", f"lower({v()})",
                          f"substr({v()}, 1, 2)", f"CAST({self.value(other, ctx, depth)} AS "
                          f"VARCHAR)", f"concat({v()}, {v()})", f"replace({v()}, 'a', 'x')",
                          f"trim({v()})", f"left({v()}, 1)"))

    def _time(self, kind: Kind, ctx: Ctx, depth: int) -> str | None:
        def v(k: Kind = kind) -> str:
            return self.value(k, ctx, depth)

        if kind is Kind.DATE:
            return self.pick((f"CAST({v(Kind.TIMESTAMP)} AS DATE)", f"last_day({v()})",
                              f"({v()} + {self.pick(('1', '7', '-2'))})"))
        unit = self.pick(("HOUR", "DAY", "MINUTE"))
        if kind is Kind.TIMESTAMP:
            return self.pick((f"CAST({v(Kind.DATE)} AS TIMESTAMP)",
                              f"({v()} + INTERVAL 1 {unit})", f"date_trunc('day', {v()})"))
        return self.pick((f"({v()} - INTERVAL 2 {unit})", f"CAST({v(Kind.TIMESTAMP)} AS "
                                                          "TIMESTAMPTZ)"))

    # Predicates ------------------------------------------------------------------------------

    def comparable_kind(self, ctx: Ctx) -> Kind:
        present = [c.kind for c in ctx.cols] + [k.kind for k in ctx.keys or []]
        if present and self.chance(0.85):
            return self.pick(present)
        return self.pick(tuple(Kind))

    def simple_predicate(self, ctx: Ctx) -> str | None:  # noqa: PLR0911 - one return per form
        """`column op literal` and its kin: what pushdown and pruning read."""
        col = self.column(None, ctx, outer=False)
        if col is None:
            return None
        c = col.ref
        kind = col.kind

        def lit() -> str:
            return self.literal(kind, loose=self.chance(0.5))

        if kind is Kind.BOOL:
            return self.pick((c, f"NOT {c}", f"{c} = {lit()}", f"{c} IS NULL",
                              f"{c} IS NOT NULL", f"{c} <> {lit()}"))
        if kind in NUMERIC and self.chance(0.3):
            other = self.pick(NUMERIC)
            return f"{c} {self.pick(COMPARE)} {self.literal(other, loose=True)}"
        if kind is Kind.TEXT and self.chance(0.25):
            pattern = quote(self.pick(LIKE_PATTERNS))
            return f"{c} {self.pick(('LIKE', 'NOT LIKE', 'ILIKE'))} {pattern}"
        roll = self.st.rng.randint(0, 9)
        if roll <= 4:
            return f"{c} {self.pick(COMPARE)} {lit()}"
        if roll == 5:
            return f"{lit()} {self.pick(COMPARE)} {c}"
        if roll == 6:
            values = [lit() for _ in range(self.st.rng.randint(1, 4))]
            if self.chance(0.2):
                values.append("NULL")
            return f"{c} {self.pick(('IN', 'NOT IN', 'IN'))} ({', '.join(values)})"
        if roll == 7:
            return f"{c} {self.pick(('BETWEEN', 'NOT BETWEEN', 'BETWEEN'))} {lit()} AND {lit()}"
        if roll == 8:
            return f"{c} IS {self.pick(('', 'NOT '))}NULL"
        return f"NOT ({c} {self.pick(COMPARE)} {lit()})"

    def predicate(self, ctx: Ctx, depth: int) -> str:  # noqa: PLR0911
        roll = self.st.rng.random()
        if depth <= 0 or roll < 0.3:
            if ctx.keys is None:
                found = self.simple_predicate(ctx)
                if found is not None:
                    return found
            return self.comparison(ctx, 0)
        if roll < 0.5:
            return self.comparison(ctx, depth - 1)
        if roll < 0.62:
            op = self.pick(("AND", "OR"))
            return f"({self.predicate(ctx, depth - 1)} {op} {self.predicate(ctx, depth - 1)})"
        if roll < 0.67:
            return f"NOT ({self.predicate(ctx, depth - 1)})"
        if roll < 0.73:
            kind = self.comparable_kind(ctx)
            v = self.value(kind, ctx, depth - 1)
            return self.pick((f"{v} IS NULL", f"{v} IS NOT NULL",
                              f"({v} IS DISTINCT FROM {self.value(kind, ctx, depth - 1)})",
                              f"({v} IS NOT DISTINCT FROM {self.value(kind, ctx, depth - 1)})"))
        if roll < 0.78:
            kind = self.comparable_kind(ctx)
            values = ", ".join(self.value(kind, ctx, 0) for _ in range(self.st.rng.randint(1, 4)))
            return f"{self.value(kind, ctx, depth - 1)} {self.pick(('IN', 'NOT IN'))} ({values})"
        if roll < 0.84:
            kind = self.comparable_kind(ctx)
            return (f"{self.value(kind, ctx, depth - 1)} {self.pick(('', 'NOT '))}BETWEEN "
                    f"{self.value(kind, ctx, 0)} AND {self.value(kind, ctx, 0)}")
        if roll < 0.87:
            pattern = quote(self.pick(LIKE_PATTERNS))
            text = self.value(Kind.TEXT, ctx, depth - 1)
            return f"{text} {self.pick(('LIKE', 'NOT LIKE'))} {pattern}"
        if ctx.subqueries and not ctx.simple and not ctx.in_aggregate:
            found = self._subquery_predicate(ctx, depth - 1)
            if found is not None:
                return found
        return self.comparison(ctx, depth - 1)

    def comparison(self, ctx: Ctx, depth: int) -> str:
        kind = self.comparable_kind(ctx)
        other = self.pick(FAMILY[kind])
        return (f"({self.value(kind, ctx, depth)} {self.pick(COMPARE)} "
                f"{self.value(other, ctx, depth)})")

    def _subquery_predicate(self, ctx: Ctx, depth: int) -> str | None:  # noqa: PLR0911
        roll = self.st.rng.random()
        if roll < 0.45:
            kind = self.comparable_kind(ctx)
            inner = self.column_subquery(kind, ctx, depth)
            if inner is None:
                return None
            self.st.uses.add("in_subquery")
            return f"{self.value(kind, ctx, depth)} {self.pick(('IN', 'NOT IN', 'IN'))} {inner}"
        if roll < 0.75:
            inner = self.exists_subquery(ctx, depth)
            if inner is None:
                return None
            self.st.uses.add("exists")
            return f"{self.pick(('', 'NOT '))}EXISTS {inner}"
        if roll < 0.85:
            kind = self.comparable_kind(ctx)
            inner = self.column_subquery(kind, ctx, depth)
            if inner is None:
                return None
            self.st.uses.add("quantified")
            return (f"({self.value(kind, ctx, depth)} {self.pick(COMPARE)} "
                    f"{self.pick(('ANY', 'ALL'))} {inner})")
        kind = self.comparable_kind(ctx)
        inner = self.scalar_subquery(kind, ctx, depth)
        if inner is None:
            return None
        return f"({self.value(kind, ctx, depth)} {self.pick(COMPARE)} {inner})"

    # Aggregates ------------------------------------------------------------------------------

    def aggregate(self, kind: Kind, ctx: Ctx, depth: int) -> str | None:  # noqa: PLR0911, PLR0912
        """An aggregate whose result is of `kind` over the context's rows (None if there is
        none to be had); only SUM, COUNT, MIN, MAX and AVG in a query meant to split."""
        if ctx.in_aggregate:
            return None
        self.st.uses.add("aggregate")
        row = ctx.row()  # over this query's rows only: no enclosing query's column

        def arg(k: Kind) -> str:
            return self.value(k, row, depth)

        distinct = "DISTINCT " if not ctx.simple and self.chance(0.15) else ""
        if kind is Kind.INT:
            roll = self.st.rng.randint(0, 5)
            if roll <= 1:
                return "count(*)"
            if roll == 2:
                return f"count({distinct}{arg(self.pick(tuple(Kind)))})"
            if roll == 3:
                return f"sum({distinct}{arg(Kind.INT)})"
            return f"{self.pick(('min', 'max'))}({arg(Kind.INT)})"
        if kind is Kind.FLOAT:
            if self.chance(0.5):
                return f"avg({distinct}{arg(self.pick(NUMERIC))})"
            if not ctx.simple and self.chance(0.15):
                return f"{self.pick(('stddev_pop', 'var_pop'))}({arg(Kind.FLOAT)})"
            return f"{self.pick(('sum', 'min', 'max'))}({arg(Kind.FLOAT)})"
        if kind is Kind.DECIMAL:
            return f"{self.pick(('sum', 'min', 'max'))}({arg(Kind.DECIMAL)})"
        if kind is Kind.BOOL:
            if ctx.simple:
                return None
            return f"{self.pick(('bool_and', 'bool_or'))}({self.predicate(row, depth)})"
        if kind is Kind.TEXT and not ctx.simple and self.chance(0.3):
            value = arg(Kind.TEXT)
            if any(c.ref in value for c in ctx.cols):  # ORDER BY a literal is refused
                return f"string_agg({distinct}{value}, ',' ORDER BY {value})"
        return f"{self.pick(('min', 'max'))}({arg(kind)})"
