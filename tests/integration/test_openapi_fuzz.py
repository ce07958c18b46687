"""Schema-driven fuzzing of all seven services: every operation of each service's OpenAPI
document gets requests from Schemathesis' three phases (its documented examples; coverage:
each parameter at its bounds and each rule broken once; fuzzing: generated requests, valid and
invalid), from the platform's operator, a tenant's writer and a caller with whatever
credentials the generator makes up.

No answer may be a 5xx, have a status its operation's document does not declare, or break the
schema the document gives for that status (every error is api/errors.py's ErrorBody, declared
once for every operation); every service must still be healthy afterwards. Every other check
Schemathesis has runs on every answer too (valid requests accepted, invalid ones refused,
auth enforced, headers and content types as declared): a finding fails the test unless it is
one of the few by design (tools/openapi_allowances.py), each with why no document can say
more.

Generation is derandomized (a fixed seed per operation) and bounded, so a run is repeatable.
A longer run, on a seed of your choice: tools/openapi_checks.py.
"""

from __future__ import annotations

import collections
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from api.app import create_app
from api.core import Core, build_core
from api.services import SPECS, Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD, report_figures
from tools.openapi_allowances import by_design
from tools.openapi_cases import coverage_cases, documented_operations, example_cases

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
# Coverage cases an operation at most: a query DSL's nested conditions make thousands, every
# k-th of which still walks each kind of case (tools/openapi_cases.py).
COVERAGE_LIMIT = 100

# Every other check Schemathesis has (valid requests accepted, invalid ones refused, auth
# enforced, headers and content types as declared, ...), run on every answer too.
OTHER_CHECKS = [check for check in CHECKS.get_all() if check not in (
    not_a_server_error, status_code_conformance, response_schema_conformance)]

def _operations() -> list[tuple[Service, str, str]]:
    """Every documented operation of every service, from the routers each app is built from
    (known without building a core, so the test ids exist at collection)."""
    found = []
    for service in Service:
        found.append((service, "GET", "/health"))
        found.extend((s, method, path) for s, method, path, _ in documented_operations([service]))
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
    # Queries run here, not on a Dask cluster: the fuzzer is after the input handling. Every
    # request comes from one address, and two services log in (the Auth Gateway and the
    # dashboard's same-origin login): the address throttle (tests/integration/
    # test_login_throttle.py) would refuse the chained logins after the fuzzed ones.
    core = build_core(Settings.for_tests(tmp, prefect_api_url=prefect_api_url,
                                         query_on_dask=False,
                                         login_address_free_failures=1_000_000), ingest=True)
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
    """Fresh tokens for each operation, so one that logs a caller out, revokes its sessions,
    disables it or sets its password (a chain of the stateful test can) does not leave every
    later operation answering 401."""
    def bearer(user: str) -> dict[str, str]:
        core.auth.set_disabled(user, False)
        core.auth.reset_password(user, PASSWORD)
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


@dataclass
class Checked:
    """Every check on the answers to one operation's (or one chain's) requests."""

    service: Service
    sent: int = 0
    undeclared: int = 0
    allowed: int = 0
    found: list[str] = field(default_factory=list)  # 5xx, or the app raised
    broken: list[str] = field(default_factory=list)  # answers breaking their schema
    others: list[str] = field(default_factory=list)  # the other checks' findings

    def call(self, case: schemathesis.Case, caller: dict[str, str]) -> Any:
        """Send `case` as `caller` and check the answer; the answer, or None if none came."""
        self.sent += 1
        try:
            # A flush or a load can take longer than Schemathesis' 10 s on a busy machine;
            # a client giving up is not the service failing.
            response = case.call(headers=caller, timeout=CALL_TIMEOUT_S)
        except Exception as exc:  # the app raised: a 500, and here is its traceback
            self.found.append(f"{case.as_curl_command(headers=caller)}\n"
                              + "".join(traceback.format_exception(exc))[-3000:])
            return None
        self.check(case, response, caller)
        return response

    def check(self, case: schemathesis.Case, response: Any, caller: dict[str, str]) -> None:
        operation = f"{case.operation.method.upper()} {case.operation.path}"
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except FailureGroup:
            self.found.append(f"{case.as_curl_command(headers=caller)}\n"
                              f"{response.status_code} {response.text[:1000]}")
        try:
            case.validate_response(response, checks=[status_code_conformance])
        except FailureGroup:
            self.undeclared += 1
        try:
            case.validate_response(response, checks=[response_schema_conformance])
        except FailureGroup as failure:
            self.broken.append(f"{response.status_code} {response.text[:500]}\n{failure}\n"
                               f"{case.as_curl_command(headers=caller)}"[:3000])
        try:
            case.validate_response(response, checks=OTHER_CHECKS, headers=caller)
        except FailureGroup as failures:
            for failure in failures.exceptions:
                if by_design(failure, response, self.service, operation):
                    self.allowed += 1
                else:
                    self.others.append(f"{response.status_code} {response.text[:500]}\n"
                                       f"{failure}\n"
                                       f"{case.as_curl_command(headers=caller)}"[:3000])

    def report(self, what: str, record_property: Callable[[str, object], None],
               request: pytest.FixtureRequest) -> None:
        """Add to the service's tally, then fail on any finding."""
        tally = TALLIES[self.service]
        tally.requests += self.sent
        tally.undeclared_status += self.undeclared
        tally.server_errors.extend(self.found)
        tally.broken.extend(self.broken)
        tally.others.extend(self.others)
        tally.allowed += self.allowed
        record_property("requests", self.sent)
        record_property("undeclared_status", self.undeclared)
        report_figures(request.node, "OpenAPI fuzzing", _summary(TALLIES))
        assert not self.found, (f"{len(self.found)} server errors from {what}:\n"
                                + "\n\n".join(self.found))
        assert not self.broken, (f"{len(self.broken)} answers of {what} break their "
                                 "documented schema:\n" + "\n\n".join(self.broken[:3]))
        assert self.undeclared == 0, (f"{self.undeclared} answers of {what} have an "
                                      "undeclared status")
        assert not self.others, (f"{len(self.others)} findings of Schemathesis' other checks "
                                 f"on {what}:\n" + "\n\n".join(self.others[:3]))


