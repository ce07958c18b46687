"""A fixed corpus of hostile input against every endpoint of every service.

Every path parameter, query parameter and string field of a JSON body gets each odd name (NUL,
a right-to-left override, a letter outside the Basic Multilingual Plane, a path traversal, 10,000
characters, an SQL injection); every query parameter and numeric body field each odd number
(-1, 10^30, 1e309, NaN, -0, a 5,000-digit number); every endpoint that takes a body a 10 MB
body, JSON nested 10,000 deep and NDJSON of deep objects. The caller is tenant acme's own admin;
tenant globex has users and data of its own.

Each answer must be below 500, a 4xx must have the one error shape, and no answer may name
globex. Afterwards every service still answers and globex's data is as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Mount, Route

from api.app import ROUTERS, create_app
from api.core import Core, build_core
from api.routers.health import health_router
from api.services import SPECS, Service
from flows.ingest import flush
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD

# About 80 s here: each load the corpus starts is a Prefect run.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

NAMES = {
    "nul": "a\x00b",
    "rtl-override": "acme\u202eexe.sql",
    "astral": "𝕏",
    "traversal": "../../etc/passwd",
    "long": "a" * 10_000,
    "sql-injection": "' OR 1=1 --",
}
# As they are written in a URL or in JSON text: some have no JSON value (NaN, 1e309 as inf)
# and some no Python float, so they are spliced into the body's text as written.
NUMBERS = {
    "minus-one": "-1",
    "ten-to-the-30": "1" + "0" * 30,
    "1e309": "1e309",
    "nan": "NaN",
    "minus-zero": "-0",
    "5000-digits": "9" * 5_000,
}
# Fields and parameters holding SQL also get each number inside a condition.
SQL_HOLDERS = {"query": "SELECT * FROM orders WHERE amount > {}", "filter": "amount > {}"}
# Values for the fields and parameters a case leaves alone: real enough to get past "missing".
PLAIN = {"query": "SELECT * FROM orders", "filter": "amount > 1", "table": "orders",
         "source": "orders.ndjson", "username": "acme-other", "password": "a long password"}
DEPTH = 10_000  # deeper segfaults pyarrow's JSON reader (~50,000) and would end the test run
HUGE_BYTES = 10 * 1024 * 1024
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
OTHER_TENANT = "globex"

# Cases that answer 5xx today for a known defect: case id → the defect. Strict: once the
# defect is fixed the case passes, the run fails, and its line here must go.
KNOWN_5XX: dict[str, str] = {}


@dataclass(frozen=True)
class Case:
    """One hostile request: where the hostile value goes and what it is."""

    service: Service
    method: str
    path: str
    where: str  # "path", "query" or "body"
    name: str  # the parameter or body field; "" for a whole body
    label: str  # which value of NAMES / NUMBERS / a whole-body kind

    @property
    def value(self) -> str:
        """The hostile value, as text (a number as it is written)."""
        if self.label.startswith("condition-"):
            return SQL_HOLDERS[self.name].format(NUMBERS[self.label.removeprefix("condition-")])
        return NAMES.get(self.label) or NUMBERS[self.label]

    @property
    def id(self) -> str:
        spot = f"{self.where}.{self.name}" if self.name else self.where
        return f"{self.service.value}:{self.method} {self.path}:{spot}={self.label}"


def _document(service: Service) -> dict[str, Any]:
    """The service's OpenAPI document, made from the routers its app is built from, so the
    cases are known at collection without a core (a test checks it matches the live app's)."""
    routes: list[BaseRoute] = [*health_router(SPECS[service]).routes]
    for router in ROUTERS[service]:
        routes.extend(router.routes)
    return get_openapi(title=SPECS[service].title, version="0", routes=routes)


DOCUMENTS = {service: _document(service) for service in Service}


def _body_schema(service: Service, operation: dict[str, Any]) -> dict[str, Any] | None:
    """The properties and required fields of an operation's JSON body, if it declares one."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    schema = content["schema"]
    refs = [schema] if "$ref" in schema else [s for s in schema.get("anyOf", ()) if "$ref" in s]
    if not refs:  # declared in place (the record writes: api/record_bodies.py)
        return schema if "properties" in schema else None
    name = refs[0]["$ref"].rsplit("/", 1)[-1]
    found: dict[str, Any] = DOCUMENTS[service]["components"]["schemas"][name]
    return found


def _types(schema: dict[str, Any]) -> set[str]:
    types = {schema["type"]} if "type" in schema else set()
    for option in schema.get("anyOf", ()):
        types |= _types(option)
    return types


def _fields(service: Service, operation: dict[str, Any], kind: str) -> list[str]:
    body = _body_schema(service, operation)
    wanted = {"string"} if kind == "string" else {"integer", "number"}
    return [name for name, prop in (body or {}).get("properties", {}).items()
            if _types(prop) & wanted]


def _sql(name: str) -> list[str]:
    return [f"condition-{label}" for label in NUMBERS] if name in SQL_HOLDERS else []


def _cases() -> list[Case]:
    cases = []
    for service, document in DOCUMENTS.items():
        for path, operations in document["paths"].items():
            for method_lower, operation in operations.items():
                method = method_lower.upper()
                for param in operation.get("parameters", ()):
                    if param["in"] == "path":
                        cases += [Case(service, method, path, "path", param["name"], label)
                                  for label in NAMES]
                    elif param["in"] == "query":
                        cases += [Case(service, method, path, "query", param["name"], label)
                                  for label in [*NAMES, *NUMBERS, *_sql(param["name"])]]
                if method not in BODY_METHODS:
                    continue
                cases += [Case(service, method, path, "body", "", kind)
                          for kind in ("10MB", "deep-array", "deep-record", "ndjson-deep")]
                if path in ("/data", "/data/store"):  # records, read by the write door
                    cases += [Case(service, method, path, "body", "record", label)
                              for label in [*NAMES, *NUMBERS]]
                    continue
                if _body_schema(service, operation) is None:
                    continue
                cases += [Case(service, method, path, "body", field, label)
                          for field in _fields(service, operation, "string")
                          for label in [*NAMES, *_sql(field)]]
                cases += [Case(service, method, path, "body", field, label)
                          for field in _fields(service, operation, "number")
                          for label in NUMBERS]
    return cases


CASES = _cases()


def _params() -> list[Any]:
    params = []
    for case in CASES:
        reason = KNOWN_5XX.get(case.id)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(case, marks=marks, id=case.id))
    return params


@dataclass
class World:
    core: Core
    clients: dict[Service, TestClient]
    # Real values for the path parameters a case leaves alone, to get past "not found".
    path_values: dict[str, str]
    globex_headers: dict[str, str]
    globex_before: Any


def _bearer(core: Core, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {core.auth.login(user, PASSWORD).access_token}"}


def _records(tenant: str, table: str, start: int) -> list[dict[str, Any]]:
    return [{"data_id": f"{tenant}-{i}", "table": table,
             "payload": {"amount": i, "note": f"{tenant} private note {i}"}}
            for i in range(start, start + 10)]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("hostile")
    core = build_core(Settings.for_tests(tmp, prefect_api_url=prefect_api_url,
                                         query_on_dask=False), ingest=True)
    core.auth.create_user("acme-boss", PASSWORD, "acme", Role.TENANT_ADMIN)
    core.auth.create_user("acme-other", PASSWORD, "acme", Role.WRITER)
    core.auth.create_user("globex-writer", PASSWORD, OTHER_TENANT, Role.WRITER)
    assert core.ingest is not None and core.flusher is not None
    # Both tenants have a flushed table (in a run both share) and rows still in the log.
    for tenant, table in (("acme", "orders"), (OTHER_TENANT, "ledger")):
        core.ingest.write(tenant, _records(tenant, table, 0)).answer(timeout_s=10)
    run_id = flush(core.flusher, reason="test")["run_id"]
    for tenant, table in (("acme", "orders"), (OTHER_TENANT, "ledger")):
        core.ingest.write(tenant, _records(tenant, table, 10)).answer(timeout_s=10)
    with ExitStack() as stack:
        stack.callback(core.close)
        clients = {service: stack.enter_context(TestClient(
            create_app(service, core), raise_server_exceptions=False)) for service in Service}
        globex = _bearer(core, "globex-writer")
        yield World(core=core, clients=clients, globex_headers=globex,
                    path_values={"username": "acme-other", "table": "orders", "run_id": run_id},
                    globex_before=_globex_view(clients, globex))


def _query_id(world: World) -> str:
    """A query of acme's that just finished: its result is kept (older ones make room for
    newer ones, and the corpus runs many) and it is not cancelled."""
    answer = world.clients[Service.OPERATION].post(
        "/query/execute", headers=_bearer(world.core, "acme-boss"),
        json={"query": "SELECT * FROM orders"})
    assert answer.status_code == 200, answer.text
    found: str = answer.json()["query_id"]
    return found


def _globex_view(clients: dict[Service, TestClient], headers: dict[str, str]) -> Any:
    rows = clients[Service.OPERATION].post(
        "/query/execute", headers=headers,
        json={"query": "SELECT data_id, amount, note FROM ledger ORDER BY data_id"})
    tables = clients[Service.CATALOG].get("/metadata/tables", headers=headers)
    assert rows.status_code == tables.status_code == 200, (rows.text, tables.text)
    return rows.json()["rows"], sorted(t["table"] for t in tables.json()["tables"])


def _deep_array() -> str:
    return "[" * DEPTH + "]" * DEPTH


def _deep_object() -> str:
    return '{"a":' * DEPTH + "1" + "}" * DEPTH


def _whole_body(kind: str) -> tuple[bytes, str]:
    if kind == "10MB":  # records, so the write path takes it as a batch
        record = json.dumps({"data_id": "x" * 40, "table": "bulk",
                             "payload": {"text": "y" * 400}})
        count = HUGE_BYTES // (len(record) + 1)
        return ("[" + ",".join(record.replace("x" * 40, f"{i:040d}") for i in range(count))
                + "]").encode(), "application/json"
    if kind == "deep-array":
        return _deep_array().encode(), "application/json"
    if kind == "deep-record":
        return (f'{{"data_id": "deep", "table": "orders", "payload": {_deep_object()}}}'
                .encode(), "application/json")
    line = f'{{"data_id": "deep-nd", "payload": {_deep_object()}}}'
    return "\n".join([line] * 3).encode(), "application/x-ndjson"


_NUMBER_SLOT = "\x00number\x00"


def _body(case: Case, operation: dict[str, Any]) -> bytes | None:
    """The JSON body: the case's value in its field (if a body field is the case's), plain
    values in the fields it requires; None for an operation without a JSON body."""
    hostile = case.where == "body"
    spliced = hostile and case.label in NUMBERS  # written into the text as it is
    value: Any = _NUMBER_SLOT if spliced else case.value if hostile else None
    if case.name == "record" and hostile:
        body: dict[str, Any] = {"data_id": "h", "table": "orders", "payload": {"v": value}}
        if case.label in NAMES:
            body.update(data_id=value, table=value, payload={value: value})
    else:
        schema = _body_schema(case.service, operation)
        if schema is None:
            return None
        body = {name: PLAIN.get(name, _plain(schema["properties"][name]))
                for name in schema.get("required", ())}
        if hostile:
            body[case.name] = value
    text = json.dumps(body)
    if spliced:
        text = text.replace(json.dumps(_NUMBER_SLOT), case.value)
    return text.encode()


def _plain(schema: dict[str, Any]) -> Any:
    types = _types(schema)
    for kind, value in (("string", "orders"), ("integer", 1), ("number", 1), ("boolean", False),
                        ("array", []), ("object", {})):
        if kind in types:
            return value
    return {}


def _send(world: World, case: Case) -> Any:
    operation = DOCUMENTS[case.service]["paths"][case.path][case.method.lower()]
    path_values = dict(world.path_values)
    if "{query_id}" in case.path and case.name != "query_id":
        path_values["query_id"] = _query_id(world)
    path = case.path
    params: dict[str, str] = {}
    for param in operation.get("parameters", ()):
        hostile = param["name"] == case.name and param["in"] == case.where
        if param["in"] == "path":
            value = case.value if hostile else path_values[param["name"]]
            path = path.replace("{" + param["name"] + "}", quote(value, safe=""))
        elif param["in"] == "query" and (hostile or param.get("required")
                                         or param["name"] in PLAIN):
            params[param["name"]] = case.value if hostile else PLAIN.get(
                param["name"], str(_plain(param.get("schema", {}))))
    headers = _bearer(world.core, "acme-boss")  # fresh: a case may log its caller out
    if case.where == "body" and not case.name:
        content, headers["Content-Type"] = _whole_body(case.label)
    else:
        content = _body(case, operation)
        if content is not None:
            headers["Content-Type"] = "application/json"
    return world.clients[case.service].request(case.method, path, params=params,
                                               content=content, headers=headers)


@pytest.mark.parametrize("case", _params())
def test_hostile_input_gets_a_clear_refusal_or_an_answer(world: World, case: Case) -> None:
    answer = _send(world, case)
    assert answer.status_code < 500, f"{answer.status_code} {answer.text[:2000]}"
    if answer.status_code >= 400:
        body = answer.json()
        assert set(body) == {"error", "message", "details"}, body
        assert isinstance(body["error"], str) and isinstance(body["message"], str)
    assert OTHER_TENANT not in answer.text.lower(), answer.text[:2000]


@pytest.mark.parametrize("service", list(Service))
def test_the_corpus_covers_every_documented_operation(world: World, service: Service) -> None:
    live = world.clients[service].app.openapi()  # type: ignore[attr-defined]
    assert {p: sorted(ops) for p, ops in live["paths"].items()} == {
        p: sorted(ops) for p, ops in DOCUMENTS[service]["paths"].items()}


@pytest.mark.parametrize("service", list(Service))
def test_routes_outside_the_schema_take_hostile_paths_and_parameters(
        world: World, service: Service) -> None:
    """The documentation pages, their assets and the schema itself are endpoints too."""
    client = world.clients[service]
    routes = [route for route in client.app.routes  # type: ignore[attr-defined]
              if isinstance(route, Route | Mount)
              and not (isinstance(route, APIRoute) and route.include_in_schema)]
    assert routes
    headers = _bearer(world.core, "acme-boss")
    for route in routes:
        for value in [*NAMES.values(), *NUMBERS.values()]:
            if isinstance(route, Mount):  # a hostile name for a file under it
                answer = client.get(f"{route.path}/{quote(value, safe='')}", headers=headers)
            else:
                answer = client.request(sorted(route.methods or {"GET"})[0], route.path,
                                        params={"q": value}, headers=headers)
            assert answer.status_code < 500, (route.path, value[:20], answer.text[:500])
            assert OTHER_TENANT not in answer.text.lower()


def test_every_service_still_answers_and_globex_is_untouched(world: World) -> None:
    for service, client in world.clients.items():
        response = client.get("/health")
        assert response.status_code == 200, (service, response.text)
    acme = _bearer(world.core, "acme-boss")
    mine = world.clients[Service.TENANT].get("/data/retrieve", headers=acme,
                                             params={"data_id": "acme-3", "table": "orders"})
    assert mine.status_code == 200, mine.text
    assert _globex_view(world.clients, world.globex_headers) == world.globex_before
