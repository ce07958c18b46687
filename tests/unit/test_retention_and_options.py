"""Retention's plan and the table options, as pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from lakehouse.catalog.lake import ColumnStats, DataFile
from lakehouse.catalog.options import DAY_S, MIB, TableOptions, parse_options
from lakehouse.compaction.retention import newest_row_us, plan_retention
from lakehouse.compaction.state import PartitionFiles, TableFiles
from lakehouse.errors import InvalidInput

NOW = 1_800_000_000.0  # 2027-01-15
US = 1_000_000


def _file(partition: str, newest_s: float | None, n: int = 0) -> DataFile:
    stats = () if newest_s is None else (
        ColumnStats("_timestamp", int((newest_s - 60) * US), int(newest_s * US), 0, 5),)
    return DataFile(f"t/{partition}/{n}.parquet", partition, 5, 100, n + 1, n + 1, stats,
                    file_id=n + 1)


def _table(files: list[DataFile], retention_days: float | None) -> TableFiles:
    parts: dict[str, list[DataFile]] = {}
    for f in files:
        parts.setdefault(f.partition, []).append(f)
    return TableFiles("acme", "events",
                      tuple(PartitionFiles(p, tuple(fs), 0.0) for p, fs in sorted(parts.items())),
                      options=TableOptions(None if retention_days is None
                                           else retention_days * DAY_S))


def test_files_entirely_older_than_the_period_are_dropped() -> None:
    files = [_file("day=2026-12-01", NOW - 40 * DAY_S, 0),
             _file("day=2026-12-20", NOW - 26 * DAY_S, 1),  # straddles: kept, rows hidden
             _file("day=2026-12-20", NOW - 31 * DAY_S, 2),
             _file("day=2027-01-14", NOW - DAY_S, 3)]
    [drop] = plan_retention([_table(files, 30)], NOW)
    assert [f.file_id for f in drop.files] == [1, 3]
    assert drop.partitions == ("day=2026-12-01",)
    assert drop.cutoff_us == int((NOW - 30 * DAY_S) * US)


def test_no_period_no_drop() -> None:
    assert plan_retention([_table([_file("day=2020-01-01", NOW - 999 * DAY_S)], None)],
                          NOW) == []


def test_day_partitions_date_files_without_statistics() -> None:
    assert newest_row_us(_file("day=2026-11-26", None)) == int(
        1_795_737_600 * US) - 1  # the day's last microsecond
    assert newest_row_us(_file("region=eu", None)) is None
    assert newest_row_us(_file("day=garbage", None)) is None


@pytest.mark.parametrize(("spec", "expected"), [
    ({}, TableOptions()),
    ({"retention_days": 7}, TableOptions(retention_s=7 * DAY_S)),
    ({"target_file_mb": 256, "min_files": 8}, TableOptions(None, 256 * MIB, 8)),
    ({"retention_days": None, "target_file_mb": None}, TableOptions()),
])
def test_options_parse(spec: dict[str, Any], expected: TableOptions) -> None:
    assert parse_options(spec) == expected
    assert parse_options(expected.to_json()) == expected


@pytest.mark.parametrize("spec", [
    {"retention_days": 0}, {"retention_days": -1}, {"retention_days": "7"},
    {"retention_days": True}, {"target_file_mb": 0}, {"target_file_mb": 10_000},
    {"min_files": 1}, {"min_files": 2.5}, {"min_files": True}, {"colour": "red"},
])
def test_bad_options_are_refused(spec: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        parse_options(spec)
