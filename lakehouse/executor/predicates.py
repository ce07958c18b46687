"""A scan's predicate (DuckDB SQL over a table's columns) as a pyarrow dataset filter.

Only what translates exactly becomes part of the filter: comparisons of a column with a constant,
IN lists, BETWEEN, IS [NOT] NULL, and AND/OR/NOT of those. A conjunct that does not translate is
left out, which only means the scan keeps more rows: the query's SQL filters them anyway.
Constant sub-expressions (`DATE '1994-01-01' + INTERVAL 1 YEAR`, `0.06 - 0.01`) are evaluated
once, by DuckDB, so the literal has the value the query means.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import sqlglot
from sqlglot import exp

from lakehouse.executor.sandbox import planning_database
from lakehouse.sql.plan import conjuncts

log = logging.getLogger(__name__)

_COMPARE = {exp.EQ: "equal", exp.NEQ: "not_equal", exp.LT: "less", exp.LTE: "less_equal",
            exp.GT: "greater", exp.GTE: "greater_equal"}
_MIRROR = {"less": "greater", "less_equal": "greater_equal", "greater": "less",
           "greater_equal": "less_equal", "equal": "equal", "not_equal": "not_equal"}


class Untranslatable(Exception):
    """This part of the predicate stays with DuckDB."""


def arrow_filter(predicate: str | None, schema: pa.Schema) -> ds.Expression | None:
    """The conjuncts of `predicate` that translate, ANDed; None when none does."""
    if not predicate:
        return None
    try:
        tree = sqlglot.parse_one(predicate, read="duckdb")
    except sqlglot.errors.ParseError:
        return None
    parts = []
    for conjunct in conjuncts(tree):
        try:
            parts.append(_translate(conjunct, schema))
        except (Untranslatable, pa.ArrowException, ValueError, TypeError, OverflowError,
                decimal.InvalidOperation, duckdb.Error) as exc:
            # OverflowError: a constant outside the column's type (2^64 against a BIGINT,
            # 1e400 against an integer), which DuckDB compares exactly.
            log.debug("predicate part left to DuckDB", extra={"part": conjunct.sql()[:200],
                                                              "why": str(exc)[:200]})
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part
    return combined


def _translate(node: exp.Expr, schema: pa.Schema) -> ds.Expression:  # noqa: PLR0911 - per form
    node = node.unnest()
    if isinstance(node, exp.And):
        return _translate(node.left, schema) & _translate(node.right, schema)
    if isinstance(node, exp.Or):
        return _translate(node.left, schema) | _translate(node.right, schema)
    if isinstance(node, exp.Not):
        return ~_translate(node.this, schema)
    if isinstance(node, exp.Binary) and type(node) in _COMPARE:
        name = _COMPARE[type(node)]
        left, right = node.left.unnest(), node.right.unnest()
        if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
            left, right, name = right, left, _MIRROR[name]
        column = _column(left, schema)
        value = _constant(right, schema.field(column).type)
        return getattr(pc, name)(pc.field(column), value)  # type: ignore[no-any-return]
    if isinstance(node, exp.Between):
        column = _column(node.this, schema)
        kind = schema.field(column).type
        low, high = (_constant(node.args["low"], kind), _constant(node.args["high"], kind))
        return (pc.field(column) >= low) & (pc.field(column) <= high)
    if isinstance(node, exp.In) and node.expressions and not node.args.get("query"):
        column = _column(node.this, schema)
        kind = schema.field(column).type
        values = pa.array([_constant(v, kind).as_py() for v in node.expressions], type=kind)
        return pc.field(column).isin(values)  # type: ignore[no-any-return]
    if isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
        return pc.field(_column(node.this, schema)).is_null()  # type: ignore[no-any-return]
    raise Untranslatable(type(node).__name__)


def _column(node: exp.Expr, schema: pa.Schema) -> str:
    node = node.unnest()
    if not isinstance(node, exp.Column):
        raise Untranslatable("not a column")
    name = node.name
    index = schema.get_field_index(name)
    if index < 0:
        raise Untranslatable(f"no column {name}")
    kind = schema.field(index).type
    if pa.types.is_nested(kind):
        raise Untranslatable("nested column")
    return name


# Functions with a new value at each call: folded once, `x < random()` would compare every row
# with one draw (DuckDB draws per row), and prune row groups by it.
_VOLATILE = frozenset({"RAND", "RANDN", "RANDOM", "SETSEED", "UUID", "GEN_RANDOM_UUID", "UUIDV4",
                       "UUIDV7", "NEXTVAL", "CURRVAL"})


def _volatile(node: exp.Expr) -> bool:
    return any(isinstance(n, exp.Func) and (
        n.name.upper() if isinstance(n, exp.Anonymous) else n.sql_name()) in _VOLATILE
        for n in node.walk())


def _constant(node: exp.Expr, kind: pa.DataType) -> pa.Scalar:
    """The value of a constant expression, in the column's type (or Untranslatable)."""
    if any(isinstance(n, exp.Column | exp.Subquery | exp.Select) for n in node.walk()):
        raise Untranslatable("not a constant")
    if _volatile(node):
        raise Untranslatable("a new value at each call")
    with planning_database() as database:
        value = database.execute(f"SELECT {node.sql(dialect='duckdb')}").fetchone()
    if value is None or value[0] is None:
        raise Untranslatable("null constant")
    return pa.scalar(_coerce(value[0], kind), type=kind)


def _coerce(value: Any, kind: pa.DataType) -> Any:  # noqa: PLR0911 - one return per type
    if pa.types.is_decimal(kind):
        exact = decimal.Decimal(str(value))
        if exact != exact.quantize(decimal.Decimal(1).scaleb(-kind.scale)):
            raise Untranslatable("more digits than the column has")
        return exact
    if pa.types.is_integer(kind):
        if isinstance(value, float | decimal.Decimal) and value != int(value):
            raise Untranslatable("a fraction compared with an integer column")
        return int(value)
    if pa.types.is_floating(kind):
        return float(value)
    if pa.types.is_date(kind):
        if isinstance(value, dt.datetime):
            if value != dt.datetime.combine(value.date(), dt.time()):
                raise Untranslatable("a time of day compared with a date column")
            return value.date()
        if isinstance(value, dt.date):
            return value
        raise Untranslatable("not a date")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if not isinstance(value, str):
            raise Untranslatable("not a string")
        return value
    if pa.types.is_boolean(kind) and isinstance(value, bool):
        return value
    raise Untranslatable(f"type {kind}")
