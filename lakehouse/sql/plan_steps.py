"""The steps of a logical plan: frozen values holding sqlglot expressions.

Expressions stay trees from the planner through the optimizer's rules; they become DuckDB text only
where they leave the process: the JSON a user is shown (`to_json`) and a fragment shipped to a
worker (the physical plan). The expressions belong to the bound query tree: nothing changes them in
place (a rule that needs another form copies first).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlglot import exp

DIALECT = "duckdb"


def sql(node: exp.Expr) -> str:
    """The DuckDB text of an expression, as the plan shows it."""
    return node.sql(dialect=DIALECT)


@dataclass(frozen=True, kw_only=True)
class PlanStep:
    """What every step may carry: `lateral` on a source that reads the sources before it, and the
    plans of the queries nested in the step's expressions (IN, EXISTS, scalar, …)."""

    STEP: ClassVar[str]
    INPUTS: ClassVar[tuple[str, ...]] = ()  # the fields holding the steps this one reads
    lateral: bool = False
    subqueries: tuple[Step, ...] = field(default=())

    def inputs(self) -> tuple[Step, ...]:
        return tuple(getattr(self, name) for name in self.INPUTS)

    def children(self) -> tuple[Step, ...]:
        return (*self.inputs(), *self.subqueries)

    def fields_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        out = self.fields_json()
        if self.lateral:
            out["lateral"] = True
        if self.subqueries:
            out["subqueries"] = [s.to_json() for s in self.subqueries]
        return out


@dataclass(frozen=True)
class Scan(PlanStep):
    """A tenant table: the columns it must produce, the conditions that may run inside it."""

    STEP: ClassVar[str] = "scan"
    table: str
    tenant: str
    bound_as: str  # as the bound SQL names it: "tenant_acme.orders"
    alias: str
    columns: tuple[str, ...]
    filters: tuple[exp.Expr, ...]  # over the query's alias

    def fields_json(self) -> dict[str, Any]:
        return {"step": self.STEP, "table": self.table, "tenant": self.tenant,
                "bound_as": self.bound_as, "alias": self.alias, "columns": list(self.columns),
                "filters": [sql(f) for f in self.filters]}


@dataclass(frozen=True)
class Derived(PlanStep):
    """A derived table or a CTE read under `alias`."""

    STEP: ClassVar[str] = "subquery"
    INPUTS: ClassVar[tuple[str, ...]] = ("input",)
    alias: str
    input: Step
    cte: str | None = None

    def fields_json(self) -> dict[str, Any]:
        if self.cte is None:
            return {"step": self.STEP, "alias": self.alias, "input": self.input.to_json()}
        return {"step": self.STEP, "alias": self.alias, "cte": self.cte,
                "input": self.input.to_json(), "filters": []}


@dataclass(frozen=True)
class Values(PlanStep):
    STEP: ClassVar[str] = "values"
    alias: str | None
    rows: int

    def fields_json(self) -> dict[str, Any]:
        return {"step": self.STEP, "alias": self.alias, "rows": self.rows}


@dataclass(frozen=True)
class Unsupported(PlanStep):
    """A source or query the planner has no step for (shown, never optimized)."""

    STEP: ClassVar[str] = "unsupported"
    node: exp.Expr
    alias: str | None = None
    has_alias: bool = False

    def fields_json(self) -> dict[str, Any]:
        if not self.has_alias:
            return {"step": self.STEP, "sql": sql(self.node)}
        return {"step": self.STEP, "alias": self.alias, "sql": sql(self.node)}


@dataclass(frozen=True)
class Join(PlanStep):
    STEP: ClassVar[str] = "join"
    INPUTS: ClassVar[tuple[str, ...]] = ("left", "right")
    kind: str  # "inner", "left", "cross", …
    condition: exp.Expr | None
    using: tuple[exp.Expr, ...]
    left: Step
    right: Step

    def fields_json(self) -> dict[str, Any]:
        return {"step": self.STEP, "kind": self.kind,
                "condition": sql(self.condition) if self.condition is not None else None,
                "using": [sql(u) for u in self.using],
                "inputs": [self.left.to_json(), self.right.to_json()]}


