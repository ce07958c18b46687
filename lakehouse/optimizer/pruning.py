"""File pruning by statistics: which files a predicate cannot rule out (pure).

A predicate is a conjunction of simple comparisons between a column and literals (a sqlglot
tree, or SQL text a user gave). A file is pruned only when its min/max statistics prove that no
row can match; anything the rules do not understand keeps the file (pruning must never drop a
matching row).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from lakehouse.catalog.lake import ColumnStats, DataFile
from lakehouse.errors import InvalidInput
from lakehouse.sql.literals import out_of_range, whole_number
from lakehouse.sql.parse import parse_condition
from lakehouse.sql.plan import conjuncts
from lakehouse.sql.problems import refusal
from lakehouse.sql.syntax_errors import syntax_problem, token_problem

Value = int | float | str | bool


@dataclass(frozen=True, slots=True)
class Comparison:
    column: str
    op: str  # "=", "<", "<=", ">", ">=", "in", "between", "is_null", "not_null"
    values: tuple[Value, ...] = ()


_OPS = {exp.EQ: "=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
_FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "="}


def parse_filter(text: str) -> tuple[Comparison, ...]:
    """The comparisons of a SQL boolean expression that pruning can use (others are ignored,
    which only means fewer files are pruned). Refused like a query's condition would be: text
    that is not SQL, nesting past the parser's bound, a number larger than a query may hold."""
    try:
        tree = parse_condition(text)
    except ParseError as exc:
        problem = (syntax_problem(exc.errors[0]).message if exc.errors
                   else "it cannot be read as SQL")
        raise InvalidInput("the filter is not a SQL condition", code="invalid_filter",
                           details={"problem": problem[:300]}) from exc
    except TokenError as exc:  # an unterminated string or quoted name
        raise InvalidInput("the filter is not a SQL condition", code="invalid_filter",
                           details={"problem": token_problem(str(exc)[:200]).message}) from exc
    too_large = out_of_range(tree)
    if too_large:
        raise refusal(too_large)
    return comparisons_of(tree)


def comparisons_of(condition: exp.Expr) -> tuple[Comparison, ...]:
    """The comparisons of a condition's conjuncts that pruning can use."""
    return tuple(c for part in conjuncts(condition) if (c := _comparison(part)) is not None)


def _comparison(node: Any) -> Comparison | None:  # noqa: PLR0911 - one return per form
    for kind, op in _OPS.items():
        if isinstance(node, kind):
            left, right = node.left, node.right
            if isinstance(left, exp.Column) and (value := _literal(right)) is not None:
                return Comparison(left.name, op, (value,))
            if isinstance(right, exp.Column) and (value := _literal(left)) is not None:
                return Comparison(right.name, _FLIPPED[op], (value,))
            return None
    if isinstance(node, exp.In) and isinstance(node.this, exp.Column):
        values = [_literal(v) for v in node.expressions]
        if values and all(v is not None for v in values):
            return Comparison(node.this.name, "in", tuple(v for v in values if v is not None))
    if isinstance(node, exp.Between) and isinstance(node.this, exp.Column):
        low, high = _literal(node.args["low"]), _literal(node.args["high"])
        if low is not None and high is not None:
            return Comparison(node.this.name, "between", (low, high))
    if isinstance(node, exp.Is) and isinstance(node.this, exp.Column) and isinstance(
            node.expression, exp.Null):
        return Comparison(node.this.name, "is_null")
    if isinstance(node, exp.Not) and isinstance(node.this, exp.Is) and isinstance(
            node.this.this, exp.Column):
        return Comparison(node.this.this.name, "not_null")
    return None


def _literal(node: Any) -> Value | None:
    if isinstance(node, exp.Neg):
        inner = _literal(node.this)
        return -inner if isinstance(inner, int | float) and not isinstance(inner, bool) else None
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return str(node.this)
        text = str(node.this)
        # A whole number past a HUGEINT is None: not used to prune (a query refuses it first).
        return float(text) if any(c in text for c in ".eE") else whole_number(node)
    if isinstance(node, exp.Cast) and isinstance(node.this, exp.Literal) and node.this.is_string:
        return _timestamp_us(str(node.this.this))  # TIMESTAMP '2026-11-26 10:00'
    return None


def _timestamp_us(text: str) -> int | None:
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1_000_000)


def has_upserts(file: DataFile) -> bool:
    """Its `_upsert` maximum is true: some data_id in it may replace versions elsewhere."""
    return any(s.column == "_upsert" and s.max is True for s in file.stats)


def may_match(file: DataFile, comparisons: Sequence[Comparison]) -> bool:
    """False only if the file's statistics prove no row satisfies every comparison."""
    stats = {s.column: s for s in file.stats}
    return all(_may_match(stats.get(c.column), c, file.row_count) for c in comparisons)


def stats_may_match(stats: ColumnStats | None, c: Comparison, rows: int) -> bool:
    """False only if these statistics prove no row satisfies the comparison."""
    return _may_match(stats, c, rows)


def _may_match(stats: ColumnStats | None, c: Comparison, rows: int) -> bool:
    if stats is None:
        return True
    if c.op == "is_null":
        return stats.null_count > 0
    if c.op == "not_null":
        return stats.null_count < rows
    low, high = stats.min, stats.max
    if low is None or high is None:
        return stats.null_count < rows and low is None  # no order known: keep unless all null
    try:
        return _range_test(c, low, high)
    except TypeError:  # a literal of another type than the column: the engine will decide
        return True


def _range_test(c: Comparison, low: Any, high: Any) -> bool:
    checks: dict[str, Callable[[], bool]] = {
        "=": lambda: low <= c.values[0] <= high,
        "<": lambda: low < c.values[0],
        "<=": lambda: low <= c.values[0],
        ">": lambda: high > c.values[0],
        ">=": lambda: high >= c.values[0],
        "in": lambda: any(low <= v <= high for v in c.values),
        "between": lambda: not (c.values[1] < low or c.values[0] > high),
    }
    return bool(checks[c.op]())
