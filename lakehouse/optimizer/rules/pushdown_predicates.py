"""Push each table's own conditions into its scan.

The logical plan already says which conditions read one table alone and may run below its joins
(not on the null-filled side of an outer join). A table read in several places gets the OR of
what each place needs, or nothing when one place reads it whole. Columns lose their alias: the
scan sees the table's own column names.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from lakehouse.optimizer.state import OptimizerState, Reference
from lakehouse.sql.plan_steps import sql


def apply(state: OptimizerState) -> OptimizerState:
    for relation in state.relations:
        predicate = combined(relation.references)
        if predicate is None:
            continue
        state = state.with_relation(replace(relation, predicate=predicate))
        state = state.decide("pushdown_predicates",
                             f"{relation.table}: scan keeps rows where {sql(predicate)}")
    return state


def combined(references: tuple[Reference, ...]) -> exp.Expr | None:
    each: dict[str, exp.Expr] = {}  # by text: a table read twice alike is filtered once
    for reference in references:
        if not reference.filters:
            return None
        parts = [unqualified(f) for f in reference.filters]
        condition = parts[0] if len(parts) == 1 else _joined(exp.And, parts)
        each.setdefault(sql(condition), condition)
    unique = list(each.values())
    return unique[0] if len(unique) == 1 else _joined(exp.Or, unique)


def _joined(connector: type[exp.And] | type[exp.Or], parts: list[exp.Expr]) -> exp.Expr:
    """`(a) AND (b) AND …` (or OR): each part in parentheses, whatever it holds."""
    node: exp.Expr = exp.Paren(this=parts[0])
    for part in parts[1:]:
        node = connector(this=node, expression=exp.Paren(this=part))
    return node


def unqualified(condition: exp.Expr) -> exp.Expr:
    """A copy of `condition` over the table's own column names."""

    def strip(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table:
            return exp.column(node.name, quoted=True)
        return node

    return condition.transform(strip)
