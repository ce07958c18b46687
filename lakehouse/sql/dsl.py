"""The JSON query DSL as frozen values, and its translation into one sqlglot tree.

    {"from": "orders", "as": "o", "select": [...], "where": <condition>, "group_by": [...],
     "having": <condition>, "order_by": [...], "limit": 10, "offset": 0, "distinct": false,
     "joins": [{"table": "customers", "as": "c", "type": "left",
                "on": [{"left": "o.customer_id", "right": "c.id"}]}]}

A condition is {"column", "op", "value"} (optionally with "agg" in HAVING), {"and": [...]},
{"or": [...]}, {"not": condition}, or a SQL expression string. Names are checked against a plain
identifier pattern and values become literals through sqlglot: user text is never pasted into
SQL. A SQL string is parsed as one expression; the tree built here then goes through the same
guard and qualification as any SQL query, so the DSL cannot reach what SQL may not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from lakehouse.errors import InvalidInput
from lakehouse.sql.parse import DEFAULT_DIALECT

Value: TypeAlias = str | int | float | bool | None
PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")  # tables and aliases
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62}){0,3}")
MAX_EXPRESSION_CHARS = 10_000

COMPARISONS = {"=": exp.EQ, "!=": exp.NEQ, "<>": exp.NEQ, "<": exp.LT, "<=": exp.LTE,
               ">": exp.GT, ">=": exp.GTE}
OPS = frozenset({*COMPARISONS, "in", "not_in", "like", "not_like", "ilike", "between",
                 "is_null", "is_not_null"})
AGGREGATES = {"count": exp.Count, "sum": exp.Sum, "avg": exp.Avg, "min": exp.Min,
              "max": exp.Max}
AGGREGATE_NAMES = frozenset({*AGGREGATES, "count_distinct"})
JOIN_TYPES = frozenset({"inner", "left", "right", "full", "cross"})


@dataclass(frozen=True, slots=True)
class Compare:
    column: str  # "total", "o.total" or a struct field "c.profile.age"
    op: str  # one of OPS
    value: Value | tuple[Value, ...] = None  # a tuple for in / not_in / between
    agg: str | None = None  # compare an aggregate of the column (HAVING)


@dataclass(frozen=True, slots=True)
class AllOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Negate:
    condition: Condition


@dataclass(frozen=True, slots=True)
class SqlCondition:
    sql: str  # one SQL expression, parsed on its own


Condition: TypeAlias = Compare | AllOf | AnyOf | Negate | SqlCondition


@dataclass(frozen=True, slots=True)
class Output:
    """One result column: a column, an aggregate of one (column "*" for count), or a SQL
    expression; `alias` names it."""

    column: str | None = None
    agg: str | None = None
    expression: str | None = None
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class JoinOn:
    left: str
    right: str


@dataclass(frozen=True, slots=True)
class Join:
    table: str
    alias: str | None = None
    type: str = "inner"
    on: tuple[JoinOn, ...] | SqlCondition = ()


@dataclass(frozen=True, slots=True)
class OrderKey:
    column: str | None = None
    expression: str | None = None
    descending: bool = False
    nulls_first: bool | None = None


@dataclass(frozen=True, slots=True)
class DslQuery:
    table: str
    alias: str | None = None
    select: tuple[Output, ...] = ()  # empty: every column
    where: Condition | None = None
    group_by: tuple[str, ...] = ()
    having: Condition | None = None
    order_by: tuple[OrderKey, ...] = ()
    limit: int | None = None
    offset: int | None = None
    joins: tuple[Join, ...] = ()
    distinct: bool = False


def _bad(message: str, **details: object) -> InvalidInput:
    return InvalidInput(message, code="invalid_dsl", details=details)


def _name(text: str, what: str) -> exp.Identifier:
    if not isinstance(text, str) or not PLAIN_NAME.fullmatch(text):
        raise _bad(f"{what} must be a plain name (letters, digits, '_')", value=str(text)[:80])
    return exp.to_identifier(text)


def column(text: str) -> exp.Expr:
    if not isinstance(text, str) or not _PATH.fullmatch(text):
        raise _bad("a column is a name, optionally prefixed by a table alias and followed by "
                   "struct fields: total, o.total, c.profile.age", value=str(text)[:80])
    return exp.to_column(text)


def sql_expression(text: str, dialect: str = DEFAULT_DIALECT) -> exp.Expr:
    """One SQL expression (never a statement): `total * 2`, `city = 'Oslo' OR age > 30`."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise _bad(f"a SQL expression is at most {MAX_EXPRESSION_CHARS} characters")
    try:
        return sqlglot.parse_one(text, read=dialect, into=exp.Condition)  # type: ignore[arg-type]
    except (ParseError, TokenError, RecursionError) as exc:
        raise _bad("not a SQL expression", expression=text[:200]) from exc


def _literal(value: object) -> exp.Expr:
    if isinstance(value, list | tuple | dict):
        raise _bad("this operator takes one value, not a list or object")
    return exp.convert(value)


def _values(value: Value | tuple[Value, ...], op: str, count: int | None = None) -> list[exp.Expr]:
    if not isinstance(value, tuple) or (count is not None and len(value) != count):
        raise _bad(f"{op} takes a list of {count or 'some'} values")
    return [_literal(v) for v in value]


