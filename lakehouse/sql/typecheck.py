"""Type mismatches DuckDB would refuse at run time, found before anything runs.

Types come from sqlglot's annotate_types over the qualified tree and the SchemaView. Only clear
cases are reported: a string column compared with or added to a number, a timestamp compared with
a number, a sum or average of strings. A string literal next to a number is not one — DuckDB
casts literals — and anything of unknown type is given the benefit of the doubt.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.schema import MappingSchema

from lakehouse.sql.problems import Problem, problem_at
from lakehouse.sql.qualify import QUALIFY_ERRORS

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ,
                exp.NullSafeNEQ)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.IntDiv)
_NUMERIC_AGGREGATES = (exp.Sum, exp.Avg, exp.Stddev, exp.StddevPop, exp.StddevSamp,
                       exp.Variance, exp.VariancePop)


def _family(node: exp.Expr) -> str | None:
    """"text", "number" or "time" for a typed expression, None when unknown or mixed."""
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
