"""The optimizer's rules, applied in this order; each is a pure `apply(state) -> state` in its
own module, named as in CostModel.rules, with its own golden file (tests/golden/optimizer)."""

from __future__ import annotations

from collections.abc import Callable

from lakehouse.optimizer.rules import (
    choose_distribution,
    estimate_rows,
    order_joins,
    prune_columns,
    prune_files,
    pushdown_predicates,
)
from lakehouse.optimizer.state import OptimizerState

Rule = Callable[[OptimizerState], OptimizerState]

RULES: tuple[tuple[str, Rule], ...] = (
    ("pushdown_predicates", pushdown_predicates.apply),
    ("prune_columns", prune_columns.apply),
    ("prune_files", prune_files.apply),
    ("estimate_rows", estimate_rows.apply),
    ("order_joins", order_joins.apply),
    ("choose_distribution", choose_distribution.apply),
)
