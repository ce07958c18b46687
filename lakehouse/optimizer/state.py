"""What the optimizer's rules read and write: one frozen state, replaced rule by rule."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlglot import exp

from lakehouse.catalog.lake import DataFile
from lakehouse.optimizer.cost_model import CostModel
from lakehouse.optimizer.physical import SINGLE_NODE, Decision, Distribution
from lakehouse.sql.plan_steps import Step


@dataclass(frozen=True, slots=True)
class Reference:
    """One place the query reads a table (a scan step of the logical plan)."""

    alias: str
    columns: tuple[str, ...]
    filters: tuple[exp.Expr, ...]  # over the query's alias (as the logical plan's scan has them)


@dataclass(frozen=True, slots=True)
class Relation:
    name: str  # as the SQL names it: "tenant_acme.orders"
    tenant: str
    table: str
    snapshot: int
    all_files: tuple[DataFile, ...]
    references: tuple[Reference, ...]
    partition_by: str | None = None
    files: tuple[DataFile, ...] | None = None  # after pruning (None: not pruned yet)
    columns: tuple[str, ...] | None = None  # None: every column
    predicate: exp.Expr | None = None  # over the table's own column names
    pruned_by_partition: int = 0
    pruned_by_stats: int = 0
    estimated_rows: int | None = None

    @property
    def kept(self) -> tuple[DataFile, ...]:
        return self.all_files if self.files is None else self.files

    @property
    def bytes(self) -> int:
        return sum(f.byte_size for f in self.kept)

    @property
    def rows(self) -> int:
        return sum(f.row_count for f in self.kept)

    @property
    def alias_set(self) -> set[str]:
        return {r.alias for r in self.references}


@dataclass(frozen=True)
class OptimizerState:
    tree: exp.Expr  # bound to the tenant (read only: rules copy before changing it)
    logical: Step
    relations: tuple[Relation, ...]
    model: CostModel
    decisions: tuple[Decision, ...] = ()
    distribution: Distribution = SINGLE_NODE
    join_order: tuple[str, ...] = ()
    notes: dict[str, Any] = field(default_factory=dict)

    def decide(self, rule: str, detail: str, **changes: Any) -> OptimizerState:
        return replace(self, decisions=(*self.decisions, Decision(rule, detail)), **changes)

    def relation(self, name: str) -> Relation:
        for found in self.relations:
            if found.name == name:
                return found
        raise KeyError(name)

    def with_relation(self, changed: Relation) -> OptimizerState:
        return replace(self, relations=tuple(changed if r.name == changed.name else r
                                             for r in self.relations))
