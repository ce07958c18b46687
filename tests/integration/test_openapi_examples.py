"""Every example the seven OpenAPI documents give is a request that succeeds on a fresh system,
so "Try it out" in `/docs` works for every operation once logged in.

A fresh catalog, write-ahead log and folder, a real Prefect server (its test harness: loads and
compaction are flow runs), the development bootstrap admin `make run` creates, and the README's
sample files where `make run` finds them. Each operation's examples, as Schemathesis builds
requests from them, are sent in the order a new user would try them (log in, write, load,
declare, query, then manage users), with the admin's token; the three whose example names a
token (validate, refresh and logout) get the one the login answered. Every operation that
takes a body must document one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tools.openapi_cases import documented_operations, example_cases

REPO = Path(__file__).resolve().parents[2]

# The order a new user tries them in: what each example names exists by its turn.
ORDER: list[tuple[Service, str, str]] = [
    (Service.AUTH, "POST", "/auth/login"),
    (Service.AUTH, "POST", "/auth/validate"),
    (Service.MONITORING, "POST", "/dashboard/login"),
    (Service.TENANT, "POST", "/data"),
    (Service.TENANT, "POST", "/data/store"),
    (Service.TENANT, "GET", "/data/retrieve"),
    (Service.TENANT, "POST", "/data/load"),
    (Service.TENANT, "POST", "/data/execute"),
    (Service.TENANT, "POST", "/data/flush"),  # no body: the records above become a file
    (Service.CATALOG, "POST", "/metadata/tables"),
    (Service.CATALOG, "POST", "/metadata/partitions"),
    (Service.CATALOG, "PUT", "/metadata/tables/{table}/options"),
    (Service.CATALOG, "GET", "/metadata/tables/{table}/options"),
    (Service.INTERPRETER, "POST", "/parse/sql"),
    (Service.INTERPRETER, "POST", "/parse/dsl"),
    (Service.INTERPRETER, "POST", "/validate/query"),
    (Service.INTERPRETER, "POST", "/transform/plan"),
    (Service.OPERATION, "POST", "/query/execute"),
    (Service.OPERATION, "GET", "/query/plan"),
    (Service.OPERATION, "POST", "/query/plan"),
    (Service.CBO, "POST", "/optimize/query"),
    (Service.CBO, "PUT", "/optimize/config"),
    (Service.CBO, "POST", "/optimize/compact"),
    (Service.AUTH, "POST", "/auth/users"),
    (Service.AUTH, "GET", "/auth/users/{username}"),
    (Service.AUTH, "POST", "/auth/users/{username}/password"),
    (Service.AUTH, "POST", "/auth/users/{username}/revoke-sessions"),
    (Service.AUTH, "POST", "/auth/users/{username}/disable"),
    (Service.AUTH, "POST", "/auth/users/{username}/enable"),
    (Service.AUTH, "POST", "/auth/refresh"),
    (Service.AUTH, "POST", "/auth/logout"),
]
# Bodies whose example names a token the login answered: which one.
TOKEN_BODIES = {(Service.AUTH, "POST", "/auth/validate"): ("token", "access_token"),
                (Service.AUTH, "POST", "/auth/refresh"): ("refresh_token", "refresh_token"),
                (Service.AUTH, "POST", "/auth/logout"): ("refresh_token", "refresh_token")}


@pytest.fixture(scope="module")
def fresh_core(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str) -> Iterator[Core]:
    tmp = tmp_path_factory.mktemp("examples")
    settings = Settings.for_tests(tmp, prefect_api_url=prefect_api_url, query_on_dask=False,
                                  load_roots=f"{tmp},{REPO / 'data' / 'samples'}")
    core = build_core(settings, ingest=True)
    # What a development start does (api/core.py): the admin the login example names.
    core.auth.ensure_user(settings.bootstrap_admin_user, settings.bootstrap_admin_password,
                          settings.bootstrap_admin_tenant, Role.ADMIN)
    yield core
    core.close()


def test_every_documented_example_succeeds_on_a_fresh_system(
        fresh_core: Core, monkeypatch: pytest.MonkeyPatch) -> None:
    # The sample's path is relative, as the README gives it: from where `make run` runs.
    monkeypatch.chdir(REPO)
    schemas = {service: schemathesis.openapi.from_asgi("/openapi.json",
                                                       create_app(service, fresh_core))
               for service in Service}
    with_examples = {(s, m, p) for s, m, p, _ in documented_operations(list(Service))
                     if example_cases(schemas[s][p][m])}
    undocumented = [(s.value, m, p) for s, m, p, body in documented_operations(list(Service))
                    if body and (s, m, p) not in with_examples]
    assert not undocumented, f"operations taking a body with no example: {undocumented}"
    unordered = with_examples - set(ORDER)
    assert not unordered, f"examples this test does not send yet: {sorted(unordered)}"

    tokens: dict[str, Any] = {}
    sent = 0
    for service, method, path in ORDER:
        operation = schemas[service][path][method]
        cases = example_cases(operation) or [operation.Case()]
        for case in cases:
            if (service, method, path) in TOKEN_BODIES:
                field, token = TOKEN_BODIES[(service, method, path)]
                case.body = {field: tokens[token]}
            headers = ({"Authorization": f"Bearer {tokens['access_token']}"}
                       if tokens else {})
            response = case.call(headers=headers, timeout=120)
            sent += 1
            assert 200 <= response.status_code < 300, (
                f"{service.value} {method} {path} {case.body!r}: {response.status_code} "
                f"{response.text[:500]}")
            if path == "/auth/login":
                tokens = response.json()
    assert sent >= len(ORDER) + 1  # the two forms of POST /data/store, at least
