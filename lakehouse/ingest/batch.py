"""What one WAL entry holds: the accepted records of one request for one table.

Versioned: the first field is the format version, so a later format can still read old entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from lakehouse.errors import WalCorrupted

FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class StoredRecord:
    seq: int
    data_id: str
    timestamp_us: int
    payload: dict[str, Any]
    upsert: bool


@dataclass(frozen=True, slots=True)
class RecordBatch:
    tenant: str
    table: str
    request_id: str | None
    received_us: int
    # (data_id, timestamp_us, payload, upsert); record i has sequence number first_seq + i
    rows: tuple[tuple[str, int, dict[str, Any], bool], ...]

    def encode(self) -> bytes:
        return orjson.dumps({"v": FORMAT_VERSION, "t": self.tenant, "b": self.table,
                             "r": self.request_id, "rx": self.received_us, "d": self.rows})

    @staticmethod
    def decode(data: bytes) -> RecordBatch:
        try:
            obj = orjson.loads(data)
            if obj.get("v") != FORMAT_VERSION:
                raise WalCorrupted(f"unknown record batch format {obj.get('v')!r}")
            rows = tuple((str(d), int(ts), p, bool(u)) for d, ts, p, u in obj["d"])
            return RecordBatch(obj["t"], obj["b"], obj["r"], int(obj["rx"]), rows)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise WalCorrupted("a WAL entry is not a readable record batch",
                               details={"problem": str(exc)[:200]}) from exc

    def records(self, first_seq: int) -> list[StoredRecord]:
        return [StoredRecord(first_seq + i, d, ts, p, u)
                for i, (d, ts, p, u) in enumerate(self.rows)]
