"""Where RocksDB's own log replay would hang: a pure walk over a log file's bytes.

RocksDB (as rocksdict ships it) loops for ever in `log::Reader::ReadRecord` when the log holds
a physical record of one of the *recyclable* types (5-8, and 11 for timestamp sizes) but was
written without log recycling, which ours always is (`recycle_log_file_num` is never set).
Garbage after the last record, a torn sector or a block someone else wrote, starts with such a
header about once in 50 cases (5 types of 256; every type was tried, these five hang), and then
the start-up never returns (RocksDB issue #13333). The watchdog in opening.py turns that hang
into a refusal; this walk finds the header so the bytes from there on can be set aside before
RocksDB reads them, and the log opens.

Everything before that header is left as it is: RocksDB itself decides how far to replay (it
stops at the first record whose checksum fails, which garbage always is), and the
acknowledged-sequence marker still refuses a log that recovered less than was acknowledged.
The format: https://github.com/facebook/rocksdb/wiki/Write-Ahead-Log-File-Format.
"""

from __future__ import annotations

BLOCK_BYTES = 32 * 1024
HEADER_BYTES = 7  # checksum (4), length (2, little-endian), type (1)
# Full, first, middle and last fragment, and the timestamp-size record, each with a log number.
RECYCLABLE_TYPES = frozenset({5, 6, 7, 8, 11})


def hang_offset(data: bytes) -> int | None:
    """The offset of the first recyclable-type header the replay could reach, or None.

    The walk reads headers where the reader does: record after record within a block, and,
    where the reader drops the rest of a block (a zero header, as a preallocated tail has, or
    a length running past the block, as a torn or garbage record has), from the next block
    on. A record with a bad checksum is walked over as the reader walks over it. Replay stops
    at the first corrupt record in point-in-time recovery, but the reader keeps scanning for
    the next record within the same call, so a header anywhere after it can still hang it;
    cutting at such a header removes only bytes that are never replayed.
    """
    offset = 0
    while offset + HEADER_BYTES <= len(data):
        left_in_block = BLOCK_BYTES - offset % BLOCK_BYTES
        if left_in_block < HEADER_BYTES:  # the block's trailer: padding the writer skips
            offset += left_in_block
            continue
        length = int.from_bytes(data[offset + 4:offset + 6], "little")
        kind = data[offset + 6]
        if kind in RECYCLABLE_TYPES:
            return offset
        if (kind == 0 and length == 0) or HEADER_BYTES + length > left_in_block:
            offset += left_in_block  # the reader drops the rest of the block
            continue
        offset += HEADER_BYTES + length
    return None
