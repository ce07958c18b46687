"""Cost of the nesting scan every request body goes through (lakehouse/json_nesting.py), per MB,
against reading the same bytes with `pyarrow.json` (the /data/store fast path) and with orjson
line by line (the record-by-record path), measured in this run on the same bodies.

    .venv/bin/python bench/nesting_scan.py
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pyarrow.json as pj

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import make_records

from lakehouse.json_nesting import NestingScan

CHUNK = 64 * 1024  # as api.middleware hands chunks to the scan


def best_ms_per_mb(work: Callable[[], object], size: int, rounds: int = 7) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best * 1000 / (size / 2**20)


def scan(body: bytes, chunk: int) -> None:
    nesting = NestingScan(64)
    for offset in range(0, len(body), chunk):
        nesting.feed(body[offset:offset + chunk])


def report(name: str, body: bytes) -> None:
    size = len(body)
    chunked = best_ms_per_mb(lambda: scan(body, CHUNK), size)
    whole = best_ms_per_mb(lambda: scan(body, size), size)
    print(f"{name}, {size / 2**20:.1f} MB: scan {chunked:.2f} ms/MB in 64 KiB chunks, "
          f"{whole:.2f} ms/MB whole")
    if body.startswith(b"{"):  # NDJSON: what the write path would read it with
        arrow = best_ms_per_mb(lambda: pj.read_json(io.BytesIO(body)), size, 3)
        lines = best_ms_per_mb(lambda: [orjson.loads(line) for line in body.split(b"\n")],
                               size, 3)
        print(f"    reference: pyarrow.json {arrow:.2f} ms/MB (the scan is {chunked / arrow:.0%}"
              f" of it), orjson per line {lines:.2f} ms/MB ({chunked / lines:.0%})")


def main() -> None:
    records = make_records(20_000, "r")
    # Text fields holding JSON of their own: escaped quotes, brackets inside strings.
    embedded = json.dumps({"a": [1, {"b": 'x"y'}], "t": "line\nnext"})
    report("NDJSON records (bench/ingest.py's)", b"\n".join(orjson.dumps(r) for r in records))
    report("NDJSON records holding JSON text", b"\n".join(orjson.dumps(
        {**r, "payload": {**r["payload"], "raw": embedded}}) for r in records))
    report("a pretty-printed JSON array", json.dumps(records, indent=2).encode())


if __name__ == "__main__":
    main()
