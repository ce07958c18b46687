"""NDJSON batches read by Arrow whole give the answers, the stored records and the rejects the
record-by-record path gives: the same requests go to a server with the Arrow path and to one
without it (ingest_arrow_batches=false), both on a real RocksDB WAL, and everything is compared."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.ingest.arrow_read import read_ndjson

PASSWORD = "correct horse battery"
Request = tuple[bytes, dict[str, str]]  # body, extra headers


def _line(record: Any) -> bytes:
    return record if isinstance(record, bytes) else json.dumps(record).encode()


def ndjson(*records: Any) -> bytes:
    return b"\n".join(_line(r) for r in records)


def good(prefix: str, count: int = 3, **extra: Any) -> list[dict[str, Any]]:
    return [{"data_id": f"{prefix}{i}", **extra,
             "payload": {"name": f"n{i}", "age": 20 + i, "score": i / 3,
                         "profile": {"skills": ["a", "b"][: i % 3], "level": i}}}
            for i in range(count)]


def _nest(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


GOOD = ndjson(*good("g"))
# Each case: the requests sent in order (later ones see what earlier ones stored), and whether
# Arrow takes the first request whole.
CASES: dict[str, tuple[list[Request], bool]] = {
    "good batch": ([(GOOD, {})], True),
    "one record, with a null": ([(ndjson({"data_id": "o", "payload": {"a": None, "b": 1}}),
                                  {})], False),
    "retry of a stored batch": ([(GOOD, {}), (GOOD, {})], True),
    "retry with one record changed": ([(GOOD, {}), (ndjson(
        *good("g")[:2], {"data_id": "g2", "payload": {"name": "other"}}), {})], True),
    "type conflict with the stored schema": ([(GOOD, {}), (ndjson(
        {"data_id": "t1", "payload": {"age": "old"}}, *good("t", 2)), {})], True),
    "new columns and int64 promoted to float64": ([(GOOD, {}), (ndjson(
        {"data_id": "p1", "payload": {"age": 30.5, "extra": {"deep": [True]}}}), {})], True),
    "ints and floats mixed in a column, then retried": ([(ndjson(
        {"data_id": "m1", "payload": {"v": 1}}, {"data_id": "m2", "payload": {"v": 2.5}}), {}),
        (ndjson({"data_id": "m1", "payload": {"v": 1}}), {})], True),
    "explicit nulls and empty containers": ([(ndjson(
        {"data_id": "z1", "payload": {"a": None, "b": [], "c": {}}},
        {"data_id": "z2", "payload": {"a": 1, "b": [2, None]}}), {})], True),
    # Arrow's reader builds an invalid array for this one; the batch must go around it.
    "a list starting with null, then a number": ([(ndjson(
        {"data_id": "z1", "payload": {"b": [None, 2]}}), {})], False),
    "text that looks like a date": ([(ndjson(
        {"data_id": "d1", "payload": {"when": "2026-11-26T10:00:00Z", "day": "2026-11-26"}},
        {"data_id": "d2", "payload": {"when": "2026-11-27T10:00:00+01:00", "day": "x"}}),
        {})], True),
    "every record names one table": ([(ndjson(*good("tb", table="events")), {})], True),
    "a data_id of exactly 256 bytes": ([(ndjson(
        *good("b", 2), {"data_id": "é" * 128, "payload": {"x": 1}}), {})], True),
    "idempotency key replayed": ([(GOOD, {"Idempotency-Key": "k1"}),
                                  (GOOD, {"Idempotency-Key": "k1"})], True),
    "a malformed line": ([(ndjson(*good("b"), b"{not json"), {})], False),
    "two records on one line": ([(ndjson(good("b")[0], b'{"data_id": "x", "payload": {}} '
                                         b'{"data_id": "y", "payload": {}}'), {})], False),
    "blank lines": ([(ndjson(*good("b")[:1], b"", b"   ", *good("c")[:1]), {})], False),
    "a line that is not an object": ([(ndjson(*good("b"), [1, 2]), {})], False),
    "a missing data_id": ([(ndjson(*good("b"), {"payload": {"x": 1}}), {})], False),
    "an empty data_id": ([(ndjson(*good("b"), {"data_id": "", "payload": {}}), {})], False),
    "a numeric data_id": ([(ndjson(*good("b"), {"data_id": 7, "payload": {}}), {})], False),
    "a data_id over 256 bytes": ([(ndjson(
        *good("b"), {"data_id": "é" * 128 + "x", "payload": {}}), {})], False),
    "a data_id with NUL": ([(ndjson(*good("b"), {"data_id": "a\u0000b", "payload": {}}),
                             {})], False),
    "a data_id twice, same payload": ([(ndjson(*good("b"), good("b")[0]), {})], False),
    "a data_id twice, other payload": ([(ndjson(
        *good("b"), {"data_id": "b0", "payload": {"x": 1}}), {})], False),
    "a null payload": ([(ndjson(*good("b"), {"data_id": "n", "payload": None}), {})], False),
    "a payload that is not an object": ([(ndjson(*good("b"), {"data_id": "n", "payload": 3}),
                                          {})], False),
    "no payload at all": ([(ndjson({"data_id": "n"}), {})], False),
    "an unknown top-level key": ([(ndjson(*good("b"), {"data_id": "u", "payload": {},
                                                       "extra": 1}), {})], False),
    "an upsert": ([(GOOD, {}), (ndjson({**good("g")[0], "upsert": True}), {})], True),
    "a timestamp": ([(ndjson(*good("b", timestamp="2026-11-26T10:00:00Z")), {})], False),
    "two tables": ([(ndjson(*good("b", 2), *good("c", 2, table="other")), {})], False),
    "a bad table name": ([(ndjson(*good("b", table="_hidden")), {})], False),
    "an integer beyond int64": ([(ndjson(*good("b"), b'{"data_id": "big", "payload": '
                                         b'{"v": 9223372036854775808}}'), {})], False),
    "NaN": ([(ndjson({"data_id": "n1", "payload": {"v": 1.5}},
                     b'{"data_id": "nan", "payload": {"v": NaN}}'), {})], False),
    "Infinity": ([(ndjson({"data_id": "n1", "payload": {"v": [1.5]}},
                          b'{"data_id": "inf", "payload": {"v": [-Infinity]}}'), {})], False),
    "a field name outside the rules": ([(ndjson(
        *good("b"), {"data_id": "f", "payload": {"1bad": 1}}), {})], False),
    "a reserved top-level field": ([(ndjson(
        *good("b"), {"data_id": "f", "payload": {"data_id": 1}}), {})], False),
    "a key twice in one object": ([(ndjson(
        *good("b"), b'{"data_id": "k", "payload": {"a": 1, "a": 2}}'), {})], False),
    "nesting deeper than 32": ([(ndjson(*good("b"), {"data_id": "deep",
                                                     "payload": _nest(33)}), {})], False),
    "a list of mixed types": ([(ndjson(*good("b"), {"data_id": "l",
                                                    "payload": {"v": [1, "x"]}}), {})], False),
    "types that differ between records": ([(ndjson(
        {"data_id": "a", "payload": {"v": 1}}, {"data_id": "b", "payload": {"v": "x"}}),
        {})], False),
    "a byte-order mark": ([(b"\xef\xbb\xbf" + GOOD, {})], False),
    "invalid UTF-8 in a string": ([(ndjson(*good("b"), b'{"data_id": "u", "payload": '
                                           b'{"v": "\xff"}}'), {})], False),
    "CRLF line ends": ([(GOOD.replace(b"\n", b"\r\n"), {})], True),
}


def _client(tmp: Path, **overrides: Any) -> Iterator[TestClient]:
    core: Core = build_core(Settings.for_tests(tmp, **overrides), ingest=True)
    core.auth.create_user("writer", PASSWORD, "acme", Role.WRITER)
    try:
        with TestClient(create_app(Service.TENANT, core), raise_server_exceptions=False) as client:
            token = core.auth.login("writer", PASSWORD).access_token
            client.headers["Authorization"] = f"Bearer {token}"
            yield client
    finally:
        core.close()


@pytest.fixture
def arrow_client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path / "arrow")


@pytest.fixture
def python_client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path / "python", ingest_arrow_batches=False)


def _send(client: TestClient, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    response = client.post("/data/store", content=body,
                           headers={"Content-Type": "application/x-ndjson", **headers})
    return response.status_code, response.json()


def _stored(client: TestClient) -> dict[str, Any]:
    """Everything a client can read back, without what differs between any two runs."""
    stats = client.get("/data/stats").json()["tables"]
    out: dict[str, Any] = {"stats": [{k: v for k, v in t.items()
                                      if k not in ("bytes", "unflushed_bytes",
                                                   "oldest_unflushed_age_s")} for t in stats]}
    for table in [t["table"] for t in stats]:
        listed = client.get("/data", params={"table": table, "limit": 1000})
        if listed.status_code != 200:  # stats count rejects under the name a record gave
            out[table] = listed.status_code
            continue
        records = listed.json()["records"]
        for record in records:
            record.pop("timestamp")
            if table == "_rejects":
                record["payload"].pop("request_id")
            else:
                got = client.get("/data/retrieve", params={"data_id": record["data_id"],
                                                           "table": table}).json()
                assert got["payload"] == record["payload"]
        out[table] = records
    return out


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_arrow_batches_answer_and_store_as_records_checked_one_by_one(
        case: str, arrow_client: TestClient, python_client: TestClient) -> None:
    requests, _ = CASES[case]
    for body, headers in requests:
        assert _send(arrow_client, body, headers) == _send(python_client, body, headers)
    assert _stored(arrow_client) == _stored(python_client)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_arrow_takes_only_batches_it_can_decide(case: str) -> None:
    """The cases above do exercise the Arrow path (and the way around it)."""
    requests, taken = CASES[case]
    assert (read_ndjson(requests[0][0], "records", 10_000) is not None) is taken


def test_arrow_refuses_what_the_record_checks_would_reject() -> None:
    """A single bad record anywhere in a large batch keeps the whole batch off the Arrow path."""
    base = good("r", 500)
    for case, (requests, taken) in CASES.items():
        if taken or case.startswith("one record"):  # refused for being alone, not for a fault
            continue
        body = requests[-1][0]
        mixed = ndjson(*base[:250]) + b"\n" + body + b"\n" + ndjson(*base[250:])
        assert read_ndjson(mixed, "records", 10_000) is None, case
    too_many = ndjson(*good("r", 11))
    assert read_ndjson(too_many, "records", 10) is None


def test_concurrent_retries_of_batches_store_each_record_once(arrow_client: TestClient) -> None:
    """Overlapping batches sent many times at once: every data_id is stored once, and every
    answer gives it the sequence number it was stored under."""
    records = good("race", 300)
    bodies = [ndjson(*records[start:start + 200]) for start in (0, 50, 100)] * 8
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = [body for status, body in pool.map(
            lambda body: _send(arrow_client, body, {}), bodies) if status == 200]
    assert len(answers) == len(bodies)
    assert sum(a["accepted"] for a in answers) == 300
    assert sum(a["accepted"] + a["duplicate"] for a in answers) == 200 * len(bodies)
    seqs: dict[str, set[int]] = {}
    for answer in answers:
        for result in answer["records"]:
            assert result["status"] == "duplicate", result
            seqs.setdefault(result["data_id"], set()).add(result["seq"])
    listed = arrow_client.get("/data", params={"limit": 1000}).json()["records"]
    assert sorted(r["data_id"] for r in listed) == sorted(r["data_id"] for r in records)
    stored = {r["data_id"]: r["seq"] for r in listed}
    assert all(found == {stored[data_id]} for data_id, found in seqs.items())


@pytest.mark.parametrize("arrow", [True, False])
def test_a_retry_is_a_duplicate_when_its_column_turned_float(
        arrow: bool, arrow_client: TestClient, python_client: TestClient) -> None:
    """1 and 1.0 are one value once the column is float64: an exact retry is no conflict."""
    client = arrow_client if arrow else python_client
    first = _send(client, ndjson({"data_id": "m1", "payload": {"v": 1, "w": [2]}},
                                 {"data_id": "m2", "payload": {"v": 2.5, "w": [0.5]}}), {})
    assert first[1]["accepted"] == 2
    again = _send(client, ndjson({"data_id": "m1", "payload": {"v": 1, "w": [2]}},
                                 {"data_id": "m2", "payload": {"v": 2.5, "w": [0.5]}}), {})
    assert [r["status"] for r in again[1]["records"]] == ["duplicate", "duplicate"]
    changed = _send(client, ndjson({"data_id": "m1", "payload": {"v": 1.5, "w": [2]}},
                                   {"data_id": "m3", "payload": {"v": True}}), {})
    assert changed[1]["records"][0]["status"] == "conflict"


@pytest.mark.parametrize(("query", "headers"), [
    ("?table=events", {}),
    ("?table=bad-name", {}),
    ("?table=", {}),
    ("?table", {}),
    ("?table=events&other=1", {}),
    ("?table=a&table=b", {}),
    ("", {"Idempotency-Key": "k" * 257}),
    ("", {"Authorization": "Bearer not-a-token"}),
    ("", {"X-Tenant-Id": "someone-else"}),
    ("", {"Content-Type": "text/plain"}),
    ("", {"Content-Type": "application/json"}),
])
def test_requests_around_the_batch_are_answered_alike(
        query: str, headers: dict[str, str], arrow_client: TestClient,
        python_client: TestClient) -> None:
    """What the fast layer in front of the app does not take, the app answers."""
    def send(client: TestClient) -> tuple[int, Any]:
        response = client.post("/data/store" + query, content=GOOD, headers={
            "Content-Type": "application/x-ndjson", **headers})
        return response.status_code, response.json()

    assert send(arrow_client) == send(python_client)
    assert _stored(arrow_client) == _stored(python_client)