@pytest.mark.parametrize(("service", "method", "path"), _params())
def test_no_operation_answers_a_server_error(
        schemas: dict[Service, OpenApiSchema], fuzz_core: Core, service: Service, method: str,
        path: str, record_property: Callable[[str, object], None],
        request: pytest.FixtureRequest) -> None:
    operation = schemas[service][path][method]
    callers = _callers(fuzz_core)
    checked = Checked(service)

    # Schemathesis' examples and coverage phases: the documented examples, then each
    # parameter at its bounds and each rule broken once; the callers take turns.
    explicit = example_cases(operation) + coverage_cases(operation, COVERAGE_LIMIT)
    for number, case in enumerate(explicit):
        checked.call(case, callers[number % len(callers)])

    # Its fuzzing phase: generated requests, valid and invalid.
    for mode in MODES:
        @SETTINGS
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode),
                          caller=st.sampled_from(callers))
        def one(case: schemathesis.Case, caller: dict[str, str]) -> None:
            checked.call(case, caller)

        try:
            one()
        except Unsatisfiable:
            # Nothing in the operation can be made invalid (no parameters, no body).
            assert mode is schemathesis.GenerationMode.NEGATIVE
    checked.report(f"{method} {path}", record_property, request)


# Services whose operations chain (an answer names what a later request needs), through the
# links their documents declare or Schemathesis infers: login → validate, refresh, logout;
# a user created → read, disabled, enabled; a record written → read back; a query run →
# its status, its rows, its cancel; a table declared → its options.
CHAINED = [Service.AUTH, Service.TENANT, Service.OPERATION, Service.CATALOG]
CHAINS = 10  # scenarios per service
STEPS = 6  # requests a scenario at most


@pytest.mark.parametrize("service", CHAINED)
def test_chained_operations_answer_as_documented(
        schemas: dict[Service, OpenApiSchema], fuzz_core: Core, service: Service,
        record_property: Callable[[str, object], None],
        request: pytest.FixtureRequest) -> None:
    """Schemathesis' stateful phase: each scenario follows the document's links, feeding an
    answer's values (a token, a query id, a user's name) to the next request."""
    checked = Checked(service)
    caller = _callers(fuzz_core)[1 if service is Service.TENANT else 0]
    answered: collections.Counter[tuple[str, int]] = collections.Counter()
    # A schema of its own, so the hook below touches no other test's requests.
    schema = schemathesis.openapi.from_asgi("/openapi.json", schemas[service].app)
    if service is Service.AUTH:
        # Valid requests only: a login made valid below is no invalid request accepted.
        schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])

        @schema.hook
        def map_body(context: Any, body: Any) -> Any:
            # A real user's login, so the links from its token pair are followed at all.
            if context.operation is not None and context.operation.path == "/auth/login":
                return {"username": "fuzz-writer", "password": PASSWORD}
            return body

    class Chains(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": caller, "timeout": CALL_TIMEOUT_S}

        def validate_response(self, response: Any, case: schemathesis.Case,
                              *args: Any, **kwargs: Any) -> None:
            checked.sent += 1
            answered[(case.operation.path, response.status_code)] += 1
            checked.check(case, response, caller)

    assert any("RANDOM" not in name and "__" in name for name in dir(Chains)), \
        f"no links between {service.value}'s operations"
    Chains.run(settings=hypothesis.settings(
        SETTINGS, max_examples=CHAINS, stateful_step_count=STEPS))
    assert checked.sent >= CHAINS
    if service is Service.AUTH:  # the login's token pair was followed, and worked
        assert answered[("/auth/validate", 200)] and answered[("/auth/refresh", 200)], answered
    checked.report(f"{service.value}'s chained operations", record_property, request)


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
