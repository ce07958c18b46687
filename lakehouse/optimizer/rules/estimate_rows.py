"""Estimate the rows each scan produces: the kept files' rows times the selectivity of its
conditions, each judged by the files' statistics (independence assumed)."""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from lakehouse.optimizer.estimates import UNKNOWN_SELECTIVITY, merged_stats, selectivity
from lakehouse.optimizer.pruning import comparisons_of
from lakehouse.optimizer.state import OptimizerState
from lakehouse.sql.plan import conjuncts


def apply(state: OptimizerState) -> OptimizerState:
    for relation in state.relations:
        rows = relation.rows
        fraction = 1.0
        if relation.predicate is not None:
            fraction = predicate_selectivity(relation.predicate, relation.kept, rows)
        estimate = max(0, round(rows * fraction)) if rows else 0
        state = state.with_relation(replace(relation, estimated_rows=estimate))
        state = state.decide("estimate_rows", f"{relation.table}: ~{estimate:,} of {rows:,} "
                             f"rows ({fraction:.3g} selectivity)")
    return state


def predicate_selectivity(predicate: exp.Expr, files: tuple, rows: int) -> float:  # type: ignore[type-arg]
    comparisons = comparisons_of(predicate)
    parts = len(conjuncts(predicate))
    stats = merged_stats(files)
    fraction = 1.0
    for comparison in comparisons:
        fraction *= selectivity(comparison, stats.get(comparison.column), rows)
    # Conditions the statistics cannot judge (LIKE, functions, OR) count as unknown.
    fraction *= UNKNOWN_SELECTIVITY ** max(0, parts - len(comparisons))
    return fraction
