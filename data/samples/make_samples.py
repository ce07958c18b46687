"""Writes the sample data sets of the README's bulk-load examples, byte for byte the same on
every run (a fixed seed, no clock, no dict or set order):

- `events.parquet`, `events.csv`, `events.ndjson`: the same EVENTS rows in three formats.
  Parquet has the exact types: `amount` decimal128(10, 2), `ts` timestamp[us, tz=UTC],
  `day` date32; the text formats write them as `12.34`, ISO-8601 `2026-01-05T09:15:42.123456Z`
  and `2026-01-05`. Parquet and NDJSON also hold `device` (a struct {os, version}) and `tags`
  (a list of strings); CSV has no nested columns. Some values are NULL (empty in the CSV).
- `users.parquet`: USERS users (`user_id`, `name`, `signup` date) to join the events with.
  Some events name no user (NULL) and some a user_id that is not in users.

Run it with the project's environment: `.venv/bin/python data/samples/make_samples.py` (or pass
the folder to write to). The output is committed; tests/integration/test_samples.py
checks that it still matches this script.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SEED = 20260105
EVENTS = 300
USERS = 40
FIRST_DAY = dt.date(2026, 1, 1)
DAYS = 14
KINDS = ("view", "click", "cart", "purchase", "refund")
KIND_WEIGHTS = (40, 25, 15, 15, 5)
DEVICES = (("android", ("13", "14", "15")), ("ios", ("17.5", "18.1", "18.2")),
           ("web", ("chrome-131", "firefox-133")))
TAGS = ("promo", "newsletter", "mobile-app", "returning", "gift")
FIRST_NAMES = ("Ada", "Alan", "Barbara", "Claude", "Donald", "Edsger", "Frances", "Grace",
               "Hedy", "John", "Ken", "Leslie", "Margaret", "Niklaus", "Radia", "Tim")
LAST_NAMES = ("Hopper", "Knuth", "Liskov", "Lovelace", "Perlman", "Ritchie", "Shannon",
              "Turing", "Wirth", "Hamilton")

EVENT_SCHEMA = pa.schema([
    ("event_id", pa.int64()),
    ("ts", pa.timestamp("us", tz="UTC")),
    ("day", pa.date32()),
    ("user_id", pa.int64()),
    ("kind", pa.string()),
    ("amount", pa.decimal128(10, 2)),
    ("is_mobile", pa.bool_()),
    ("device", pa.struct([("os", pa.string()), ("version", pa.string())])),
    ("tags", pa.list_(pa.string())),
])
USER_SCHEMA = pa.schema([("user_id", pa.int64()), ("name", pa.string()),
                         ("signup", pa.date32())])
TEXT_COLUMNS = ("event_id", "ts", "day", "user_id", "kind", "amount", "is_mobile")


def users(rng: random.Random) -> list[dict[str, Any]]:
    return [{"user_id": user_id,
             "name": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
             "signup": dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(365))}
            for user_id in range(1, USERS + 1)]


def events(rng: random.Random) -> list[dict[str, Any]]:
    start = dt.datetime.combine(FIRST_DAY, dt.time(), tzinfo=dt.UTC)
    moments = sorted(rng.randrange(DAYS * 86_400_000_000) for _ in range(EVENTS))
    rows = []
    for event_id, micros in enumerate(moments, start=1):
        ts = start + dt.timedelta(microseconds=micros)
        kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
        os_name, versions = rng.choice(DEVICES)
        rows.append({
            "event_id": event_id,
            "ts": ts,
            "day": ts.date(),
            # NULL: an anonymous visitor; USERS + 1..3: a user the users table does not know.
            "user_id": None if rng.random() < 0.08 else rng.randint(1, USERS + 3),
            "kind": kind,
            "amount": _amount(rng, kind),
            "is_mobile": None if rng.random() < 0.05 else os_name != "web",
            "device": None if rng.random() < 0.05 else {
                "os": os_name, "version": rng.choice(versions)},
            "tags": None if rng.random() < 0.1 else sorted(
                rng.sample(TAGS, rng.choice((0, 1, 1, 2)))),
        })
    return rows


def _amount(rng: random.Random, kind: str) -> Decimal | None:
    """Money in cents: purchases and carts have one (sometimes missing), refunds a negative one."""
    if kind in ("view", "click") or rng.random() < 0.07:
        return None
    cents = rng.randint(99, 49_999)
    return Decimal(-cents if kind == "refund" else cents).scaleb(-2)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def csv_text(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TEXT_COLUMNS)
    for row in rows:
        writer.writerow([_text(row[name]) for name in TEXT_COLUMNS])
    return out.getvalue()


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return _iso(value)
    return str(value)  # dates are ISO already; Decimal keeps its two places: 12.30


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ndjson_text(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        fields = []
        for name, value in row.items():
            if isinstance(value, Decimal):
                text = str(value)  # a JSON number with its two places, not a float's digits
            elif isinstance(value, dt.datetime):
                text = json.dumps(_iso(value))
            elif isinstance(value, dt.date):
                text = json.dumps(value.isoformat())
            else:
                text = json.dumps(value, separators=(",", ":"))
            fields.append(f"{json.dumps(name)}:{text}")
        lines.append("{" + ",".join(fields) + "}\n")
    return "".join(lines)


def build() -> dict[str, bytes]:
    """Every sample file's name and bytes."""
    rng = random.Random(SEED)  # noqa: S311 - reproducible sample data, not a secret
    user_rows = users(rng)
    event_rows = events(rng)
    return {
        "events.parquet": parquet_bytes(pa.Table.from_pylist(event_rows, schema=EVENT_SCHEMA)),
        "events.csv": csv_text(event_rows).encode(),
        "events.ndjson": ndjson_text(event_rows).encode(),
        "users.parquet": parquet_bytes(pa.Table.from_pylist(user_rows, schema=USER_SCHEMA)),
    }


def main(folder: Path) -> None:
    for name, content in build().items():
        (folder / name).write_bytes(content)
        print(f"{folder / name}: {len(content):,} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
