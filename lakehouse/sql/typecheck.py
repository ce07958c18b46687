"""Type mismatches DuckDB would refuse at run time, found before anything runs.

Types come from sqlglot's annotate_types over the qualified tree and the SchemaView. Only clear
cases are reported: a string column ordered against (`<`, `>`) or added to a number, a timestamp
ordered against a number, a sum or average of strings. A string literal next to a number is not
one (DuckDB casts literals), nor is a DATE plus or minus a small integer (days, as DuckDB adds
them); anything of unknown type is given the benefit of the doubt. These rules place the common
mistakes at a line and column; whatever they let through, DuckDB's binder judges next
(lakehouse/sql/binder.py). A refusal here must never be one DuckDB would not make
(tests/unit/test_typecheck_vs_duckdb.py holds the two side by side).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.schema import MappingSchema

from lakehouse.sql.problems import Problem, problem_at
from lakehouse.sql.qualify import QUALIFY_ERRORS

# Ordering comparisons only: DuckDB's binder accepts `=` and `<>` (and IS [NOT] DISTINCT FROM)
# between any of text, numbers and times, casting one side, and refuses `<`, `>` between families.
_COMPARISONS = (exp.GT, exp.GTE, exp.LT, exp.LTE)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.IntDiv)
# DuckDB adds and subtracts these as a number of days to or from a DATE (not BIGINT or wider).
_DAY_COUNTS = frozenset({exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT,
                         exp.DataType.Type.INT, exp.DataType.Type.UTINYINT,
                         exp.DataType.Type.USMALLINT})
_NUMERIC_AGGREGATES = (exp.Sum, exp.Avg, exp.Stddev, exp.StddevPop, exp.StddevSamp,
                       exp.Variance, exp.VariancePop)


def _is(node: exp.Expr, kinds: Collection[object]) -> bool:
    return node.type is not None and node.type.this in kinds


def _date_arithmetic(node: exp.Expr) -> bool:
    """`date ± days` and `days + date`: DuckDB's DATE arithmetic, a DATE."""
    date = {exp.DataType.Type.DATE}
    if isinstance(node, exp.Add):
        return (_is(node.left, date) and _is(node.right, _DAY_COUNTS)) or (
            _is(node.left, _DAY_COUNTS) and _is(node.right, date))
    return isinstance(node, exp.Sub) and _is(node.left, date) and _is(node.right, _DAY_COUNTS)


def _family(node: exp.Expr) -> str | None:  # noqa: PLR0911 - one return per family
    """"text", "number" or "time" for a typed expression, None when unknown or mixed."""
    if _date_arithmetic(node):
        return "time"  # sqlglot types `1 + date` as the integer
    if isinstance(node, exp.Sub) and _is(node.left, exp.DataType.TEMPORAL_TYPES) and _is(
            node.right, exp.DataType.TEMPORAL_TYPES):
        # DATE - DATE is a number of days; TIMESTAMP - TIMESTAMP an interval
        both_dates = _is(node.left, {exp.DataType.Type.DATE}) and _is(
            node.right, {exp.DataType.Type.DATE})
        return "number" if both_dates else None
    kind = node.type
    if kind is None:
        return None
    if kind.this in exp.DataType.TEXT_TYPES:
        # An untyped string literal is cast by DuckDB to whatever it is compared with.
        return None if isinstance(node, exp.Literal) else "text"
    if kind.this in exp.DataType.NUMERIC_TYPES:
        return "number"
    if kind.this in exp.DataType.TEMPORAL_TYPES:
        return "time"
    return None


def _describe(node: exp.Expr) -> str:
    return node.sql(dialect="duckdb")[:60]


def comparisons(tree: exp.Expr) -> list[Problem]:
    problems = []
    for node in tree.find_all(*_COMPARISONS, *_ARITHMETIC):
        left, right = node.left, node.right
        families = {_family(left), _family(right)}
        if _date_arithmetic(node):
            continue
        if families in ({"text", "number"}, {"time", "number"}):
            what = "compare" if isinstance(node, _COMPARISONS) else "combine"
            problems.append(problem_at(node, "type_mismatch",
                                       f"cannot {what} {_describe(left)} ({left.type}) with "
                                       f"{_describe(right)} ({right.type})"))
    return problems


def aggregates(tree: exp.Expr) -> list[Problem]:
    problems = []
    for node in tree.find_all(*_NUMERIC_AGGREGATES):
        argument = node.this
        if isinstance(argument, exp.Expr) and _family(argument) == "text":
            problems.append(problem_at(node, "type_mismatch",
                                       f"{node.key}() needs numbers; {_describe(argument)} is "
                                       f"{argument.type}"))
    return problems


TYPE_RULES: tuple[Callable[[exp.Expr], list[Problem]], ...] = (comparisons, aggregates)


def typecheck(tree: exp.Expr, schema: MappingSchema, dialect: str) -> list[Problem]:
    """The type mismatches in a qualified tree (empty when none is certain)."""
    try:
        typed = annotate_types(tree.copy(), schema=schema, dialect=dialect)
    except QUALIFY_ERRORS:
        return []  # types are a courtesy check; the engine still refuses what is wrong
    problems: list[Problem] = []
    for rule in TYPE_RULES:
        problems.extend(rule(typed))
    return problems
