"""Schema-driven fuzzing of all seven services: every operation of each service's OpenAPI
document gets requests generated from it, valid and invalid, from the platform's operator, a
tenant's writer and a caller with whatever credentials the generator makes up.

No answer may be a 5xx, have a status its operation's document does not declare, or break the
schema the document gives for that status (every error is api/errors.py's ErrorBody, declared
once for every operation); every service must still be healthy afterwards. Every other check
Schemathesis has runs on every answer too (valid requests accepted, invalid ones refused,
auth enforced, headers and content types as declared): a finding fails the test unless it is
one of the few by design listed below, each with why no document can say more.

Generation is derandomized (a fixed seed per operation) and bounded, so a run is repeatable and
the whole file takes a little over a minute here.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, not_a_server_error
from schemathesis.core.failures import AcceptedNegativeData, FailureGroup
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from api.app import ROUTERS, create_app
from api.core import Core, build_core
from api.services import SPECS, Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD, report_figures

# About 75 s here, most of it generating the cases.
pytestmark = pytest.mark.slow

# Per operation, generation mode and caller-mix: enough to reach every parameter with odd
# values, few enough that the file stays near a minute on a small, shared machine.
EXAMPLES = 10
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same requests on every run: a finding reproduces
    database=None,  # nothing remembered between runs, so nothing differs between machines
    deadline=None,  # a request's time is the services' business, not the generator's
    phases=[Phase.generate],  # no shrinking: every failure is recorded, none is stopped on
    suppress_health_check=list(HealthCheck),
)

# Operations that answer 5xx today for a known defect; (service, "METHOD /path") → the defect.
KNOWN_5XX: dict[tuple[Service, str], str] = {}

CALL_TIMEOUT_S = 120

# Every other check Schemathesis has (valid requests accepted, invalid ones refused, auth
# enforced, headers and content types as declared, ...), run on every answer too.
OTHER_CHECKS = [check for check in CHECKS.get_all() if check not in (
    not_a_server_error, status_code_conformance, response_schema_conformance)]

# What those checks report that is the platform's design, not a disagreement between a
# document and its service: each with why the document cannot say more. Anything else fails.
# A request the schema allows, refused for what no JSON Schema states (by error code):
BEYOND_THE_SCHEMA = {
    "syntax_error": "SQL text: the document says a non-blank string, SQL's grammar is no "
                    "JSON Schema",
    "unknown_table": "a table the tenant does not have: a fact of its data, not of a request",
    "unknown_column": "a column its table does not have: likewise",
    "invalid_dsl": "a DSL tree's conditions and expressions are SQL text",
    "invalid_filter": "a partition filter is SQL text",
    "type_mismatch": "SQL's types: likewise",
    "invalid_query": "SQL that parses but is not one read-only query",
    "invalid_field_name": "a payload's nested field names: the document states the rule for "
                          "its own fields only (a recursive schema is left to do)",
    "mixed_list": "a list holds values of one type: likewise left to a recursive schema",
    "invalid_declaration": "a declared column's type grammar (decimal(p, s), nested list "
                           "and struct): likewise left to a recursive schema",
}
# (check, service, "METHOD /path") → why its finding is by design.
BY_DESIGN = {
    ("negative_data_rejection", Service.TENANT, "POST /data/store"):
        "a batch keeps its good records and reports each bad one in `records` (200)",
}


def _operations() -> list[tuple[Service, str, str]]:
    """Every documented operation of every service, from the routers each app is built from
    (known without building a core, so the test ids exist at collection)."""
    found = []
    for service in Service:
        found.append((service, "GET", "/health"))
        for router in ROUTERS[service]:
            for route in router.routes:
                if isinstance(route, APIRoute) and route.include_in_schema:
                    found.extend((service, method, route.path) for method in sorted(route.methods))
    return found


def _params() -> list[Any]:
    params = []
    for service, method, path in _operations():
        reason = KNOWN_5XX.get((service, f"{method} {path}"))
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(service, method, path, marks=marks,
                                   id=f"{service.value}:{method} {path}"))
    return params


@dataclass
class Tally:
    """What the fuzzer sent to one service and what came back."""

    requests: int = 0
    undeclared_status: int = 0
    server_errors: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)  # answers that break their documented schema
    allowed: int = 0  # findings of the other checks that are by design (BEYOND_THE_SCHEMA …)
    others: list[str] = field(default_factory=list)  # … and the ones that are not


TALLIES: dict[Service, Tally] = {service: Tally() for service in Service}


@pytest.fixture(scope="module")
def fuzz_core(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str) -> Iterator[Core]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    # Queries run here, not on a Dask cluster: the fuzzer is after the input handling.
    core = build_core(Settings.for_tests(tmp, prefect_api_url=prefect_api_url,
                                         query_on_dask=False), ingest=True)
    _populate(core)
    yield core
    core.close()


def _populate(core: Core) -> None:
    core.auth.create_user("fuzz-root", PASSWORD, "ops", Role.ADMIN)
    core.auth.create_user("fuzz-writer", PASSWORD, "acme", Role.WRITER)
    assert core.ingest is not None and core.flusher is not None
    # A table with a file, statistics and a snapshot, and rows still in the log, so reads,
    # plans and queries get past "no such table".
    for start in (0, 20):
        core.ingest.write("acme", [{"data_id": f"o{i}", "table": "orders",
                                    "payload": {"amount": i, "city": "Oslo"}}
                                   for i in range(start, start + 20)]).answer(timeout_s=10)
        if start == 0:
            flush_here(core.flusher)


@pytest.fixture(scope="module")
def schemas(fuzz_core: Core) -> dict[Service, OpenApiSchema]:
    return {service: schemathesis.openapi.from_asgi("/openapi.json",
                                                    create_app(service, fuzz_core))
            for service in Service}


def _callers(core: Core) -> list[dict[str, str]]:
    """Fresh tokens for each operation, so one that logs a caller out (or revokes its
    sessions) does not leave every later operation answering 401."""
    def bearer(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {core.auth.login(user, PASSWORD).access_token}"}

    # The empty one keeps whatever `authorization` header the generator made, or none.
    return [bearer("fuzz-root"), bearer("fuzz-writer"), {}]


def _summary(tallies: dict[Service, Tally]) -> list[str]:
    lines = [f"{SPECS[s].title}: {t.requests} requests, {t.undeclared_status} with a status "
             f"the schema does not declare, {len(t.broken)} breaking their schema, "
             f"{len(t.server_errors)} 5xx, {len(t.others)} other findings "
             f"({t.allowed} by design)" for s, t in tallies.items()]
    total = sum(t.requests for t in tallies.values())
    undeclared = sum(t.undeclared_status for t in tallies.values())
    broken = sum(len(t.broken) for t in tallies.values())
    return [*lines, f"all services: {total} requests, {undeclared} with a status the schema "
                    f"does not declare, {broken} breaking their schema, "
                    f"{sum(len(t.server_errors) for t in tallies.values())} 5xx, "
                    f"{sum(len(t.others) for t in tallies.values())} other findings "
                    f"({sum(t.allowed for t in tallies.values())} by design)"]


@pytest.mark.parametrize(("service", "method", "path"), _params())
def test_no_operation_answers_a_server_error(
        schemas: dict[Service, OpenApiSchema], fuzz_core: Core, service: Service, method: str,
        path: str, record_property: Callable[[str, object], None],
        request: pytest.FixtureRequest) -> None:
    operation = schemas[service][path][method]
    tally = TALLIES[service]
    callers = _callers(fuzz_core)
    found: list[str] = []
    broken: list[str] = []
    others: list[str] = []
    sent = 0
    undeclared = 0
    allowed = 0

    def run(mode: schemathesis.GenerationMode) -> None:
        @SETTINGS
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode),
                          caller=st.sampled_from(callers))
        def one(case: schemathesis.Case, caller: dict[str, str]) -> None:
            nonlocal sent, undeclared, allowed
            sent += 1
            try:
                # A flush or a load can take longer than Schemathesis' 10 s on a busy machine;
                # a client giving up is not the service failing.
                response = case.call(headers=caller, timeout=CALL_TIMEOUT_S)
            except Exception as exc:  # the app raised: a 500, and here is its traceback
                found.append(f"{case.as_curl_command(headers=caller)}\n"
                             + "".join(traceback.format_exception(exc))[-3000:])
                return
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except FailureGroup:
                found.append(f"{case.as_curl_command(headers=caller)}\n"
                             f"{response.status_code} {response.text[:1000]}")
            try:
                case.validate_response(response, checks=[status_code_conformance])
            except FailureGroup:
                undeclared += 1
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except FailureGroup as failure:
                broken.append(f"{case.as_curl_command(headers=caller)}\n"
                              f"{response.status_code} {response.text[:500]}\n{failure}"[:2000])
            try:
                case.validate_response(response, checks=OTHER_CHECKS, headers=caller)
            except FailureGroup as failures:
                for failure in failures.exceptions:
                    if _by_design(failure, response, service, f"{method} {path}"):
                        allowed += 1
                    else:
                        others.append(f"{case.as_curl_command(headers=caller)}\n"
                                      f"{response.status_code} {response.text[:500]}\n"
                                      f"{failure}"[:2000])

        try:
            one()
        except Unsatisfiable:
            # Nothing in the operation can be made invalid (no parameters, no body).
            assert mode is schemathesis.GenerationMode.NEGATIVE

    for mode in MODES:
        run(mode)
    tally.requests += sent
    tally.undeclared_status += undeclared
    tally.server_errors.extend(found)
    tally.broken.extend(broken)
    tally.others.extend(others)
    tally.allowed += allowed
    record_property("requests", sent)
    record_property("undeclared_status", undeclared)
    report_figures(request.node, "OpenAPI fuzzing", _summary(TALLIES))
    assert not found, f"{len(found)} server errors from {method} {path}:\n" + "\n\n".join(found)
    assert not broken, (f"{len(broken)} answers of {method} {path} break their documented "
                        "schema:\n" + "\n\n".join(broken[:3]))
    assert undeclared == 0, f"{undeclared} answers of {method} {path} have an undeclared status"
    assert not others, (f"{len(others)} findings of Schemathesis' other checks on {method} "
                        f"{path}:\n" + "\n\n".join(others[:3]))


def _by_design(failure: Exception, response: Any, service: Service, operation: str) -> bool:
    check = {RejectedPositiveData: "positive_data_acceptance",
             AcceptedNegativeData: "negative_data_rejection"}.get(type(failure))
    if (check, service, operation) in BY_DESIGN:
        return True
    if check != "positive_data_acceptance" or response.status_code != 400:
        return False
    try:
        code = response.json().get("error")
    except ValueError:
        return False
    return code in BEYOND_THE_SCHEMA


@pytest.mark.parametrize("service", list(Service))
def test_every_service_is_still_healthy_after_the_fuzzing(
        schemas: dict[Service, OpenApiSchema], fuzz_core: Core, service: Service) -> None:
    # The very app the fuzzer sent its requests to.
    with TestClient(schemas[service].app, raise_server_exceptions=False) as client:
        response = client.get("/health")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["catalog"]["ok"] is True
    if service is Service.TENANT:  # the write path too: a record still goes in
        assert fuzz_core.ingest is not None
        fuzz_core.ingest.write("acme", [{"data_id": "after", "table": "orders",
                                         "payload": {"amount": 1}}]).answer(timeout_s=10)
