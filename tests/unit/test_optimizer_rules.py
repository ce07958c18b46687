"""The optimizer's rules, each against its golden file, on a fixed catalog of files and stats.

For every query in QUERIES, the rules run in order up to and including the rule under test; the
golden file holds what that rule decided and the state it left (per relation: predicate,
columns, files kept, estimate; the distribution). Set UPDATE_GOLDEN=1 to rewrite the files, then
read the diff before committing it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp

from lakehouse.catalog.lake import ColumnStats, DataFile, TableInfo
from lakehouse.optimizer.cost_model import RULES, CostModel
from lakehouse.optimizer.optimize import TableFiles, initial_state, optimize
from lakehouse.optimizer.rules import RULES as ORDERED
from lakehouse.optimizer.state import OptimizerState
from lakehouse.sql.interpret import interpret
from lakehouse.sql.plan_steps import sql as text_of
from lakehouse.sql.schema_view import SchemaView
from tests.golden_files import assert_golden

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "optimizer"
MIB = 1024 * 1024

SCHEMAS: dict[str, Any] = {
    "orders": {"type": "struct", "fields": [
        {"name": "o_orderkey", "type": "int64"}, {"name": "o_custkey", "type": "int64"},
        {"name": "o_total", "type": "float64"}, {"name": "o_status", "type": "string"}]},
    "lineitem": {"type": "struct", "fields": [
        {"name": "l_orderkey", "type": "int64"}, {"name": "l_qty", "type": "int64"},
        {"name": "l_price", "type": "float64"}, {"name": "l_flag", "type": "string"}]},
    "customer": {"type": "struct", "fields": [
        {"name": "c_custkey", "type": "int64"}, {"name": "c_name", "type": "string"},
        {"name": "c_segment", "type": "string"}]},
}


def _files(table: str, count: int, rows: int, size: int, key: str,
           partitions: tuple[str, ...] = ("",)) -> tuple[DataFile, ...]:
    out = []
    for n in range(count):
        low = n * rows
        stats = (ColumnStats(key, low, low + rows - 1, 0, rows),
                 ColumnStats("_timestamp", 1_700_000_000_000_000 + n, 1_700_000_000_000_000 + n,
                             0, 1))
        partition = partitions[n % len(partitions)]
        out.append(DataFile(f"acme/{table}/{partition}/{n:04d}.parquet".replace("//", "/"),
                            partition, rows, size, None, None, stats, file_id=n + 1,
                            snapshot_added=1))
    return tuple(out)


def _table(name: str, files: tuple[DataFile, ...]) -> TableFiles:
    return TableFiles(TableInfo(1, "acme", name, SCHEMAS[name], None, (), 1, 1), files)


TABLES = {
    "lineitem": _table("lineitem", _files("lineitem", 40, 150_000, 24 * MIB, "l_orderkey")),
    "orders": _table("orders", _files("orders", 10, 150_000, 16 * MIB, "o_orderkey",
                                      ("o_status=F", "o_status=O"))),
    "customer": _table("customer", _files("customer", 1, 15_000, 2 * MIB, "c_custkey")),
}

QUERIES = {
    "point": "SELECT * FROM orders WHERE o_orderkey = 300123",
    "range_aggregate": "SELECT l_flag, sum(l_price), avg(l_qty), count(*) FROM lineitem "
                       "WHERE l_orderkey < 900000 GROUP BY l_flag ORDER BY l_flag",
    "partition": "SELECT count(*) FROM orders WHERE o_status = 'F'",
    "broadcast_join": "SELECT c_segment, sum(o_total) FROM customer, orders "
                      "WHERE c_custkey = o_custkey GROUP BY c_segment",
    "hash_join": "SELECT o_status, sum(l_price) FROM orders JOIN lineitem "
                 "ON o_orderkey = l_orderkey WHERE l_qty > 10 GROUP BY o_status",
    "subquery": "SELECT o_orderkey FROM orders WHERE o_total > "
                "(SELECT avg(o_total) FROM orders) ORDER BY o_orderkey LIMIT 5",
    "top_n": "SELECT o_orderkey, o_total FROM orders ORDER BY o_total DESC LIMIT 3",
}

MODEL = CostModel(broadcast_threshold_bytes=8 * MIB, target_fragment_bytes=64 * MIB,
                  single_node_threshold_bytes=100 * MIB)


def _run_until(rule: str, sql: str) -> tuple[OptimizerState, OptimizerState]:
    view = SchemaView.from_schemas("acme", SCHEMAS)
    found = interpret(sql, None, view)
    state = initial_state(found.tree, found.plan(view), TABLES, tenant="acme", snapshot=7,
                          model=MODEL)
    for name, apply in ORDERED:
        before = state
        state = apply(state)
        if name == rule:
            return before, state
    raise AssertionError(rule)


def _describe(before: OptimizerState, after: OptimizerState) -> dict[str, Any]:
    return {
        "decisions": [d.to_json() for d in after.decisions[len(before.decisions):]],
        "relations": [{"relation": r.name, "predicate": text_of(r.predicate)
                       if r.predicate is not None else None,
                       "columns": list(r.columns) if r.columns is not None else None,
                       "files": len(r.kept), "pruned_by_partition": r.pruned_by_partition,
                       "pruned_by_stats": r.pruned_by_stats,
                       "estimated_rows": r.estimated_rows} for r in after.relations],
        "join_order": list(after.join_order),
        "distribution": after.distribution.to_json(),
    }


def golden_text(rule: str) -> str:
    document = {name: _describe(*_run_until(rule, sql)) for name, sql in QUERIES.items()}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("rule", RULES)
def test_rule_matches_its_golden_file(rule: str) -> None:
    assert_golden(GOLDEN / f"{rule}.json", golden_text(rule), f"rule {rule}")


def test_rules_run_in_the_documented_order() -> None:
    assert tuple(name for name, _ in ORDERED) == RULES


def test_decisions_that_matter() -> None:
    _, pruned = _run_until("prune_files", QUERIES["point"])
    [orders] = pruned.relations
    assert len(orders.kept) == 1 and orders.pruned_by_stats == 9
    _, partitioned = _run_until("prune_files", QUERIES["partition"])
    assert partitioned.relations[0].pruned_by_partition == 5
    _, chosen = _run_until("choose_distribution", QUERIES["broadcast_join"])
    assert chosen.distribution.strategy == "broadcast"
    _, chosen = _run_until("choose_distribution", QUERIES["hash_join"])
    assert chosen.distribution.strategy == "hash"
    assert chosen.distribution.keys == (("l_orderkey",), ("o_orderkey",))
    _, chosen = _run_until("choose_distribution", QUERIES["subquery"])
    assert chosen.distribution.strategy == "single"


def test_a_table_read_twice_keeps_the_rows_either_place_needs() -> None:
    """Two references with their own conditions: the scan keeps the OR of both, each part in
    parentheses (an OR inside one place must not bind to the other's AND), over the table's own
    column names; a tree until the physical plan renders it for the workers."""
    sql = ("SELECT a.o_orderkey FROM orders a, orders b WHERE a.o_total > 5 AND "
           "(a.o_status = 'F' OR a.o_status = 'O') AND b.o_custkey = 3")
    _, pushed = _run_until("pushdown_predicates", sql)
    [orders] = pushed.relations
    assert isinstance(orders.predicate, exp.Expr)
    assert text_of(orders.predicate) == (
        "((\"o_total\" > 5) AND (\"o_status\" = 'F' OR \"o_status\" = 'O')) "
        "OR (\"o_custkey\" = 3)")
    view = SchemaView.from_schemas("acme", SCHEMAS)
    found = interpret(sql, None, view)
    optimized = optimize(found.tree, found.sql, found.plan(view), TABLES, tenant="acme",
                         snapshot=7, model=MODEL)
    [spec] = optimized.plan.scans
    assert spec.predicate == text_of(orders.predicate)
