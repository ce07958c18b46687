"""Join order: the relations from the smallest estimated input to the largest, so hash tables
are built on the small sides. DuckDB re-orders joins inside each fragment with its own
optimizer; this order is what our cost estimates and the choice of the partitioned relation
rest on."""

from __future__ import annotations

from dataclasses import replace

from lakehouse.optimizer.state import OptimizerState


def apply(state: OptimizerState) -> OptimizerState:
    if len(state.relations) < 2:
        return state
    ordered = sorted(state.relations, key=lambda r: (r.estimated_rows
                                                     if r.estimated_rows is not None
                                                     else r.rows, r.name))
    order = tuple(r.name for r in ordered)
    described = " ⋈ ".join(f"{r.table} (~{(r.estimated_rows or r.rows):,})" for r in ordered)
    return replace(state.decide("order_joins", f"join order: {described}"), join_order=order)
