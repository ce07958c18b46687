"""Which string columns a scan reads as dictionaries: a table of cases over catalog stats."""

from __future__ import annotations

import pytest

from lakehouse.catalog.lake import ColumnStats, DataFile
from lakehouse.optimizer.encodings import dictionary_columns


def _file(rows: int, *stats: tuple[str, object, int | None]) -> DataFile:
    return DataFile(f"acme/t/{rows}-{len(stats)}.parquet", "", rows, 1000, None, None,
                    tuple(ColumnStats(c, low, low, 0, distinct) for c, low, distinct in stats))


CASES = [
    ("few distinct strings", [_file(1000, ("flag", "A", 3))], None, ("flag",)),
    ("many distinct strings", [_file(1000, ("name", "a", 900))], None, ()),
    ("exactly a tenth of the rows", [_file(1000, ("flag", "A", 100))], None, ("flag",)),
    ("just over a tenth", [_file(1000, ("flag", "A", 101))], None, ()),
    ("over the absolute limit", [_file(10**7, ("flag", "A", 10_001))], None, ()),
    ("numbers are not dictionaries", [_file(1000, ("n", 1, 3))], None, ()),
    ("no distinct estimate", [_file(1000, ("flag", "A", None))], None, ()),
    ("all nulls: no min, not known as a string", [_file(1000, ("flag", None, 0))], None, ()),
    ("system columns never", [_file(1000, ("data_id", "a", 3), ("_seq", 1, 3))], None, ()),
    ("every file must agree",
     [_file(1000, ("flag", "A", 3)), _file(1000, ("flag", "A", 900))], None, ()),
    ("a file without stats for it", [_file(1000, ("flag", "A", 3)), _file(1000)], None, ()),
    ("only the columns read, in their order",
     [_file(1000, ("a", "x", 2), ("b", "y", 2), ("c", "z", 2))], ("c", "a"), ("c", "a")),
    ("no files", [], None, ()),
]


@pytest.mark.parametrize(("files", "columns", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_dictionary_columns(files: list[DataFile], columns: tuple[str, ...] | None,
                            expected: tuple[str, ...]) -> None:
    assert dictionary_columns(tuple(files), columns) == expected
