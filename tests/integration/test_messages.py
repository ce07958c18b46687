"""Refusals say what is wrong in the caller's terms and what to do, in the one error shape:
no Python class names, no framework wording as the message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(Settings.for_tests(tmp_path, query_on_dask=False), ingest=True)
    built.auth.create_user("w", PASSWORD, "acme", Role.WRITER)
    yield built
    built.close()


@pytest.fixture
def operation(core: Core) -> Iterator[TestClient]:
    with TestClient(create_app(Service.OPERATION, core), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {core.auth.login('w', PASSWORD).access_token}"
        yield client


def test_a_syntax_error_names_line_column_and_token(operation: TestClient) -> None:
    answer = operation.post("/query/execute", json={"query": "SELECT 1 *"})
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == {"error", "message", "details"} and body["error"] == "syntax_error"
    assert body["message"].startswith("SQL syntax error near line 1, column 10: ")
    assert "'*'" in body["message"] and "correct the query" in body["message"]
    assert "<class" not in answer.text and "sqlglot" not in answer.text
    [problem] = body["details"]["problems"]
    assert (problem["line"], problem["column"]) == (1, 10)


@pytest.mark.parametrize("content_type", [None, "text/plain",
                                          "application/x-www-form-urlencoded"])
def test_a_body_sent_without_a_json_content_type_says_to_send_json(
        core: Core, operation: TestClient, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = operation.post("/query/execute", content=b'{"query": "SELECT 1"}', headers=headers)
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "invalid_request"
    assert body["message"] == "send the body as JSON with Content-Type: application/json"
    assert body["details"]["problems"]  # pydantic's own account stays in the details
    with TestClient(create_app(Service.AUTH, core), raise_server_exceptions=False) as auth:
        login = auth.post("/auth/login", content=b'{"username": "w", "password": "x"}',
                          headers=headers)
    assert login.json()["message"] == "send the body as JSON with Content-Type: application/json"
    array = operation.post("/query/execute", json=[{"query": "SELECT 1"}])
    assert array.json()["message"] == "the body must be a JSON object ({...}), not an array"


def test_a_body_with_sql_instead_of_query_names_the_field(core: Core,
                                                         operation: TestClient) -> None:
    answer = operation.post("/query/execute", json={"sql": "SELECT 1"})
    assert answer.status_code == 422
    assert answer.json()["message"] == 'unknown field `sql`: the field is `query`'
    with TestClient(create_app(Service.TENANT, core), raise_server_exceptions=False) as tenant:
        single = tenant.post("/data/execute", json={"sql": "SELECT 1"},
                             headers={"Authorization": operation.headers["Authorization"]})
    assert single.status_code == 422
    assert single.json()["message"] == 'unknown field `sql`: the field is `query`'
    neither = operation.post("/query/execute", json={})
    assert neither.json()["message"] == 'give exactly one of "query" (SQL) and "dsl"'


def test_the_result_of_a_failed_query_says_why_it_failed(core: Core,
                                                         operation: TestClient) -> None:
    assert core.ingest is not None
    core.ingest.write("acme", [{"data_id": "a", "table": "orders",
                                "payload": {"city": "Oslo"}}]).answer(timeout_s=10)
    failed = operation.post("/query/execute",
                            json={"query": "SELECT CAST(city AS INTEGER) FROM orders"})
    assert failed.status_code == 400 and failed.json()["error"] == "query_failed"
    result = operation.get(f"/query/{failed.json()['details']['query_id']}/result")
    assert result.status_code == 400
    assert result.json()["error"] == "query_failed" and "Oslo" in result.json()["message"]
