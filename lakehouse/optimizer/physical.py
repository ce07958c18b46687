"""The physical plan: what the CBO Engine decides and the executor runs (pure values).

The contract between them:
- `sql` is the whole query, bound to the tenant (`"tenant_<t>"."<table>"` relations, see
  lakehouse/sql/bind.py), in DuckDB's dialect. Run as is over the scans, it answers the query:
  that is the single-node plan, and the fallback of every other one.
- Each `ScanSpec` says how to produce one relation: the files of the table at the pinned
  snapshot that pruning kept, the columns any reference to the table needs (None: all), and a
  predicate every row the query can use satisfies. Applying the predicate in the scan is an
  optimisation only: `sql` still holds every condition. When a table is referenced more than
  once (a subquery, a self-join), columns are the union and the predicate the OR of the
  references' predicates (or None).
- `Distribution` says how to split the work over the Dask workers. `partial_sql` runs once per
  fragment, over the fragment's share of the partitioned relations (and all of the others);
  `final_sql` runs once over the union of the partial results, exposed as the relation
  `partials`. Strategy SINGLE has neither: `sql` runs once over whole scans.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class FileScan:
    path: str  # relative to the storage root
    partition: str
    rows: int
    bytes: int
    has_upserts: bool  # its `_upsert` maximum is true: some data_id may have older versions

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "partition": self.partition, "rows": self.rows,
                "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class ScanSpec:
    relation: str  # as the SQL names it, e.g. "tenant_acme.orders"
    tenant: str
    table: str
    snapshot: int
    files: tuple[FileScan, ...]  # after pruning
    columns: tuple[str, ...] | None  # None: every column
    predicate: str | None  # DuckDB SQL over the table's own column names
    estimated_rows: int
    files_total: int
    pruned_by_partition: int = 0
    pruned_by_stats: int = 0
    include_unflushed: bool = True  # add the rows still in the write-ahead log
    dictionary_columns: tuple[str, ...] = ()  # string columns to read as dictionaries

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {"relation": self.relation, "table": self.table, "snapshot": self.snapshot,
                "files": len(self.files), "files_total": self.files_total,
                "pruned_by_partition": self.pruned_by_partition,
                "pruned_by_stats": self.pruned_by_stats, "bytes": self.bytes,
                "columns": list(self.columns) if self.columns is not None else None,
                "predicate": self.predicate, "estimated_rows": self.estimated_rows,
                **({"dictionary_columns": list(self.dictionary_columns)}
                   if self.dictionary_columns else {})}


class Strategy(enum.StrEnum):
    SINGLE = "single"  # `sql` once, over whole scans
    PARTIAL_AGGREGATE = "partial_aggregate"  # one relation split; partial, then final aggregate
    BROADCAST = "broadcast"  # the large relation split, the small ones sent whole to each part
    HASH = "hash"  # two large relations split by hash of their join keys into the same parts


@dataclass(frozen=True, slots=True)
class Distribution:
    strategy: Strategy
    partitioned: tuple[str, ...] = ()  # relations split into fragments
    keys: tuple[tuple[str, ...], ...] = ()  # HASH: per partitioned relation, its join columns
    fragments: int = 1
    partial_sql: str | None = None
    final_sql: str | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy.value, "partitioned": list(self.partitioned),
                "keys": [list(k) for k in self.keys], "fragments": self.fragments,
                "partial_sql": self.partial_sql, "final_sql": self.final_sql,
                "reason": self.reason}


SINGLE_NODE = Distribution(Strategy.SINGLE, reason="single-node plan")


@dataclass(frozen=True, slots=True)
class Decision:
    rule: str  # the optimizer rule (or "cost_model") that took it
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One step of EXPLAIN: scan / filter / project / aggregate / join / sort / limit."""

    op: str
    detail: str
    estimated_rows: int
    cost: float
    children: tuple[PlanStep, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "detail": self.detail, "estimated_rows": self.estimated_rows,
                "cost": round(self.cost, 3), "children": [c.to_json() for c in self.children]}


@dataclass(frozen=True, slots=True)
class PhysicalPlan:
    sql: str
    scans: tuple[ScanSpec, ...]
    distribution: Distribution = SINGLE_NODE
    steps: PlanStep | None = None
    decisions: tuple[Decision, ...] = field(default=())
    estimated_rows: int = 0
    estimated_cost: float = 0.0

    def scan(self, relation: str) -> ScanSpec:
        for spec in self.scans:
            if spec.relation == relation:
                return spec
        raise KeyError(relation)

    def to_json(self) -> dict[str, Any]:
        return {"sql": self.sql, "scans": [s.to_json() for s in self.scans],
                "distribution": self.distribution.to_json(),
                "steps": self.steps.to_json() if self.steps is not None else None,
                "decisions": [d.to_json() for d in self.decisions],
                "estimated_rows": self.estimated_rows,
                "estimated_cost": round(self.estimated_cost, 3)}
