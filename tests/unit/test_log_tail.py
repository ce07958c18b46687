"""Where RocksDB's log replay would hang (lakehouse/wal/log_tail.py), on hand-built logs.

The headers follow RocksDB's legacy log format; checksums are left zero because the walk does
not read them (the real replay stops at the first bad one, before anything later)."""

from __future__ import annotations

import pytest

from lakehouse.wal.log_tail import BLOCK_BYTES, HEADER_BYTES, hang_offset

FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def record(kind: int, payload_bytes: int) -> bytes:
    return bytes(4) + payload_bytes.to_bytes(2, "little") + bytes([kind]) + b"x" * payload_bytes


ONE = record(FULL, 100)
# Fills the first block to 3 bytes short of its end: those 3 are the trailer the writer pads.
TO_TRAILER = record(FULL, BLOCK_BYTES - HEADER_BYTES - 3) + bytes(3)


@pytest.mark.parametrize(("log", "expected"), [
    (b"", None),
    (ONE, None),
    (ONE * 3, None),
    (record(5, 100), 0),
    (ONE + record(8, 100), len(ONE)),
    (ONE + record(6, 0), len(ONE)),
    (ONE + record(11, 8), len(ONE)),
    (ONE + record(7, 40_000), len(ONE)),  # its length does not matter: the type does
    (ONE + bytes(4096), None),  # zeros: the reader drops the rest of the block
    (ONE + bytes(4) + (60_000).to_bytes(2, "little") + bytes([FULL]), None),  # past its block
    # What the reader drops, it drops to the next block, where it reads a header again.
    (ONE + bytes(BLOCK_BYTES - len(ONE)) + record(6, 3), BLOCK_BYTES),
    (ONE + bytes(4) + (60_000).to_bytes(2, "little") + bytes([FULL])
     + bytes(BLOCK_BYTES - len(ONE) - 7) + record(5, 3), BLOCK_BYTES),
    (ONE + record(12, 10) + record(8, 10), len(ONE) + 17),  # an unknown type is walked over
    (ONE + record(FIRST, 50) + record(MIDDLE, 50) + record(LAST, 50) + record(7, 1),
     len(ONE) + 3 * 57),
    (TO_TRAILER + record(8, 10), BLOCK_BYTES),  # the trailer is skipped, not read as a header
    (TO_TRAILER + ONE, None),
    (ONE + record(8, 1)[:5], None),  # a header cut short at the end of the file
], ids=["empty", "one", "three", "first", "after-one", "empty-payload", "timestamp-size", "long",
        "zeros", "too-long", "after-zeros", "after-too-long", "unknown-type", "fragments",
        "next-block", "next-block-fine", "cut-short"])
def test_the_hang_is_found_where_the_replay_would_reach_it(log: bytes,
                                                            expected: int | None) -> None:
    assert hang_offset(log) == expected


def test_a_record_ending_exactly_at_the_block_end_leaves_no_trailer() -> None:
    exact = record(FULL, BLOCK_BYTES - HEADER_BYTES)
    assert hang_offset(exact + record(5, 1)) == BLOCK_BYTES
