"""The log's unflushed entries kept as Arrow between queries (lakehouse/ingest/tail.py): kept
per entry, table and schema; bounded by bytes, the oldest kept when full; taken out once
flushed."""

from __future__ import annotations

import pyarrow as pa

from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.tail import ArrowTail
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
