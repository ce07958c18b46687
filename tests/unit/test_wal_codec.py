"""The WAL's bytes on disk: the value codec and the key layout."""

from __future__ import annotations

import pytest

from lakehouse.errors import WalCorrupted
from lakehouse.wal.codec import (
    VERSION,
    decode_entry,
    decode_u64,
    encode_entry,
    encode_u64,
    index_key,
    is_log_key,
    log_key,
    seq_of,
)
from lakehouse.wal.port import MAX_WIDTH, StoredEntry


@pytest.mark.parametrize(("width", "payload"), [
    (1, b""),
    (1, b"{\"a\": 1}"),
    (1000, bytes(range(256)) * 1200),  # ~300 KB, every byte value
    (MAX_WIDTH, b"\x00"),
])
def test_round_trip(width: int, payload: bytes) -> None:
    assert decode_entry(42, encode_entry(width, payload)) == StoredEntry(42, width, payload)


def test_the_format_is_version_width_payload() -> None:
    # Pinned: entries already on disk must stay readable by every later build.
    assert VERSION == 1
    assert encode_entry(3, b"abc") == b"\x01" + b"\x00\x00\x00\x03" + b"abc"
    assert encode_entry(2**24 + 1, b"") == b"\x01\x01\x00\x00\x01"


@pytest.mark.parametrize("width", [0, -1, MAX_WIDTH + 1])
def test_encode_refuses_a_width_it_cannot_store(width: int) -> None:
    with pytest.raises(ValueError, match="width"):
        encode_entry(width, b"x")


@pytest.mark.parametrize("version", [0, 2, 255])
def test_an_unknown_version_is_refused(version: int) -> None:
    value = bytes([version]) + encode_entry(1, b"payload")[1:]
    with pytest.raises(WalCorrupted, match=f"version {version}") as caught:
        decode_entry(7, value)
    assert caught.value.details == {"seq": 7, "version": version}
    assert caught.value.code == "wal_corrupted"


@pytest.mark.parametrize("length", [0, 1, 4])
def test_a_truncated_value_is_refused(length: int) -> None:
    with pytest.raises(WalCorrupted, match="truncated"):
        decode_entry(9, encode_entry(5, b"payload")[:length])


def test_a_zero_width_is_refused() -> None:
    with pytest.raises(WalCorrupted, match="width 0"):
        decode_entry(1, b"\x01\x00\x00\x00\x00payload")


def test_a_header_with_no_payload_is_an_empty_payload() -> None:
    assert decode_entry(1, encode_entry(2, b"payload")[:5]) == StoredEntry(1, 2, b"")


def test_log_keys_sort_like_their_sequence_numbers() -> None:
    seqs = [1, 2, 255, 256, 65_536, 2**40, 2**64 - 1]
    keys = [log_key(seq) for seq in seqs]
    assert sorted(keys) == keys
    assert [seq_of(key) for key in keys] == seqs
    assert all(is_log_key(key) for key in keys)
    assert log_key(1) == b"L\x00\x00\x00\x00\x00\x00\x00\x01"


def test_other_keys_are_not_log_keys() -> None:
    assert not is_log_key(index_key(log_key(1)[1:]))
    assert not is_log_key(b"Mlast_seq")
    assert not is_log_key(b"L\x00")
    assert index_key(b"acme/1") == b"Xacme/1"
    with pytest.raises(WalCorrupted):
        seq_of(b"Xabcdefgh")


def test_u64_round_trip_and_truncation() -> None:
    assert decode_u64("x", encode_u64(2**64 - 1)) == 2**64 - 1
    assert encode_u64(5) == b"\x00" * 7 + b"\x05"
    with pytest.raises(WalCorrupted, match="8 bytes, found 3"):
        decode_u64("the marker", b"\x00\x00\x01")
