"""The log's unflushed entries kept as Arrow between queries (lakehouse/ingest/tail.py): kept
per entry, table and schema; bounded by rows, the least recently read going first; taken out
once flushed."""

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


def test_bounded_by_rows_and_emptied_by_the_flush() -> None:
    tail, schema = ArrowTail(max_rows=10), _schema("a")
    for first in (1, 2, 3):
        tail.put(first, REF, schema, _rows(4))
    assert tail.rows == 8 and tail.get(1, REF, schema) is None  # the oldest read went
    assert tail.get(2, REF, schema) is not None
    tail.put(4, REF, schema, _rows(4))  # 3 was read least recently
    assert tail.get(3, REF, schema) is None and tail.get(2, REF, schema) is not None
    tail.put(9, REF, schema, _rows(11))  # larger than the whole tail: not kept
    assert tail.get(9, REF, schema) is None
    tail.forget_through(3)
    assert tail.rows == 4 and tail.get(4, REF, schema) is not None