@dataclass(frozen=True)
class Filter(PlanStep):
    STEP: ClassVar[str] = "filter"
    INPUTS: ClassVar[tuple[str, ...]] = ("input",)
    predicate: exp.Expr
    input: Step
    having: bool = False

    def fields_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.STEP, "predicate": sql(self.predicate)}
        if self.having:
            out["having"] = True
        out["input"] = self.input.to_json()
        return out


@dataclass(frozen=True)
class Aggregate(PlanStep):
    STEP: ClassVar[str] = "aggregate"
    INPUTS: ClassVar[tuple[str, ...]] = ("input",)
    group_by: tuple[exp.Expr, ...]
    aggregates: tuple[exp.Expr, ...]  # distinct, in the order of their text
    input: Step

    def fields_json(self) -> dict[str, Any]:
        return {"step": self.STEP, "group_by": [sql(g) for g in self.group_by],
                "aggregates": [sql(a) for a in self.aggregates], "input": self.input.to_json()}


@dataclass(frozen=True)
class Window(PlanStep):
    STEP: ClassVar[str] = "window"
    INPUTS: ClassVar[tuple[str, ...]] = ("input",)
    functions: tuple[exp.Expr, ...]  # distinct, in the order of their text
    input: Step

    def fields_json(self) -> dict[str, Any]:
        return {"step": self.STEP, "functions": [sql(f) for f in self.functions],
                "input": self.input.to_json()}


@dataclass(frozen=True)
class Output:
    """One result column of a projection."""

    name: str
    expression: exp.Expr


@dataclass(frozen=True)
class Project(PlanStep):
    STEP: ClassVar[str] = "project"
    INPUTS: ClassVar[tuple[str, ...]] = ("input",)
    columns: tuple[Output, ...]
    input: Step

    def fields_json(self) -> dict[str, Any]:
        return {"step": self.STEP, "columns": [
            {"name": c.name, "expression": sql(c.expression)} for c in self.columns],
            "input": self.input.to_json()}


@dataclass(frozen=True)
class Distinct(PlanStep):
    STEP: ClassVar[str] = "distinct"
    INPUTS: ClassVar[tuple[str, ...]] = ("input",)
    input: Step

    def fields_json(self) -> dict[str, Any]:
        return {"step": self.STEP, "input": self.input.to_json()}


@dataclass(frozen=True)
class SortKey:
    expression: exp.Expr
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Sort(PlanStep):
    STEP: ClassVar[str] = "sort"
    INPUTS: ClassVar[tuple[str, ...]] = ("input",)
    keys: tuple[SortKey, ...]
    input: Step

    def fields_json(self) -> dict[str, Any]:
        return {"step": self.STEP, "keys": [
            {"expression": sql(k.expression), "descending": k.descending,
             "nulls_first": k.nulls_first} for k in self.keys], "input": self.input.to_json()}


@dataclass(frozen=True)
class Limit(PlanStep):
    STEP: ClassVar[str] = "limit"
    INPUTS: ClassVar[tuple[str, ...]] = ("input",)
    limit: int | exp.Expr | None  # an expression when not a literal integer
    offset: int | exp.Expr | None
    input: Step

    def fields_json(self) -> dict[str, Any]:
        return {"step": self.STEP, "limit": _count(self.limit), "offset": _count(self.offset),
                "input": self.input.to_json()}


@dataclass(frozen=True)
class SetOperation(PlanStep):
    STEP: ClassVar[str] = "set_operation"
    INPUTS: ClassVar[tuple[str, ...]] = ("left", "right")
    op: str  # "union", "intersect", "except"
    distinct: bool
    left: Step
    right: Step

    def fields_json(self) -> dict[str, Any]:
        return {"step": self.STEP, "op": self.op, "distinct": self.distinct,
                "inputs": [self.left.to_json(), self.right.to_json()]}


Step = (Scan | Derived | Values | Unsupported | Join | Filter | Aggregate | Window | Project
        | Distinct | Sort | Limit | SetOperation)


def _count(value: int | exp.Expr | None) -> int | str | None:
    return sql(value) if isinstance(value, exp.Expr) else value


def walk(plan: Step) -> Iterator[Step]:
    """Every step of a plan, parents before children, inputs before subqueries."""
    stack: list[Step] = [plan]
    while stack:
        step = stack.pop()
        yield step
        stack.extend(reversed(step.children()))


def scans(plan: Step) -> list[Scan]:
    """Every scan step of a plan, leaves in order."""
    return [step for step in walk(plan) if isinstance(step, Scan)]
