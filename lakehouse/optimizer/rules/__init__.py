"""The optimizer's rules, each a pure `apply(state) -> state` in its own module with its own
golden file (tests/golden/optimizer), applied in the one order `cost_model.RULES` declares."""

from __future__ import annotations

from collections.abc import Callable

from lakehouse.optimizer.cost_model import RULES as ORDER
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

_APPLY: dict[str, Rule] = {
    "pushdown_predicates": pushdown_predicates.apply,
    "prune_columns": prune_columns.apply,
    "prune_files": prune_files.apply,
    "estimate_rows": estimate_rows.apply,
    "order_joins": order_joins.apply,
    "choose_distribution": choose_distribution.apply,
}
RULES: tuple[tuple[str, Rule], ...] = tuple((name, _APPLY[name]) for name in ORDER)
