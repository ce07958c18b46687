"""Our scan reading few-valued strings as dictionaries still skips the row groups a predicate
rules out (real Parquet files in tmp_path, read with pyarrow.dataset)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.executor.scan import ScanJob, scan_fragment

ROWS = 2000


@pytest.fixture
def job(tmp_path: Path) -> ScanJob:
    # Sorted by flag, 4 row groups of 500: each flag value lives in exactly one of them.
    table = pa.table({"flag": [f for f in "ABCD" for _ in range(ROWS // 4)],
                      "n": list(range(ROWS))})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=ROWS // 4)
    return ScanJob(tmp_path.as_uri(), ("t.parquet",), table.schema, ("flag", "n"),
                   "flag = 'B'")


@pytest.mark.parametrize("filter_rows", [False, True])
@pytest.mark.parametrize("dictionary", [(), ("flag",)])
def test_row_groups_are_skipped_with_or_without_dictionaries(
        job: ScanJob, filter_rows: bool, dictionary: tuple[str, ...]) -> None:
    rows = scan_fragment(replace(job, filter_rows=filter_rows, dictionary_columns=dictionary))
    # Only the row group holding 'B' is read; with filter_rows its rows are also filtered.
    assert rows.num_rows == ROWS // 4
    assert set(rows.column("flag").to_pylist()) == {"B"}
    assert rows.column("n").to_pylist() == list(range(ROWS // 4, ROWS // 2))
    assert pa.types.is_dictionary(rows.schema.field("flag").type) == bool(dictionary)


def test_no_predicate_reads_everything_as_a_dictionary(job: ScanJob) -> None:
    rows = scan_fragment(replace(job, predicate=None, dictionary_columns=("flag",)))
    assert rows.num_rows == ROWS
    assert rows.column("flag").type == pa.dictionary(pa.int32(), pa.string())
    assert rows.column("flag").to_pylist() == [f for f in "ABCD" for _ in range(ROWS // 4)]
