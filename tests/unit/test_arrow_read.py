"""The Arrow reading of NDJSON batches never accepts what the per-record checks would refuse,
and what it accepts has the type and the values those checks see (random batches, fixed seed)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from lakehouse.ingest.arrow_read import ArrowRows, read_ndjson
from lakehouse.ingest.batch import strip_nulls
from lakehouse.ingest.records import check_records, parse_ndjson
from lakehouse.schema import evolve_many

NAMES = ["a", "b", "name", "Age", "x_1", "data_id", "1bad", "_hidden", "é", "n" * 64, ""]
WORDS = ["text", "2026-11-26", "2026-11-26T10:00:00Z", "", "a\u0000b", "ü"]


class Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def name(self, top: bool) -> str:
        # Mostly good names, so that some batches are accepted whole.
        return self.rng.choice(NAMES if self.rng.random() < 0.1 else NAMES[:5 - int(top)])

    def scalar(self) -> Any:
        if self.rng.random() < 0.03:  # the edges of int64
            return self.rng.choice([2**63, 2**64 - 1, 2**63 - 1, -(2**63)])
        return self.rng.choice([None, True, self.rng.randint(-9, 9), self.rng.random() * 100,
                                2.0, self.rng.choice(WORDS)])

    def value(self, depth: int) -> Any:
        roll = self.rng.random()
        if depth > 34 or roll < 0.6:
            return self.scalar()
        if roll < 0.8:
            return [self.value(depth + 1) for _ in range(self.rng.randint(0, 3))]
        return self.obj(depth + 1, top=False)

    def obj(self, depth: int, *, top: bool) -> dict[str, Any]:
        if self.rng.random() < 0.02:  # a deep chain
            deep: dict[str, Any] = {"leaf": 1}
            for _ in range(self.rng.randint(28, 34)):
                deep = {"n": deep}
            return deep
        return {self.name(top): self.value(depth) for _ in range(self.rng.randint(0, 4))}

    def record(self, index: int) -> Any:
        roll = self.rng.random()
        record: dict[str, Any] = {"data_id": f"id{index}", "payload": self.obj(1, top=True)}
        if roll < 0.03:
            record["data_id"] = self.rng.choice(["", 7, None, "x" * 257, "id0"])
        elif roll < 0.05:
            record["payload"] = self.rng.choice([None, 3, [1], "p"])
        elif roll < 0.06:
            record[self.rng.choice(["table", "upsert", "timestamp", "other"])] = "records"
        elif roll < 0.07:
            return self.rng.choice([[1, 2], "text", 5])
        return record

    def body(self) -> bytes:
        lines = [orjson.dumps(self.record(i)) for i in range(self.rng.randint(2, 6))]
        if self.rng.random() < 0.05:
            lines.insert(self.rng.randint(0, len(lines)), self.rng.choice(
                [b"", b"{bad", b'{"data_id": "n", "payload": {"v": NaN}}',
                 b'{"data_id": "d", "payload": {"a": 1, "a": 2}}']))
        return b"\n".join(lines)


def _same_values(arrow: list[Any], python: list[Any]) -> bool:
    # Python's == also holds between 1 and 1.0: a column that is float64 holds ints as floats.
    return [strip_nulls(v) for v in arrow] == [strip_nulls(v) for v in python]


@pytest.mark.parametrize("seed", range(4))
def test_arrow_accepts_only_what_every_record_check_accepts(seed: int) -> None:
    gen = Gen(seed)
    accepted = refused = 0
    for _ in range(600):
        body = gen.body()
        batch = read_ndjson(body, "records", 10_000)
        parsed = list(parse_ndjson(body))
        raws = [value for _, value in parsed]
        good, bad = check_records(raws, 0, typed=True) if not any(
            isinstance(v, Exception) for v in raws) else ([], [None])
        if batch is None:
            refused += 1
            continue
        accepted += 1
        assert not bad, body
        assert len({r.data_id for r in good}) == len(good) == len(batch), body
        schema, evolutions = evolve_many(None, [r.payload_type for r in good if r.payload_type])
        assert not any(e.conflicts for e in evolutions), body
        assert schema == batch.payload_type, body
        rows = ArrowRows(batch, batch.data_ids.to_pylist(), 0)
        assert [r.data_id for r in rows] == [r.data_id for r in good]
        assert _same_values([r.payload for r in rows], [r.payload for r in good]), body
    # Both ways are exercised.
    assert accepted > 40 and refused > 100, (accepted, refused)
