"""Records written but not yet durable, by record key: a second write of one of them waits for
(or conflicts with) the first instead of reading the log, where it is not yet.

One `InflightWrite` stands for all the records of one table in one write, shared by their keys,
so reserving a batch is one C-level dict update rather than an object per record; where a key's
record sits is worked out only when it is asked for, which is rare (a retry racing the write).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from lakehouse.ingest.records import IncomingRecord


class InflightWrite:
    __slots__ = ("_positions", "first_offset", "future", "keys", "records")

    def __init__(self, future: Future[int], first_offset: int, keys: list[bytes],
                 records: Sequence[IncomingRecord]) -> None:
        self.future = future
        self.first_offset = first_offset  # offset of records[0] among the write's records
        self.keys = keys
        self.records = records
        self._positions: dict[bytes, int] | None = None

    def find(self, key: bytes) -> tuple[int, dict[str, Any]]:
        """(offset of the key's record among the write's records, its payload)."""
        if self._positions is None:
            self._positions = {k: i for i, k in enumerate(self.keys)}
        position = self._positions[key]
        return self.first_offset + position, self.records[position].payload


def reserve(inflight: dict[bytes, InflightWrite], future: Future[int],
            writes: Sequence[tuple[list[bytes], Sequence[IncomingRecord]]]) -> None:
    """Mark the records of one write (its tables' keys and records, in write order)."""
    offset = 0
    for keys, records in writes:
        inflight.update(dict.fromkeys(keys, InflightWrite(future, offset, keys, records)))
        offset += len(records)


def release(inflight: dict[bytes, InflightWrite], future: Future[int],
            keys: Sequence[bytes]) -> None:
    """Forget the records the write of `future` reserved, once it is done."""
    for key in keys:
        held = inflight.get(key)
        if held is not None and held.future is future:
            del inflight[key]
