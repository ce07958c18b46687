"""Empty objects made writable to Parquet (lakehouse/storage/parquet_files.parquet_ready): at
every depth, in slices, with the rest of every value kept."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.storage.parquet_files import parquet_ready

EMPTY = pa.struct([])


@pytest.mark.parametrize(("values", "kind", "expected"), [
    ([{}, None], EMPTY, [None, None]),
    ([{"a": 1, "e": {}}, None, {"a": 2, "e": None}], pa.struct([("a", pa.int64()), ("e", EMPTY)]),
     [{"a": 1, "e": None}, None, {"a": 2, "e": None}]),
    ([[{}, {}], None, []], pa.list_(EMPTY), [[None, None], None, []]),
    ([{"l": [{"e": {}, "b": "x"}]}], pa.struct([("l", pa.list_(pa.struct([
        ("e", EMPTY), ("b", pa.string())])))]), [{"l": [{"e": None, "b": "x"}]}]),
], ids=["top", "in-struct", "in-list", "deep"])
def test_empty_objects_become_nulls_and_the_rest_is_kept(values: list[object], kind: pa.DataType,
                                                         expected: list[object]) -> None:
    table = pa.table({"k": pa.array(range(len(values)), pa.int64()),
                      "v": pa.array(values, kind)})
    ready = parquet_ready(table)
    assert ready.column("k").to_pylist() == list(range(len(values)))
    assert ready.column("v").to_pylist() == expected
    sink = io.BytesIO()
    pq.write_table(ready, sink)  # the point: Parquet takes it
    assert pq.read_table(io.BytesIO(sink.getvalue())).column("v").to_pylist() == expected


def test_a_sliced_list_column_keeps_its_own_rows() -> None:
    column = pa.array([[{}], [{}, {}], None, [{}, {}, {}]], pa.list_(EMPTY)).slice(1, 3)
    ready = parquet_ready(pa.table({"v": column}))
    assert ready.column("v").to_pylist() == [[None, None], None, [None, None, None]]


def test_a_table_without_empty_objects_is_returned_as_it_is() -> None:
    table = pa.table({"a": [1], "s": pa.array([{"b": 1}])})
    assert parquet_ready(table) is table
