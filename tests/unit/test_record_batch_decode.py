"""A log entry's Arrow stream read back (lakehouse/ingest/batch.py): with schemas kept by their
encoded bytes, every entry still reads as the table that was written, whatever its columns, and
a stream the short way cannot read is read the usual way or refused as before."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakehouse.errors import WalCorrupted
from lakehouse.ingest import batch as batch_module
from lakehouse.ingest.batch import ARROW_MAGIC, RecordBatch
from lakehouse.kept import Kept


def _entry(payload: pa.StructArray, table: str = "orders") -> tuple[RecordBatch, bytes]:
    rows = len(payload)
    arrow = RecordBatch.arrow_table([f"d{i}" for i in range(rows)], list(range(rows)),
                                    [i % 2 == 0 for i in range(rows)], payload)
    written = RecordBatch("acme", table, "r-1", 7, arrow=arrow)
    return written, written.encode()


PAYLOADS = [
    pa.array([{"n": 1, "s": "a"}, {"n": 2, "s": None}]),
    pa.array([{"n": 1.5, "s": "a"}]),  # the same names, another type
    pa.array([{"s": "a", "n": 1}]),  # the same columns in another order
    pa.array([{"tags": ["x", "y"], "at": {"day": 3}}]),
    pa.array([], pa.struct([("n", pa.int64())])),  # no rows
]


def test_every_entry_reads_back_as_written_in_any_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "_SCHEMAS", Kept(batch_module.SCHEMAS_KEPT))
    entries = [_entry(payload) for payload in PAYLOADS]
    for written, data in [*entries, *reversed(entries), *entries]:
        read = RecordBatch.decode(data)
        assert read == written or (read.arrow is not None and written.arrow is not None
                                   and read.arrow.equals(written.arrow)
                                   and read.arrow.schema.equals(written.arrow.schema))
        assert (read.tenant, read.table, read.request_id, read.received_us) == (
            "acme", "orders", "r-1", 7)
    assert len(batch_module._SCHEMAS) == len({p.type for p in PAYLOADS})


def test_a_stream_with_dictionaries_is_read_the_usual_way() -> None:
    payload = pa.StructArray.from_arrays(
        [pa.array(["a", "b", "a"]).dictionary_encode()], names=["s"])
    written, data = _entry(payload)
    read = RecordBatch.decode(data)
    assert read.arrow is not None and written.arrow is not None
    assert read.arrow.equals(written.arrow)


def test_the_schemas_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch_module, "_SCHEMAS", Kept(2))
    for payload in PAYLOADS:
        RecordBatch.decode(_entry(payload)[1])
        assert len(batch_module._SCHEMAS) <= 2


def test_every_cut_of_an_entry_is_refused() -> None:
    """An entry cut anywhere, even at a boundary between its stream's messages, is refused: its
    stream no longer ends with the end-of-stream marker every written one has (and where its
    last bytes only look like one, the next test)."""
    _, data = _entry(PAYLOADS[0])
    for cut in range(1, len(data)):
        with pytest.raises(WalCorrupted):
            RecordBatch.decode(data[:cut])


def test_the_short_way_reads_our_streams_and_leaves_the_columns_aligned(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("read the usual way")

    monkeypatch.setattr(pa.ipc, "open_stream", refuse)
    for payload in PAYLOADS:
        written, data = _entry(payload)
        read = RecordBatch.decode(data)
        assert read.arrow is not None and written.arrow is not None
        assert read.arrow.equals(written.arrow)
        for column in read.arrow.columns:
            for chunk in column.chunks:
                assert all(buffer is None or buffer.address % 8 == 0
                           for buffer in chunk.buffers())


def test_garbage_after_the_header_is_refused() -> None:
    _, data = _entry(PAYLOADS[0])
    start = data.index(b"}") + 1
    with pytest.raises(WalCorrupted):
        RecordBatch.decode(ARROW_MAGIC + data[1:start] + b"\x00" * 3 + b"garbage" * 5)


def test_a_stream_cut_where_its_last_bytes_look_like_the_end_marker_is_refused() -> None:
    """Cut between two record batches where the first one's last value is 0x00000000ffffffff,
    whose bytes are those of the end-of-stream marker: refused, not read as fewer rows."""
    looks_like_the_end = 0xFFFFFFFF
    payload = pa.array([{"n": looks_like_the_end}], pa.struct([("n", pa.int64())]))
    one = RecordBatch.arrow_table(["d0"], [0], [False], payload)
    written = RecordBatch("acme", "orders", "r-1", 7, arrow=pa.concat_tables([one, one]))
    data = written.encode()
    start = data.index(b"}") + 1  # the stream follows the JSON header
    reader = pa.BufferReader(pa.py_buffer(data[start:]))
    pa.ipc.read_message(reader)  # the schema
    pa.ipc.read_message(reader)  # the first batch
    cut = data[:start + reader.tell()]
    assert cut.endswith(b"\xff\xff\xff\xff\x00\x00\x00\x00")
    with pytest.raises(WalCorrupted):
        RecordBatch.decode(cut)
    whole = RecordBatch.decode(data).arrow
    assert whole is not None and whole.num_rows == 2
