"""Pruning by statistics: tables of filters against one file's min/max."""

from __future__ import annotations

import pytest

from lakehouse.catalog.lake import ColumnStats, DataFile
from lakehouse.errors import InvalidInput
from lakehouse.optimizer.pruning import Comparison, may_match, parse_filter

FILE = DataFile("t/f.parquet", "day=2026-11-26", 100, 1000, 1, 100, stats=(
    ColumnStats("age", 18, 65, 0, 40), ColumnStats("name", "ann", "zoe", 5, 90),
    ColumnStats("score", 0.5, 9.5, 100, None), ColumnStats("ok", False, True, 0, 2),
    ColumnStats("_timestamp", 1_795_651_200_000_000, 1_795_737_599_000_000, 0, 100)))


@pytest.mark.parametrize(
    ("condition", "keeps"),
    [
        ("age = 30", True), ("age = 17", False), ("age > 65", False), ("age >= 65", True),
        ("age < 18", False), ("age <= 18", True), ("70 < age", False), ("18 >= age", True),
        ("age IN (1, 2, 3)", False), ("age IN (1, 40)", True),
        ("age BETWEEN 66 AND 90", False), ("age BETWEEN 60 AND 90", True),
        ("name = 'bob'", True), ("name > 'zz'", False), ("name IS NULL", True),
        ("score IS NOT NULL", False), ("score > 100", False),  # all null: nothing matches
        ("age > 30 AND name < 'a'", False), ("age > 30 OR name < 'a'", True),
        ("age + 1 > 100", True), ("unknown_column = 5", True), ("age = 'text'", True),
        ("_timestamp >= TIMESTAMP '2026-11-27 00:00:00'", False),
        ("_timestamp >= TIMESTAMP '2026-11-26 12:00:00'", True),
        ("age > -5", True), ("ok = TRUE", True),
    ],
)
def test_may_match(condition: str, keeps: bool) -> None:
    assert may_match(FILE, parse_filter(condition)) is keeps


def test_parse_filter_reads_only_what_it_understands() -> None:
    assert parse_filter("age > 3 AND (name = 'x' AND lower(name) = 'y')") == (
        Comparison("age", ">", (3,)), Comparison("name", "=", ("x",)))
    with pytest.raises(InvalidInput):
        parse_filter("age >")
