"""EXPLAIN: the logical plan's steps with estimated rows and a cost (rows handled, summed)."""

from __future__ import annotations

from sqlglot import exp

from lakehouse.optimizer.physical import PlanStep
from lakehouse.optimizer.state import OptimizerState
from lakehouse.sql.plan_steps import Aggregate, Filter, Join, Limit, Scan, Step, sql

FILTER_KEEPS = 0.5
GROUPS_PER_INPUT = 0.1


def plan_steps(state: OptimizerState) -> PlanStep:
    estimates = {r.name: (r.estimated_rows if r.estimated_rows is not None else r.rows)
                 for r in state.relations}
    return _step(state.logical, estimates)


def _step(step: Step, estimates: dict[str, int]) -> PlanStep:
    inputs = step.inputs()
    children = tuple(_step(s, estimates) for s in step.children())
    below = [c.estimated_rows for c in children[:len(inputs)]]
    source = below[0] if below else 0
    kind = step.STEP
    rows: int
    detail: str
    match step:
        case Scan():
            rows = estimates.get(step.bound_as, 0)
            detail = f"{step.table} AS {step.alias}"
        case Filter():
            rows = round(source * FILTER_KEEPS)
            detail = sql(step.predicate)[:200]
        case Join():
            rows = max(below) if below else 0  # a key join keeps about the larger side
            on = (sql(step.condition) if step.condition is not None
                  else [sql(u) for u in step.using])
            detail = f"{step.kind} on {on}"
        case Aggregate():
            rows = max(1, round(source * GROUPS_PER_INPUT)) if step.group_by else 1
            detail = f"group by {', '.join(sql(g) for g in step.group_by) or '()'}"
        case Limit():
            rows = min(source, step.limit) if isinstance(step.limit, int) else source
            detail = f"limit {sql(step.limit) if isinstance(step.limit, exp.Expr) else step.limit}"
        case _:
            rows = below[0] if below else 1
            detail = kind
    cost = rows + sum(c.cost for c in children)
    return PlanStep(kind, detail, int(rows), float(cost), children)
