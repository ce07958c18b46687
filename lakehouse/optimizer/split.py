"""Cutting a query into a per-fragment part and a final merge (pure sqlglot rewrites).

An aggregate query splits when every aggregate is SUM, COUNT, MIN, MAX or AVG (no DISTINCT) and
the query has no subquery, window, DISTINCT or grouping sets: each fragment groups its rows by
the same keys and computes partial aggregates (AVG as a sum and a count); the final query groups
the union of the partials (the relation `partials`) and combines them, then applies HAVING,
ORDER BY and LIMIT. A top-N query (ORDER BY … LIMIT over plain rows) splits into a top-N per
fragment and the top-N of their union. Anything else does not split (None).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlglot import exp

DIALECT = "duckdb"
PARTIALS = "partials"
_SPLITTABLE = (exp.Sum, exp.Count, exp.Min, exp.Max, exp.Avg)


@dataclass(frozen=True, slots=True)
class Split:
    partial_sql: str
    final_sql: str
    kind: str  # "aggregate" or "top_n"


def split(tree: exp.Expr) -> Split | None:
    if not isinstance(tree, exp.Select) or not _plain(tree) or _orders_by_repeated_name(tree):
        return None
    if tree.args.get("group") is not None or _aggregates(tree):
        return _split_aggregate(tree)
    return _split_top_n(tree)


def _plain(select: exp.Select) -> bool:
    """No CTE, subquery, window, DISTINCT, grouping sets, QUALIFY or set operation inside."""
    if select.args.get("with_") or select.args.get("distinct") or select.args.get("qualify"):
        return False
    for node in select.walk():
        if node is select:
            continue
        if isinstance(node, exp.Select | exp.Subquery | exp.Window | exp.SetOperation
                      | exp.Lateral | exp.Unnest):
            return False
    group = select.args.get("group")
    return not (group is not None and (group.args.get("rollup") or group.args.get("cube")
                                       or group.args.get("grouping_sets")
                                       or group.args.get("all")))


def _orders_by_repeated_name(select: exp.Select) -> bool:
    """ORDER BY a name two outputs have (`SELECT a, -a AS a … ORDER BY a`): which one DuckDB
    sorts by depends on how each was named, which the merge cannot tell; one node answers."""
    order = select.args.get("order")
    if order is None:
        return False
    names = Counter(p.alias_or_name for p in select.expressions)
    return any(not c.table and names[c.name] > 1 for c in order.find_all(exp.Column))


def _aggregates(select: exp.Select) -> list[exp.AggFunc]:
    return list(select.find_all(exp.AggFunc))


def _split_aggregate(select: exp.Select) -> Split | None:
    aggregates = _aggregates(select)
    for found in aggregates:
        if not isinstance(found, _SPLITTABLE) or found.find(exp.Distinct) is not None:
            return None
        if isinstance(found, exp.Count) and found.args.get("big_int") is False:
            return None
    group = select.args.get("group")
    keys: list[exp.Expr] = list(group.expressions) if group is not None else []
    partial_columns, merged = _partial_columns(keys, aggregates)
    partial = select.copy()
    partial.set("expressions", partial_columns)
    for clause in ("having", "order", "limit", "offset"):
        partial.set(clause, None)

    final = select.copy()
    for clause in ("where", "joins", "from_", "group", "having", "order", "limit", "offset"):
        final.set(clause, None)
    final = final.from_(PARTIALS)
    if keys:
        final = final.group_by(*[exp.column(f"_g{i}") for i in range(len(keys))])
    rewritten = _final_expressions(select, merged, keys)
    if rewritten is None:
        return None
    projections, having, order = rewritten
    final.set("expressions", projections)
    if having is not None:
        final.set("having", exp.Having(this=having))
    if order is not None:
        final.set("order", order)
    for clause in ("limit", "offset"):
        if select.args.get(clause) is not None:
            final.set(clause, select.args[clause].copy())
    return Split(partial.sql(dialect=DIALECT), final.sql(dialect=DIALECT), "aggregate")


def _partial_columns(keys: list[exp.Expr], aggregates: list[exp.AggFunc],
                     ) -> tuple[list[exp.Expr], dict[str, exp.Expr]]:
    """The partial query's columns (keys `_gN`, partial aggregates `_aN`), and for each
    aggregate (by its SQL) the expression that merges its partials."""
    partial_columns: list[exp.Expr] = [k.copy().as_(f"_g{i}") for i, k in enumerate(keys)]
    merged: dict[str, exp.Expr] = {}
    for found in aggregates:
        text = found.sql(dialect=DIALECT)
        if text in merged:
            continue
        n = len(merged)
        if isinstance(found, exp.Avg):
            partial_columns += [exp.Sum(this=found.this.copy()).as_(f"_a{n}s"),
                                exp.Count(this=found.this.copy()).as_(f"_a{n}c")]
            merged[text] = exp.Div(
                this=exp.Cast(this=exp.Sum(this=exp.column(f"_a{n}s")),
                              to=exp.DataType.build("DOUBLE")),
                expression=exp.Sum(this=exp.column(f"_a{n}c")))
            continue
        partial_columns.append(found.copy().as_(f"_a{n}"))
        column = exp.column(f"_a{n}")
        if isinstance(found, exp.Count):
            merged[text] = exp.Cast(
                this=exp.Coalesce(this=exp.Sum(this=column), expressions=[exp.Literal.number(0)]),
                to=exp.DataType.build("BIGINT"))
        elif isinstance(found, exp.Sum):
            merged[text] = exp.Sum(this=column)
        else:
            merged[text] = type(found)(this=column)
    return partial_columns, merged


def _final_expressions(select: exp.Select, merged: dict[str, exp.Expr], keys: list[exp.Expr],
                       ) -> tuple[list[exp.Expr], exp.Expr | None, exp.Order | None] | None:
    def rewrite(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.AggFunc):
            return merged[node.sql(dialect=DIALECT)].copy()
        for i, key in enumerate(keys):
            if node == key:
                return exp.column(f"_g{i}")
        return node

    projections = [p.copy().transform(rewrite) for p in select.expressions]
    having_node = select.args.get("having")
    having = having_node.this.copy().transform(rewrite) if having_node is not None else None
    order_node = select.args.get("order")
    order = order_node.copy().transform(rewrite) if order_node is not None else None
    outputs = {p.alias_or_name for p in projections}
    for part in [*projections, having, order]:
        if part is None:
            continue
        for column in part.find_all(exp.Column):
            # Only the partial columns may remain (and output names, in ORDER BY).
            if column.table or not (column.name.startswith(("_g", "_a"))
                                    or (part is order and column.name in outputs)):
                return None
    return projections, having, order if isinstance(order, exp.Order) else None


def _split_top_n(select: exp.Select) -> Split | None:
    order, limit = select.args.get("order"), select.args.get("limit")
    if order is None or limit is None or not isinstance(limit.expression, exp.Literal):
        return None
    count = int(limit.expression.name)
    offset = select.args.get("offset")
    if offset is not None:
        if not isinstance(offset.expression, exp.Literal):
            return None
        count += int(offset.expression.name)
    if any(isinstance(p, exp.Star) for p in select.expressions):
        return None
    # The partial results name their columns by position (`_o0`, `_o1`, …): two outputs may
    # share a name (`SELECT a, -a AS a`), and the merge reads its partials by name.
    outputs = {p.alias_or_name: i for i, p in enumerate(select.expressions)}
    keys = []
    for key in order.expressions:
        target = key.this
        name = target.name if isinstance(target, exp.Column) and not target.table else None
        if name is None or name not in outputs:
            return None
        keys.append(exp.Ordered(this=exp.column(f"_o{outputs[name]}"), desc=key.args.get("desc"),
                                nulls_first=key.args.get("nulls_first")))
    partial = select.copy()
    partial.set("expressions", [(p.this if isinstance(p, exp.Alias) else p).copy().as_(f"_o{i}")
                                for i, p in enumerate(select.expressions)])
    partial.set("order", exp.Order(expressions=[k.copy() for k in keys]))
    partial.set("offset", None)
    partial.set("limit", exp.Limit(expression=exp.Literal.number(count)))
    final = exp.select(*[exp.column(f"_o{i}").as_(p.alias_or_name, quoted=True)
                         for i, p in enumerate(select.expressions)]).from_(PARTIALS)
    final.set("order", exp.Order(expressions=keys))
    final.set("limit", limit.copy())
    if offset is not None:
        final.set("offset", offset.copy())
    return Split(partial.sql(dialect=DIALECT), final.sql(dialect=DIALECT), "top_n")
