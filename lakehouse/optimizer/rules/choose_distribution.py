"""Single node or distributed, and how: the cost model's last and largest decision.

Small inputs run on one node (a Dask round trip costs more than it saves). Larger ones split
when the query splits (lakehouse/optimizer/split.py): one relation's files become fragments,
each running the partial query over its share and the other relations whole (BROADCAST, or
PARTIAL_AGGREGATE when there is no other relation); when a second relation is too large to send
to every worker and the two join on equal keys, both are split by a hash of those keys into the
same buckets (HASH). A query that does not split runs on one node over the pruned inputs.
"""

from __future__ import annotations

import math
from dataclasses import replace

from sqlglot import exp

from lakehouse.optimizer.physical import SINGLE_NODE, Distribution, Strategy
from lakehouse.optimizer.split import split
from lakehouse.optimizer.state import OptimizerState, Relation

MIB = 1024 * 1024


def apply(state: OptimizerState) -> OptimizerState:  # noqa: PLR0911 - one return per plan
    model = state.model
    total = sum(r.bytes for r in state.relations)
    if model.mode == "single":
        return _single(state, "forced single-node (mode=single)")
    if model.mode == "auto" and total < model.single_node_threshold_bytes:
        return _single(state, f"inputs {total / MIB:.1f} MiB < single-node threshold "
                              f"{model.single_node_threshold_bytes / MIB:.0f} MiB")
    parts = split(state.tree)
    if parts is None:
        return _single(state, "the query does not split (subquery, window, DISTINCT, set "
                              "operation or a non-decomposable aggregate): single node over "
                              "the pruned inputs")
    if not _inner_joins_only(state.tree) or any(len(r.references) != 1
                                                for r in state.relations):
        return _single(state, "outer joins or a table read twice: single node")
    ordered = sorted(state.relations, key=lambda r: (r.bytes, r.name), reverse=True)
    large = ordered[0]
    forced = model.mode == "distributed"
    fragments = _fragments(large, state)
    if forced:
        fragments = max(2, fragments)
    rest = ordered[1:]
    if not rest:
        return _distributed(state, Distribution(
            Strategy.PARTIAL_AGGREGATE, (large.name,), (), fragments, parts.partial_sql,
            parts.final_sql, f"{parts.kind} split over {fragments} fragments of {large.table}"))
    second = rest[0]
    too_big = [r for r in rest if r.bytes > model.broadcast_threshold_bytes]
    if not too_big:
        return _distributed(state, Distribution(
            Strategy.BROADCAST, (large.name,), (), fragments, parts.partial_sql,
            parts.final_sql, f"{large.table} split into {fragments} fragments; "
            f"{', '.join(r.table for r in rest)} broadcast (each ≤ "
            f"{model.broadcast_threshold_bytes / MIB:.0f} MiB)"))
    keys = _equi_keys(state.tree, large, second)
    if keys is not None:  # the others are smaller than `second`: each goes whole to each bucket
        return _distributed(state, Distribution(
            Strategy.HASH, (large.name, second.name), keys, fragments, parts.partial_sql,
            parts.final_sql, f"{large.table} and {second.table} hash-partitioned on "
            f"{', '.join(keys[0])} = {', '.join(keys[1])} into {fragments} buckets; "
            f"others broadcast"))
    return _single(state, f"{second.table} is too large to broadcast and does not join "
                          f"{large.table} on equal keys: single node")


def _single(state: OptimizerState, reason: str) -> OptimizerState:
    return replace(state.decide("choose_distribution", reason),
                   distribution=replace(SINGLE_NODE, reason=reason))


def _distributed(state: OptimizerState, distribution: Distribution) -> OptimizerState:
    return replace(state.decide("choose_distribution", distribution.reason),
                   distribution=distribution)


def _fragments(relation: Relation, state: OptimizerState) -> int:
    wanted = math.ceil(relation.bytes / max(1, state.model.target_fragment_bytes))
    return max(1, min(state.model.max_fragments, wanted, max(1, len(relation.kept))))


def _inner_joins_only(tree: exp.Expr) -> bool:
    for join in tree.args.get("joins") or []:
        if join.side or (join.kind or "").upper() not in ("", "INNER", "CROSS"):
            return False
    return True


def _equi_keys(tree: exp.Expr, left: Relation, right: Relation,
               ) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Columns `left.a = right.b` the query joins the two on (in WHERE or ON)."""
    conditions: list[exp.Expr] = []
    where = tree.args.get("where")
    if where is not None:
        conditions.append(where.this)
    conditions += [j.args["on"] for j in tree.args.get("joins") or [] if j.args.get("on")]
    left_keys: list[str] = []
    right_keys: list[str] = []
    for condition in conditions:
        for eq in condition.find_all(exp.EQ):
            if eq.find_ancestor(exp.Or) is not None:
                continue
            a, b = eq.left, eq.right
            if not (isinstance(a, exp.Column) and isinstance(b, exp.Column)):
                continue
            if a.table in left.alias_set and b.table in right.alias_set:
                left_keys.append(a.name)
                right_keys.append(b.name)
            elif b.table in left.alias_set and a.table in right.alias_set:
                left_keys.append(b.name)
                right_keys.append(a.name)
    if not left_keys:
        return None
    return tuple(left_keys), tuple(right_keys)
