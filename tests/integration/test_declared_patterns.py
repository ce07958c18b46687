"""A writer's `str_matches` pattern cannot stall the platform: RE2 runs it in linear time, off
the event loop, and what RE2 cannot run (or too long a pattern) is refused at declaration."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core
from api.services import Service
from lakehouse.ingest import type_checks
from lakehouse.schema.patterns import MAX_PATTERN_CHARS
from tests.integration.test_ingest_api import assert_error, post

PATHOLOGICAL = "^(a+)+$"  # Python's re: ~10 s for 28 characters, doubling with each one more


@pytest.fixture
def catalog(tenant_client: TestClient, ingest_core: Core) -> Iterator[TestClient]:
    with TestClient(create_app(Service.CATALOG, ingest_core),
                    raise_server_exceptions=False) as client:
        client.headers.update(tenant_client.headers)
        yield client


def declaration(pattern: Any, table: str = "codes") -> dict[str, Any]:
    return {"table": table, "columns": {"code": "string"},
            "checks": [{"column": "code", "check": "str_matches", "value": pattern}]}


def record(data_id: str, code: str) -> dict[str, Any]:
    return {"data_id": data_id, "table": "codes", "payload": {"code": code}}


@pytest.mark.timeout(120)  # fails, rather than hangs, where a backtracking engine runs it
def test_a_pathological_pattern_answers_at_once(tenant_client: TestClient,
                                                catalog: TestClient) -> None:
    assert catalog.post("/metadata/tables", json=declaration(PATHOLOGICAL)).status_code == 201
    # Warm-up, so what is timed is the matching: the first check imports pandas and pandera.
    assert post(tenant_client, record("warm", "aaa")).status_code == 201

    start = time.perf_counter()
    refused = post(tenant_client, record("short", "a" * 28 + "!"))
    elapsed = time.perf_counter() - start
    assert_error(refused, 400, "check_failed")
    assert elapsed < 1.0, f"one record took {elapsed:.1f} s"

    start = time.perf_counter()
    answer = tenant_client.post("/data/store", json=[
        record("long-bad", "a" * 10_000 + "!"), record("long-good", "a" * 10_000)])
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"the batch took {elapsed:.1f} s"
    assert (answer.json()["accepted"], answer.json()["rejected"]) == (1, 1)
    [rejected] = answer.json()["records"]  # the answer lists the records not taken
    assert (rejected["data_id"], rejected["error"]) == ("long-bad", "check_failed")
    assert f"fails str_matches('{PATHOLOGICAL}')" in rejected["reason"]
    stored = tenant_client.get("/data/retrieve", params={"data_id": "long-good",
                                                        "table": "codes"})
    assert stored.json()["payload"] == {"code": "a" * 10_000}


@pytest.mark.parametrize(("pattern", "words"), [
    (r"^(\w+) \1$", "RE2"),  # a backreference
    (r"(?=\d)\w+", "RE2"),  # lookahead
])
def test_a_pattern_re2_cannot_run_is_refused_at_declaration(
        catalog: TestClient, pattern: str, words: str) -> None:
    body = assert_error(catalog.post("/metadata/tables", json=declaration(pattern)),
                        400, "invalid_declaration")
    assert words in body["message"] and "backreferences or lookaround" in body["message"]
    assert body["details"] == {"pattern": pattern}
    # Nothing was declared: the same table takes a pattern RE2 runs.
    assert catalog.post("/metadata/tables", json=declaration(r"^\w+$")).status_code == 201


def test_an_over_long_pattern_is_refused_naming_the_limit(catalog: TestClient) -> None:
    pattern = "a" * (MAX_PATTERN_CHARS + 1)
    body = assert_error(catalog.post("/metadata/tables", json=declaration(pattern)),
                        400, "invalid_declaration")
    assert f"at most {MAX_PATTERN_CHARS} characters" in body["message"]
    assert body["details"] == {"limit": MAX_PATTERN_CHARS, "length": MAX_PATTERN_CHARS + 1}


def test_checks_run_off_the_event_loop(tenant_client: TestClient, catalog: TestClient,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The event loop serves every service of the process: declared checks run elsewhere."""
    assert catalog.post("/metadata/tables", json=declaration("^[a-z]+$")).status_code == 201
    on_loop: list[bool] = []
    checked = type_checks.failing_records

    def spy(*args: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # no loop runs in this thread
            on_loop.append(False)
        return checked(*args)

    monkeypatch.setattr(type_checks, "failing_records", spy)
    assert post(tenant_client, record("one", "abc")).status_code == 201
    assert tenant_client.post("/data/store", json=[record("two", "def")]).status_code == 200
    assert tenant_client.post("/data/store", content=json.dumps(record("three", "ghi")),
                              headers={"Content-Type": "application/x-ndjson"}
                              ).status_code == 200
    assert on_loop == [False, False, False]
