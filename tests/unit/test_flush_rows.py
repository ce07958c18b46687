"""A flush's rows from its log entries (lakehouse/ingest/flush_rows.py `entries_table`):
consecutive Arrow entries with the same columns are converted together, and the rows are the
same, sequence numbers included, as entry by entry."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from lakehouse.ingest.batch import RecordBatch
from lakehouse.ingest.flush_rows import entries_table
from lakehouse.schema import FieldType

SCHEMA = FieldType.from_json({"type": "struct", "fields": [
    {"name": "n", "type": "int64"}, {"name": "x", "type": "float64"},
    {"name": "s", "type": "string"}]})


def _arrow(tag: str, rows: int, payload: dict[str, list[object]]) -> RecordBatch:
    ids = [f"{tag}-{i}" for i in range(rows)]
    payloads = pa.StructArray.from_arrays([pa.array(v) for v in payload.values()],
                                          names=list(payload))
    return RecordBatch("acme", "t", None, 1, arrow=RecordBatch.arrow_table(
        ids, [1_700_000_000_000_000 + i for i in range(rows)], [i == 1 for i in range(rows)],
        payloads))


def _json(tag: str, rows: int) -> RecordBatch:
    return RecordBatch("acme", "t", None, 1, rows=tuple(
        (f"{tag}-{i}", 1_700_000_000_000_000 + i, {"n": i, "s": tag}, False)
        for i in range(rows)))


def test_entries_taken_together_give_the_rows_entry_by_entry_would() -> None:
    entries = [
        (10, _arrow("a", 3, {"n": [1, 2, None], "x": [0.5, None, 1.5]})),
        (20, _arrow("b", 2, {"n": [3, 4], "x": [2.5, 3.5]})),  # seqs 20, 21: a gap after a
        (22, _arrow("c", 1, {"n": [5], "x": [4.5]})),
        (23, _arrow("d", 2, {"n": [6, 7], "s": ["p", "q"]})),  # other columns: a new group
        (40, _arrow("e", 2, {"n": [8, 9], "s": ["r", None]})),
        (42, _json("f", 2)),  # JSON rows between Arrow entries
        (50, _arrow("g", 1, {"n": [10], "x": [5.5]})),
        (51, _arrow("h", 0, {"n": [], "x": []})),  # an empty entry
    ]
    together = entries_table(entries, SCHEMA)
    one_by_one = pa.concat_tables([entries_table([entry], SCHEMA) for entry in entries])
    assert together.schema == one_by_one.schema
    assert together.to_pylist() == one_by_one.to_pylist()
    assert together.column("_seq").to_pylist() == [10, 11, 12, 20, 21, 22, 23, 24, 40, 41, 42,
                                                   43, 50]
    assert together.column("data_id").to_pylist()[:4] == ["a-0", "a-1", "a-2", "b-0"]
    assert together.column("_upsert").to_pylist()[:3] == [False, True, False]
    assert together.column("x").to_pylist()[:3] == [0.5, None, 1.5]
    assert together.column("s").to_pylist()[6:10] == ["p", "q", "r", None]


def test_entries_of_an_exact_table_stored_in_json_types_are_converted_value_by_value() -> None:
    """A table with a date column: entries stored with its Arrow types go together, one
    stored before the column was a date (the date as text) is converted by value, in order."""
    exact = FieldType.from_json({"type": "struct", "fields": [
        {"name": "at", "type": "date"}, {"name": "n", "type": "int64"}]})
    day = dt.date(2026, 1, 3)
    entries = [
        (1, _arrow("a", 2, {"at": [day, None], "n": [1, 2]})),
        (3, _arrow("b", 1, {"at": ["2026-01-04"], "n": [3]})),  # stored as text
        (4, _arrow("c", 1, {"at": [day], "n": [4]})),
        (5, _arrow("d", 1, {"at": [day], "n": [5]})),
    ]
    rows = entries_table(entries, exact)
    assert rows.column("at").type == pa.date32()
    assert rows.column("at").to_pylist() == [day, None, dt.date(2026, 1, 4), day, day]
    assert rows.column("_seq").to_pylist() == [1, 2, 3, 4, 5]
    assert rows.column("n").to_pylist() == [1, 2, 3, 4, 5]


def test_no_entries_give_no_rows_in_the_file_layout() -> None:
    empty = entries_table([], SCHEMA)
    assert empty.num_rows == 0
    assert empty.column_names == ["data_id", "_seq", "_timestamp", "_upsert", "n", "x", "s"]
