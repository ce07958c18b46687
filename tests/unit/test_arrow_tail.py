"""The log's unflushed entries kept as Arrow between queries (lakehouse/ingest/tail.py): kept
per entry, table and schema; bounded by bytes, the oldest kept when full; taken out once
flushed. And the per-table entry lists queries ask for (lakehouse/ingest/state.py)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.state import TableState
from lakehouse.ingest.tail import ArrowTail, Run
from lakehouse.schema import FieldType

REF = TableRef("acme", "orders")


def _rows(n: int) -> pa.Table:
    return pa.table({"a": list(range(n))})


def _schema(*names: str) -> FieldType:
    return FieldType.from_json({"type": "struct",
                                "fields": [{"name": n, "type": "int64"} for n in names]})


def test_kept_per_entry_table_and_schema() -> None:
    tail, schema = ArrowTail(), _schema("a")
    tail.put(5, REF, schema, _rows(3))
    assert tail.get(5, REF, schema) is not None
    assert tail.get(5, REF, _schema("a")) is not None  # an equal schema
    assert tail.get(5, REF, _schema("a", "b")) is None  # the schema grew: converted again
    assert tail.get(5, TableRef("acme", "other"), schema) is None
    assert tail.get(6, REF, schema) is None
    assert (tail.hits, tail.misses) == (2, 3)


def test_bounded_by_bytes_keeping_the_oldest_and_emptied_by_the_flush() -> None:
    schema, size = _schema("a"), _rows(4).nbytes
    tail = ArrowTail(max_bytes=3 * size)
    for first in (1, 2, 3, 4):
        tail.put(first, REF, schema, _rows(4))
    # Full: the newest is not kept, the oldest stay (a query reads them first, the flush
    # takes them first).
    assert tail.entries == 3 and tail.get(4, REF, schema) is None
    assert all(tail.get(f, REF, schema) is not None for f in (1, 2, 3))
    tail.forget_through(1, TableRef("acme", "other"))  # another table's flush
    assert tail.entries == 3
    tail.forget_through(2, REF)
    assert tail.entries == 1 and tail.bytes == size and tail.get(3, REF, schema) is not None
    tail.put(4, REF, schema, _rows(4))
    tail.forget_through(10)  # every table
    assert (tail.entries, tail.bytes) == (0, 0)
    off = ArrowTail(max_bytes=0)
    off.put(1, REF, schema, _rows(1))
    assert off.entries == 0


def _run(firsts: tuple[int, ...], sizes: tuple[int, ...], schema: FieldType) -> Run:
    starts = tuple(sum(sizes[:i]) for i in range(len(sizes)))
    # Each entry's rows are its first sequence number repeated, so a slice shows whose it is.
    rows = pa.table({"a": [f for f, n in zip(firsts, sizes, strict=True) for _ in range(n)]})
    return Run(schema, firsts, starts, rows.combine_chunks(), rows.nbytes)


def test_a_run_gives_the_entries_it_holds_only_when_they_are_exactly_those_wanted() -> None:
    run = _run((3, 5, 9), (2, 1, 3), _schema("a"))
    cases = [  # wanted → (entries taken from the run, their rows), or None
        ([3, 5, 9], (3, [3, 3, 5, 9, 9, 9])),
        ([3, 5, 9, 12, 14], (3, [3, 3, 5, 9, 9, 9])),  # the entries since are read one by one
        ([5, 9, 12], (2, [5, 9, 9, 9])),  # 3 flushed: the rest of the run
        ([9], (1, [9, 9, 9])),
        ([12, 14], None),  # the whole run flushed
        ([2, 3, 5, 9], None),  # an older query's entry the run no longer holds
        ([3, 9], None),  # 5 missing (left out of this query): merged again
        ([3, 4, 5, 9], None),  # an entry the run lacks, between its own
        ([], None),
    ]
    for wanted, expected in cases:
        found = run.from_entries(wanted)
        got = None if found is None else (len(found.firsts), found.rows.column("a").to_pylist())
        assert got == expected, wanted


def test_a_run_loses_its_flushed_entries() -> None:
    run = _run((3, 5, 9), (2, 1, 3), _schema("a"))
    assert run.after(2) is run
    left = run.after(4)
    assert left is not None and (left.firsts, left.starts) == ((5, 9), (0, 1))
    assert left.rows.column("a").to_pylist() == [5, 9, 9, 9] and left.size == run.size
    assert run.after(9) is None and run.after(100) is None


def test_a_run_takes_the_place_of_its_entries_within_the_bound() -> None:
    schema, size = _schema("a"), _rows(4).nbytes
    tail = ArrowTail(max_bytes=10 * size)
    for first in (1, 2, 3):
        tail.put(first, REF, schema, _rows(4))
    other = TableRef("acme", "other")
    tail.put(4, other, schema, _rows(4))
    tail.put(5, REF, schema, _rows(4))  # the table's, after the run: not in it
    run = _run((1, 2, 3), (4, 4, 4), schema)
    tail.put_run(REF, run)
    assert tail.run(REF, schema) is run and tail.run(REF, _schema("a")) is run
    assert tail.run(REF, _schema("a", "b")) is None and tail.run(other, schema) is None
    # Its entries are no longer kept one by one; another table's, and one it lacks, are.
    assert all(tail.get(f, REF, schema) is None for f in (1, 2, 3))
    assert tail.get(4, other, schema) is not None and tail.get(5, REF, schema) is not None
    assert (tail.entries, tail.bytes) == (5, run.size + 2 * size)
    tail.forget_through(1, REF)
    kept = tail.run(REF, schema)
    assert kept is not None and kept.firsts == (2, 3) and tail.entries == 4
    tail.forget_through(3)
    assert tail.run(REF, schema) is None and (tail.entries, tail.bytes) == (2, 2 * size)
    # A run over the bound is not kept, and what was kept stays.
    small = ArrowTail(max_bytes=2 * size)
    small.put(1, REF, schema, _rows(4))
    small.put_run(REF, _run((1, 2, 3), (4, 4, 4), schema))
    assert small.run(REF, schema) is None and small.get(1, REF, schema) is not None


@pytest.mark.parametrize(("seqs", "before", "expected"), [
    ((), None, []),
    ((5, 9, 14), None, [14, 9, 5]),  # newest first
    ((5, 9, 14), 14, [9, 5]),  # entries holding records below 14
    ((5, 9, 14), 15, [14, 9, 5]),
    ((5, 9, 14), 5, []),
    ((5, 9, 14), 1, []),
])
def test_entries_before_a_sequence_number_newest_first(
        seqs: tuple[int, ...], before: int | None, expected: list[int]) -> None:
    state = TableState(REF)
    for seq in seqs:
        state.add_entry(seq, 4, 10, 0)
    assert state.entries_before(before) == expected


@pytest.mark.parametrize(("seqs", "watermark", "expected"), [
    ((), 0, []),
    ((5, 9, 14), 0, [5, 9, 14]),  # oldest first
    ((5, 9, 14), 5, [9, 14]),  # an entry whose first record is at the watermark was flushed
    ((5, 9, 14), 8, [9, 14]),
    ((5, 9, 14), 14, []),
    ((5, 9, 14), 99, []),
])
def test_entries_after_a_watermark_oldest_first(
        seqs: tuple[int, ...], watermark: int, expected: list[int]) -> None:
    state = TableState(REF)
    for seq in seqs:
        state.add_entry(seq, 4, 10, 0)
    if seqs:
        state.add_entry(seqs[0], 4, 10, 0)  # a replayed entry already known changes nothing
    assert state.entries_after(watermark) == expected
