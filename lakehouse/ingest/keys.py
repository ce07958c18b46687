"""Side keys the ingest path keeps in the WAL's index, written atomically with the records.

Typed builders instead of f-strings: a NUL separates the parts, and names can hold no NUL.
"""

from __future__ import annotations

from dataclasses import dataclass

SEP = b"\x00"


@dataclass(frozen=True, slots=True)
class TableRef:
    tenant: str
    table: str

    def prefix(self) -> bytes:
        return self.tenant.encode() + SEP + self.table.encode() + SEP


def record_prefix(ref: TableRef) -> bytes:
    """Where a table's record keys start: built once per batch, then + data_id per record."""
    return b"I" + ref.prefix()


def record_key(ref: TableRef, data_id: str) -> bytes:
    """data_id → seq: what makes a retry harmless (payloads are compared only when an id
    comes back)."""
    return record_prefix(ref) + data_id.encode()


def request_key(tenant: str, idempotency_key: str) -> bytes:
    """Idempotency-Key header → the answer given to the first request with it."""
    return b"K" + tenant.encode() + SEP + idempotency_key.encode()


def schema_key(ref: TableRef) -> bytes:
    return b"S" + ref.prefix()


STATS_PREFIX = b"T"  # every table's counters, scanned at start-up


def stats_key(ref: TableRef) -> bytes:
    return STATS_PREFIX + ref.prefix()


def table_from_key(key: bytes) -> TableRef:
    tenant, table, _rest = key[1:].split(SEP, 2)
    return TableRef(tenant.decode(), table.decode())


def decode_seq(value: bytes) -> int:
    return int.from_bytes(value[:8], "big")
