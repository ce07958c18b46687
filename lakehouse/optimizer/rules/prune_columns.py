"""Read only the columns some reference to a table uses (the union over its references)."""

from __future__ import annotations

from dataclasses import replace

from lakehouse.optimizer.state import OptimizerState

# A scan reads at least one column, so a count(*) still sees every row.
MINIMAL_COLUMN = "_seq"


def apply(state: OptimizerState) -> OptimizerState:
    for relation in state.relations:
        wanted = tuple(dict.fromkeys(c for r in relation.references for c in r.columns))
        columns = wanted or (MINIMAL_COLUMN,)
        state = state.with_relation(replace(relation, columns=columns))
        state = state.decide("prune_columns", f"{relation.table}: read {len(columns)} "
                             f"column{'s' if len(columns) != 1 else ''}: {', '.join(columns)}")
    return state
