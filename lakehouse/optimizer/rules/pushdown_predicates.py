"""Push each table's own conditions into its scan.

The logical plan already says which conditions read one table alone and may run below its joins
(not on the null-filled side of an outer join). A table read in several places gets the OR of
what each place needs, or nothing when one place reads it whole. Columns lose their alias: the
scan sees the table's own column names.
"""

from __future__ import annotations

from dataclasses import replace

import sqlglot
from sqlglot import exp

from lakehouse.optimizer.state import OptimizerState, Reference

DIALECT = "duckdb"


def apply(state: OptimizerState) -> OptimizerState:
    for relation in state.relations:
        predicate = combined(relation.references)
        if predicate is None:
            continue
        state = state.with_relation(replace(relation, predicate=predicate))
        state = state.decide("pushdown_predicates",
                             f"{relation.table}: scan keeps rows where {predicate}")
    return state


def combined(references: tuple[Reference, ...]) -> str | None:
    each: list[str] = []
    for reference in references:
        if not reference.filters:
            return None
        parts = [unqualified(f) for f in reference.filters]
        each.append(parts[0] if len(parts) == 1 else " AND ".join(f"({p})" for p in parts))
    unique = list(dict.fromkeys(each))
    return unique[0] if len(unique) == 1 else " OR ".join(f"({p})" for p in unique)


def unqualified(condition: str) -> str:
    tree = sqlglot.parse_one(condition, read=DIALECT)

    def strip(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table:
            return exp.column(node.name, quoted=True)
        return node

    return tree.transform(strip).sql(dialect=DIALECT)
