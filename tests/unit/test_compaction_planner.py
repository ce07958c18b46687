"""The compaction planner: a table of cases, and a golden plan of a mixed catalog state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakehouse.catalog.lake import DataFile
from lakehouse.catalog.options import NO_OPTIONS, TableOptions
from lakehouse.compaction.planner import backlog, pack, plan_compaction
from lakehouse.compaction.policy import CompactionPolicy
from lakehouse.compaction.state import PartitionFiles, TableFiles
from tests.golden_files import assert_golden

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "compaction" / "plan.json"
NOW = 1_800_000_000.0
POLICY = CompactionPolicy(target_file_bytes=1000, min_files=3, max_files_active=6,
                          active_window_s=600)
_ids = iter(range(1, 1_000_000))


def _files(sizes: list[int], partition: str = "day=2026-11-20", loaded: bool = False,
           first_seq: int = 1) -> tuple[DataFile, ...]:
    out = []
    for n, size in enumerate(sizes):
        seq = None if loaded else (first_seq + 10 * n, first_seq + 10 * n + 9)
        out.append(DataFile(f"t/{partition}/{n}-{size}.parquet", partition, 10, size,
                            *(seq or (None, None)), file_id=next(_ids)))
    return tuple(out)


def _part(sizes: list[int], partition: str = "day=2026-11-20", age_s: float = 86_400,
          loaded: bool = False) -> PartitionFiles:
    return PartitionFiles(partition, _files(sizes, partition, loaded), NOW - age_s)


def _table(*parts: PartitionFiles, options: TableOptions = NO_OPTIONS) -> TableFiles:
    return TableFiles("acme", "events", parts, ("ts",), options)


def _sizes(table: TableFiles, policy: CompactionPolicy = POLICY) -> list[list[int]]:
    return [[f.byte_size for f in g.inputs] for g in plan_compaction([table], policy, NOW).groups]


@pytest.mark.parametrize(("case", "table", "groups"), [
    ("nothing to merge: one file", _table(_part([100])), []),
    ("too few small files", _table(_part([100, 100])), []),
    ("three small files make a group", _table(_part([100, 100, 100])), [[100, 100, 100]]),
    ("large files stay as they are", _table(_part([900, 100, 800, 100, 100])),
     [[100, 100, 100]]),
    ("packed up to the target size", _table(_part([300] * 7)),
     [[300, 300, 300], [300, 300, 300]]),
    ("a short tail run is left", _table(_part([400, 400, 400, 400])), []),
    ("the newest partition while it receives is left",
     _table(_part([100] * 3, "day=2026-11-19"), _part([100] * 5, "day=2026-11-20", age_s=5)),
     [[100] * 3]),
    ("the newest partition over the file limit is merged",
     _table(_part([100] * 7, "day=2026-11-20", age_s=5)), [[100] * 7]),
    ("a quiet newest partition is merged", _table(_part([100] * 3, age_s=3600)), [[100] * 3]),
    ("per-table overrides", _table(_part([100] * 2), options=TableOptions(min_files=2)),
     [[100, 100]]),
    ("per-table target size", _table(_part([100] * 4),
                                     options=TableOptions(target_file_bytes=250)), []),
])
def test_plan(case: str, table: TableFiles, groups: list[list[int]]) -> None:
    assert _sizes(table) == groups, case


def test_loaded_and_flushed_files_are_never_merged_together() -> None:
    files = _files([100] * 3, loaded=True) + _files([100] * 3, first_seq=500)
    runs = pack(files, POLICY)
    assert [{f.seq_min is None for f in run} for run in runs] == [{True}, {False}]


def test_groups_follow_sequence_order() -> None:
    files = tuple(reversed(_files([100] * 4)))
    [run] = pack(files, POLICY)
    assert [f.seq_min for f in run] == sorted(f.seq_min or 0 for f in run)


def test_skips_say_why() -> None:
    table = _table(_part([100, 100], "day=2026-11-18"),
                   _part([100] * 3, "day=2026-11-20", age_s=5))
    plan = plan_compaction([table], POLICY, NOW)
    assert [(s.partition, s.reason) for s in plan.skipped] == [
        ("day=2026-11-18", "too_few_small_files"), ("day=2026-11-20", "active")]


def test_backlog_counts_small_and_mergeable_files_per_tenant() -> None:
    table = _table(_part([100, 100, 900]), _part([100] * 3, "day=2026-11-21", age_s=5))
    assert backlog([table], POLICY) == {"acme": {
        "small_files": 5, "small_bytes": 500, "mergeable_files": 3, "mergeable_bytes": 300}}


def test_invalid_policies_are_programming_errors() -> None:
    with pytest.raises(ValueError):
        CompactionPolicy(min_files=1)
    with pytest.raises(ValueError):
        CompactionPolicy(small_fraction=0)


def golden_text() -> str:
    tables = [
        TableFiles("acme", "events", (
            _part([120, 80, 300, 950, 60], "day=2026-11-18"),
            _part([700, 200, 150], "day=2026-11-19"),
            _part([50] * 9, "day=2026-11-20", age_s=30)), ("ts",)),
        TableFiles("acme", "loaded", (_part([300] * 5, "", loaded=True),)),
        TableFiles("globex", "orders", (_part([10] * 4, "region=eu", age_s=10),
                                        _part([10] * 4, "region=us")),
                   options=TableOptions(min_files=4, target_file_bytes=30)),
    ]
    plan = plan_compaction(tables, POLICY, NOW)
    document = {"policy": {"target_file_bytes": POLICY.target_file_bytes,
                           "min_files": POLICY.min_files,
                           "max_files_active": POLICY.max_files_active},
                "plan": plan.to_json(),
                "inputs": [[f.path for f in g.inputs] for g in plan.groups]}
    return json.dumps(document, indent=2) + "\n"


def test_golden_plan() -> None:
    assert_golden(GOLDEN, golden_text(), "the compaction plan")