def _compare(cond: Compare) -> exp.Expr:
    if cond.op not in OPS:
        raise _bad(f"unknown operator {cond.op[:20]!r}", operators=sorted(OPS))
    target = _aggregate(cond.agg, cond.column) if cond.agg else column(cond.column)
    if cond.op in COMPARISONS:
        return COMPARISONS[cond.op](this=target, expression=_literal(cond.value))  # type: ignore[arg-type]
    if cond.op in ("in", "not_in"):
        found = exp.In(this=target, expressions=_values(cond.value, cond.op))
        return exp.Not(this=found) if cond.op == "not_in" else found
    if cond.op in ("like", "not_like", "ilike"):
        kind = exp.ILike if cond.op == "ilike" else exp.Like
        matched = kind(this=target, expression=_literal(cond.value))
        return exp.Not(this=matched) if cond.op == "not_like" else matched
    if cond.op == "between":
        low, high = _values(cond.value, cond.op, 2)
        return exp.Between(this=target, low=low, high=high)
    is_null = exp.Is(this=target, expression=exp.Null())
    return is_null if cond.op == "is_null" else exp.Not(this=is_null)


def condition(cond: Condition, dialect: str = DEFAULT_DIALECT) -> exp.Expr:
    if isinstance(cond, Compare):
        return _compare(cond)
    if isinstance(cond, AllOf | AnyOf):
        if not cond.conditions:
            raise _bad("and / or need at least one condition")
        parts = [condition(c, dialect) for c in cond.conditions]
        joined = exp.and_(*parts) if isinstance(cond, AllOf) else exp.or_(*parts)
        return exp.Paren(this=joined) if len(parts) > 1 else joined
    if isinstance(cond, Negate):
        return exp.Not(this=exp.Paren(this=condition(cond.condition, dialect)))
    return exp.Paren(this=sql_expression(cond.sql, dialect))


def _aggregate(name: str | None, target: str | None) -> exp.Expr:
    agg = (name or "").lower()
    if agg not in AGGREGATE_NAMES:
        raise _bad(f"unknown aggregate {agg[:20]!r}", aggregates=sorted(AGGREGATE_NAMES))
    if target in (None, "*"):
        if agg != "count":
            raise _bad(f"{agg} needs a column")
        return exp.Count(this=exp.Star())
    if agg == "count_distinct":
        return exp.Count(this=exp.Distinct(expressions=[column(target)]))
    return AGGREGATES[agg](this=column(target))


def _output(out: Output, dialect: str) -> exp.Expr:
    if sum(x is not None for x in (out.column, out.expression)) > 1:
        raise _bad("a select item has a column or an expression, not both")
    if out.agg is not None:
        node = _aggregate(out.agg, out.column)
    elif out.expression is not None:
        node = sql_expression(out.expression, dialect)
    elif out.column is not None:
        node = column(out.column)
    else:
        raise _bad("a select item needs a column, an aggregate or an expression")
    return exp.alias_(node, _name(out.alias, "an alias")) if out.alias else node


def _join(join: Join, dialect: str) -> exp.Join:
    if join.type not in JOIN_TYPES:
        raise _bad(f"unknown join type {join.type[:20]!r}", types=sorted(JOIN_TYPES))
    table = exp.Table(this=_name(join.table, "a table"))
    if join.alias:
        table.set("alias", exp.TableAlias(this=_name(join.alias, "an alias")))
    node = exp.Join(this=table)
    if join.type == "cross":
        node.set("kind", "CROSS")
        return node
    if join.type != "inner":
        node.set("side", join.type.upper())
    if isinstance(join.on, SqlCondition):
        node.set("on", sql_expression(join.on.sql, dialect))
    elif join.on:
        node.set("on", exp.and_(*(exp.EQ(this=column(p.left), expression=column(p.right))
                                  for p in join.on)))
    else:
        raise _bad(f"a {join.type} join needs `on`")
    return node


def _order(key: OrderKey, dialect: str) -> exp.Ordered:
    if (key.column is None) == (key.expression is None):
        raise _bad("an order_by item has a column or an expression")
    node = column(key.column) if key.column is not None else sql_expression(
        key.expression or "", dialect)
    nulls_first = key.nulls_first if key.nulls_first is not None else False
    return exp.Ordered(this=node, desc=key.descending, nulls_first=nulls_first)


def to_tree(query: DslQuery, dialect: str = DEFAULT_DIALECT) -> exp.Select:
    """The SELECT the DSL query means (checked for shape here, for meaning by the guard)."""
    table = exp.Table(this=_name(query.table, "`from`"))
    if query.alias:
        table.set("alias", exp.TableAlias(this=_name(query.alias, "an alias")))
    outputs = [_output(o, dialect) for o in query.select] or [exp.Star()]
    select = exp.Select(expressions=outputs, from_=exp.From(this=table))
    if query.distinct:
        select.set("distinct", exp.Distinct())
    if query.joins:
        select.set("joins", [_join(j, dialect) for j in query.joins])
    if query.where is not None:
        select.set("where", exp.Where(this=condition(query.where, dialect)))
    if query.group_by:
        select.set("group", exp.Group(expressions=[column(c) for c in query.group_by]))
    if query.having is not None:
        select.set("having", exp.Having(this=condition(query.having, dialect)))
    if query.order_by:
        select.set("order", exp.Order(expressions=[_order(k, dialect) for k in query.order_by]))
    for key, number in (("limit", query.limit), ("offset", query.offset)):
        if number is not None:
            if isinstance(number, bool) or not isinstance(number, int) or number < 0:
                raise _bad(f"{key} must be a whole number >= 0")
            node = exp.Limit if key == "limit" else exp.Offset
            select.set(key, node(expression=exp.Literal.number(number)))
    return select
