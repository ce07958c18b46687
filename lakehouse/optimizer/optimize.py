"""The CBO Engine's entry point: an interpreted query and the catalog's files in, a physical
plan out (pure: the caller reads the catalog)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlglot import exp

from lakehouse.catalog.lake import DataFile, TableInfo
from lakehouse.optimizer.cost_model import CostModel
from lakehouse.optimizer.encodings import dictionary_columns
from lakehouse.optimizer.explain import plan_steps
from lakehouse.optimizer.physical import FileScan, PhysicalPlan, ScanSpec
from lakehouse.optimizer.pruning import has_upserts
from lakehouse.optimizer.rules import RULES
from lakehouse.optimizer.state import OptimizerState, Reference, Relation
from lakehouse.sql.plan_steps import Step, scans, sql


@dataclass(frozen=True)
class TableFiles:
    """What the catalog says of one table at the pinned snapshot."""

    info: TableInfo
    files: tuple[DataFile, ...]


@dataclass(frozen=True)
class Optimized:
    plan: PhysicalPlan
    state: OptimizerState
    planning_ms: float


def initial_state(tree: exp.Expr, logical: Step, tables: Mapping[str, TableFiles],
                  *, tenant: str, snapshot: int, model: CostModel) -> OptimizerState:
    references: dict[str, list[Reference]] = {}
    for step in scans(logical):
        references.setdefault(step.bound_as, []).append(Reference(
            step.alias, step.columns, step.filters))
    relations = []
    for bound_as, found in references.items():
        table = bound_as.rpartition(".")[2]
        entry = tables.get(table)
        files = entry.files if entry is not None else ()
        relations.append(Relation(
            bound_as, tenant, table, snapshot, files, tuple(found),
            entry.info.partition_by if entry is not None else None))
    return OptimizerState(tree, logical, tuple(relations), model)


def optimize(tree: exp.Expr, text: str, logical: Step,
             tables: Mapping[str, TableFiles], *, tenant: str, snapshot: int,
             model: CostModel) -> Optimized:
    started = time.perf_counter()
    state = initial_state(tree, logical, tables, tenant=tenant, snapshot=snapshot, model=model)
    for name, rule in RULES:
        if model.enabled(name):
            state = rule(state)
    plan = physical_plan(state, text)
    return Optimized(plan, state, (time.perf_counter() - started) * 1000)


def physical_plan(state: OptimizerState, text: str) -> PhysicalPlan:
    """The plan the executor runs; predicates become DuckDB text here, where fragments leave for
    the workers."""
    specs = []
    for relation in state.relations:
        specs.append(ScanSpec(
            relation.name, relation.tenant, relation.table, relation.snapshot,
            tuple(FileScan(f.path, f.partition, f.row_count, f.byte_size, has_upserts(f))
                  for f in relation.kept),
            relation.columns,
            sql(relation.predicate) if relation.predicate is not None else None,
            relation.estimated_rows if relation.estimated_rows is not None else relation.rows,
            len(relation.all_files), relation.pruned_by_partition, relation.pruned_by_stats,
            dictionary_columns=dictionary_columns(relation.kept, relation.columns)))
    steps = plan_steps(state)
    return PhysicalPlan(text, tuple(specs), state.distribution, steps, state.decisions,
                        steps.estimated_rows, steps.cost)

