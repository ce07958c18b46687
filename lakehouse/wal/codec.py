"""Bytes on disk: the key layout and a versioned value codec for the write-ahead log.

Keys share one RocksDB keyspace, told apart by a one-byte tag, so a range operation on one kind
can never touch another:

    b"L" + first_seq (8 bytes, big-endian)   a log entry; big-endian so byte order = seq order
    b"M" + name                              log metadata (e.g. the highest seq assigned)
    b"X" + caller's key                      index side keys

A log value is VERSION (1 byte) + width (4 bytes, big-endian) + payload. The version byte lets a
later format coexist with entries already on disk; anything we cannot decode is refused loudly,
never guessed at.
"""

from __future__ import annotations

import struct

from lakehouse.errors import WalCorrupted
from lakehouse.wal.port import MAX_WIDTH, StoredEntry

VERSION = 1
_HEADER = struct.Struct(">BI")  # version, width

LOG_TAG = b"L"
META_TAG = b"M"
INDEX_TAG = b"X"
MAX_SEQ = 2**64 - 1

LOG_FIRST_KEY = LOG_TAG + bytes(8)
LOG_PAST_END = LOG_TAG + b"\xff" * 8  # >= every log key, < every meta and index key
META_LAST_SEQ = META_TAG + b"last_seq"


def log_key(seq: int) -> bytes:
    return LOG_TAG + seq.to_bytes(8, "big")


def seq_of(key: bytes) -> int:
    if len(key) != 9 or key[:1] != LOG_TAG:
        raise WalCorrupted(f"not a log key: {key!r}")
    return int.from_bytes(key[1:], "big")


def is_log_key(key: bytes) -> bool:
    return len(key) == 9 and key[:1] == LOG_TAG


def index_key(key: bytes) -> bytes:
    return INDEX_TAG + key


def encode_entry(width: int, payload: bytes) -> bytes:
    if not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"width must be in [1, {MAX_WIDTH}], got {width}")
    return _HEADER.pack(VERSION, width) + payload


def decode_entry(seq: int, value: bytes) -> StoredEntry:
    """The entry stored under `seq`; WalCorrupted if the value is not one we wrote."""
    if len(value) < _HEADER.size:
        raise WalCorrupted(
            f"WAL entry {seq} is truncated: {len(value)} bytes, the header alone is "
            f"{_HEADER.size}",
            details={"seq": seq, "length": len(value)},
        )
    version, width = _HEADER.unpack_from(value)
    if version != VERSION:
        raise WalCorrupted(
            f"WAL entry {seq} has codec version {version}; this build reads only version "
            f"{VERSION} (written by a newer build, or corrupted)",
            details={"seq": seq, "version": version},
        )
    if width < 1:
        raise WalCorrupted(f"WAL entry {seq} has width 0", details={"seq": seq})
    return StoredEntry(seq=seq, width=width, payload=value[_HEADER.size:])


def encode_u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def decode_u64(what: str, value: bytes) -> int:
    if len(value) != 8:
        raise WalCorrupted(f"{what} should be 8 bytes, found {len(value)}",
                           details={"length": len(value)})
    return int.from_bytes(value, "big")
