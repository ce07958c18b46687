"""Pins the one error shape every service answers with, whatever went wrong."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core
from api.errors import RETRY_AFTER_S
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LakehouseError,
    NotFound,
    NotServed,
    QueryTimeout,
    StorageFull,
    Unauthenticated,
    Unavailable,
)
from lakehouse.schema.names import NAME_PATTERN
from tests.conftest import logged_in


@pytest.mark.parametrize(
    ("error", "status", "code", "retryable"),
    [
        (InvalidInput("bad", details={"field": "x"}), 400, "invalid_input", False),
        (Unauthenticated("who are you"), 401, "unauthenticated", False),
        (Forbidden("no"), 403, "forbidden", False),
        (NotFound("gone"), 404, "not_found", False),
        (Conflict("again"), 409, "conflict", True),
        (Unavailable("later", headers={"Retry-After": "3"}), 503, "unavailable", True),
        (InvalidInput("custom", code="table_name_invalid"), 400, "table_name_invalid", False),
        (QueryTimeout("too long"), 408, "query_timeout", True),
        (StorageFull("disk full"), 507, "storage_full", True),
        (NotServed("not here", code="queries_not_served"), 503, "queries_not_served", False),
    ],
)
def test_lakehouse_errors_render_one_shape(core: Core, error: LakehouseError, status: int,
                                           code: str, retryable: bool) -> None:
    app = create_app(Service.TENANT, core)
    router = APIRouter()

    @router.get("/boom")
    def boom() -> None:
        raise error

    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == status
    assert response.json() == {"error": code, "message": error.message, "details": error.details}
    assert error.retryable is retryable
    for name, value in error.headers.items():
        assert response.headers[name] == value
    assert response.headers["x-request-id"]
    # A retryable 429, 503 or 507 always says when to retry (its own wait, else the default);
    # a refusal no retry can change (this process does not serve it) says nothing of the kind.
    if status in RETRY_AFTER_S and retryable:
        assert response.headers["retry-after"] == error.headers.get(
            "Retry-After", str(RETRY_AFTER_S[status]))
    else:
        assert "retry-after" not in response.headers


def test_every_status_an_error_can_answer_is_declared_with_its_headers(core: Core) -> None:
    """A client generated from the documents expects each of them, with the one error body,
    and Retry-After where the answer may carry it."""
    statuses = {cls.http_status for cls in _error_classes(LakehouseError)} - {500}
    doc = create_app(Service.TENANT, core).openapi()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            declared = {int(s) for s in operation["responses"] if s.isdigit()}
            assert statuses <= declared, (path, method, statuses - declared)
            for status in RETRY_AFTER_S:
                assert "Retry-After" in operation["responses"][str(status)]["headers"]


def _error_classes(root: type[LakehouseError]) -> set[type[LakehouseError]]:
    found = {root}
    for sub in root.__subclasses__():
        found |= _error_classes(sub)
    return found


def test_framework_errors_and_crashes_render_the_same_shape(core: Core) -> None:
    app = create_app(Service.TENANT, core)
    router = APIRouter()

    @router.get("/crash")
    def crash() -> None:
        raise RuntimeError("secret internal detail")

    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as client:
        missing = client.get("/no/such/path")
        assert missing.status_code == 404
        assert set(missing.json()) == {"error", "message", "details"}
        wrong_method = client.delete("/health")
        assert wrong_method.status_code == 405
        assert wrong_method.json()["error"] == "method_not_allowed"
        crashed = client.get("/crash")
        assert crashed.status_code == 500
        body = crashed.json()
        assert body["error"] == "internal_error"
        assert "secret internal detail" not in crashed.text
        assert "Traceback" not in crashed.text


def test_request_id_is_echoed_or_made(client_for: Callable[[Service], TestClient]) -> None:
    client = client_for(Service.CBO)
    given = client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    hostile = client.get("/health", headers={"X-Request-Id": "a b\"c" * 40})
    assert hostile.headers["x-request-id"] != "a b\"c" * 40
    assert len(hostile.headers["x-request-id"]) == 32


def test_unknown_query_parameters_are_refused_naming_the_one_meant(core: Core) -> None:
    """An ignored parameter is a confident wrong answer (`?snapshot_id=3` read the newest
    snapshot): every route refuses the query parameters it does not define."""
    core.auth.create_user("qp", "correct-horse-battery", "acme", Role.READER)
    token = core.auth.login("qp", "correct-horse-battery").access_token
    with TestClient(create_app(Service.CATALOG, core), raise_server_exceptions=False) as client:
        answer = client.get("/metadata/tables", params={"snapshots": 1},
                            headers={"Authorization": f"Bearer {token}"})
        fine = client.get("/metadata/tables", params={"snapshot": 1},
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["error"] == "unknown_parameter"
    assert "snapshots (did you mean snapshot?)" in body["message"]
    assert body["details"]["parameters"] == ["snapshots"]
    assert fine.status_code in (200, 404), fine.text


def test_a_parameter_given_twice_is_refused_where_one_value_is_taken(core: Core) -> None:
    """`?user=a&user=b` on GET /queries listed one user's queries, silently: which value counts
    is a guess the caller cannot see, so it is a 400 naming the parameter."""
    core.auth.create_user("twice", "correct-horse-battery", "acme", Role.READER)
    token = core.auth.login("twice", "correct-horse-battery").access_token
    with TestClient(create_app(Service.OPERATION, core), raise_server_exceptions=False) as client:
        answer = client.get("/queries?user=a&user=b&limit=5",
                            headers={"Authorization": f"Bearer {token}"})
        once = client.get("/queries?user=a&limit=5", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "repeated_parameter"
    assert answer.json()["details"]["parameters"] == ["user"]
    assert once.status_code == 200, once.text


def test_table_names_carry_their_rule_in_every_document(core: Core) -> None:
    """Every `table` a request may name states the rule the code enforces (a generated client
    or fuzzer then sends names the platform takes), and a name breaking it is still answered
    400 `invalid_table_name`, as the code does, not a generic 422."""
    rule = f"^{NAME_PATTERN.pattern}$"
    seen = 0
    for service in Service:
        doc = create_app(service, core).openapi()
        schemas = doc["components"]["schemas"]
        for path, operations in doc["paths"].items():
            for method, operation in operations.items():
                places = [p["schema"] for p in operation.get("parameters", [])
                          if p["name"] == "table"]
                body = operation.get("requestBody", {}).get("content", {}).get(
                    "application/json", {}).get("schema", {})
                if "$ref" in body:
                    found = schemas[body["$ref"].rsplit("/", 1)[1]].get("properties", {})
                    places += [found["table"]] if "table" in found else []
                for schema in places:
                    options = schema.get("anyOf", [schema])
                    patterns = {o.get("pattern") for o in options} - {None}
                    assert patterns in ({rule}, {f"^(_rejects|{NAME_PATTERN.pattern})$"}), (
                        service, path, method, schema)
                    seen += 1
    assert seen >= 8
    app = create_app(Service.CATALOG, core)
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = logged_in(core, {"acme": ("w", Role.WRITER)})["acme"]
        for bad in ("1abc", "a b", "x" * 64, "_rejects"):
            answer = client.get(f"/metadata/tables/{bad}/options", headers=headers)
            assert answer.status_code == 400, (bad, answer.text)
            assert answer.json()["error"] == "invalid_table_name"
        described = client.post("/metadata/partitions", headers=headers,
                                json={"table": "no such name"})
        assert described.status_code == 400 and described.json()["error"] == (
            "invalid_table_name")


def test_a_wrong_method_names_every_method_the_path_serves(core: Core) -> None:
    """`/auth/users` is served by two routes (GET lists, POST creates): a 405 names both in
    `Allow`, as the document lists them, not only the first route's."""
    with TestClient(create_app(Service.AUTH, core), raise_server_exceptions=False) as client:
        for method, path, allowed in (("OPTIONS", "/auth/users", "GET, POST"),
                                      ("DELETE", "/auth/users", "GET, POST"),
                                      ("PUT", "/auth/login", "POST"),
                                      ("OPTIONS", "/auth/users/bob", "GET")):
            answer = client.request(method, path)
            assert answer.status_code == 405, (method, path)
            assert answer.headers["allow"] == allowed, (method, path)
            assert answer.json()["error"] == "method_not_allowed"
            assert allowed in answer.json()["message"]
