"""EXPLAIN: the logical plan's steps with estimated rows and a cost (rows handled, summed)."""

from __future__ import annotations

from typing import Any

from lakehouse.optimizer.physical import PlanStep
from lakehouse.optimizer.state import OptimizerState

FILTER_KEEPS = 0.5
GROUPS_PER_INPUT = 0.1


def plan_steps(state: OptimizerState) -> PlanStep:
    estimates = {r.name: (r.estimated_rows if r.estimated_rows is not None else r.rows)
                 for r in state.relations}
    return _step(state.logical, estimates)


def _step(step: dict[str, Any], estimates: dict[str, int]) -> PlanStep:
    kind = str(step.get("step"))
    inputs = step.get("inputs") or ([step["input"]] if "input" in step else [])
    children = tuple(_step(s, estimates) for s in [*inputs, *step.get("subqueries", [])])
    below = [c.estimated_rows for c in children[:len(inputs)]]
    rows: int
    if kind == "scan":
        rows = estimates.get(str(step.get("bound_as")), 0)
        detail = f"{step.get('table')} AS {step.get('alias')}"
    elif kind == "filter":
        rows = round((below[0] if below else 0) * FILTER_KEEPS)
        detail = str(step.get("predicate", ""))[:200]
    elif kind == "join":
        rows = max(below) if below else 0  # a key join keeps about the larger side
        detail = f"{step.get('kind')} on {step.get('condition') or step.get('using')}"
    elif kind == "aggregate":
        source = below[0] if below else 0
        rows = (max(1, round(source * GROUPS_PER_INPUT)) if step.get("group_by")
                else 1)
        detail = f"group by {', '.join(step.get('group_by') or []) or '()'}"
    elif kind == "limit":
        limit = step.get("limit")
        source = below[0] if below else 0
        rows = min(source, limit) if isinstance(limit, int) else source
        detail = f"limit {limit}"
    else:
        rows = below[0] if below else 1
        detail = kind
    cost = rows + sum(c.cost for c in children)
    return PlanStep(kind, detail, int(rows), float(cost), children)
