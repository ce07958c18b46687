"""Every Schemathesis check against the seven services' OpenAPI documents, and what fails.

    .venv/bin/python tools/openapi_checks.py [--examples N] [--service tenant ...]

The fuzz test in `make test` (tests/integration/test_openapi_fuzz.py) holds the services to
three checks: no 5xx, declared statuses, answers matching their schema. This runs all of them
(among others: schema-valid requests must be accepted, invalid ones refused, secured operations
must refuse a missing token) in-process, on a fresh catalog, write-ahead log and local folder,
with an operator's and a tenant writer's token, and prints each check's findings grouped by
operation, status and error code, so what the documents do not yet say is a list to work on.
Prefect is not started: operations that need it answer 503, which `not_a_server_error` counts.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import tempfile
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import CHECKS
from schemathesis.core.failures import FailureGroup

from api.app import ROUTERS, create_app
from api.core import Core, build_core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings

PASSWORD = "openapi-checks-password"  # noqa: S105 - a throwaway user of a throwaway catalog


def _operations(services: list[Service]) -> list[tuple[Service, str, str]]:
    found: list[tuple[Service, str, str]] = []
    for service in services:
        for router in ROUTERS[service]:
            for route in router.routes:
                if isinstance(route, APIRoute) and route.include_in_schema:
                    found.extend((service, method, route.path)
                                 for method in sorted(route.methods or ()))
    return found


def _core(folder: Path) -> Core:
    core = build_core(Settings.for_tests(folder, query_on_dask=False), ingest=True)
    core.auth.create_user("checks-root", PASSWORD, "ops", Role.ADMIN)
    core.auth.create_user("checks-writer", PASSWORD, "acme", Role.WRITER)
    assert core.ingest is not None and core.flusher is not None  # noqa: S101 - ingest=True
    core.ingest.write("acme", [{"data_id": f"o{i}", "table": "orders",
                                "payload": {"amount": i, "city": "Oslo"}}
                               for i in range(20)]).answer(timeout_s=10)
    flush_here(core.flusher)
    return core


def _code(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def run(services: list[Service], examples: int) -> collections.Counter[tuple[str, str]]:
    settings = hypothesis.settings(
        max_examples=examples, derandomize=True, database=None, deadline=None,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    findings: collections.Counter[tuple[str, str]] = collections.Counter()
    with tempfile.TemporaryDirectory() as folder:
        core = _core(Path(folder))
        schemas = {s: schemathesis.openapi.from_asgi("/openapi.json", create_app(s, core))
                   for s in services}
        checks: list[Any] = list(CHECKS.get_all())
        for service, method, path in _operations(services):
            operation = schemas[service][path][method]
            callers = [{"Authorization": "Bearer " + core.auth.login(user, PASSWORD).access_token}
                       for user in ("checks-root", "checks-writer")]
            where = f"{service.value} {method} {path}"
            for mode in (schemathesis.GenerationMode.POSITIVE,
                         schemathesis.GenerationMode.NEGATIVE):

                @settings
                @hypothesis.given(case=operation.as_strategy(generation_mode=mode),
                                  caller=st.sampled_from(callers))
                def one(case: schemathesis.Case[Any], caller: dict[str, str]) -> None:
                    try:
                        response = case.call(headers=caller)
                    except Exception as exc:  # the app raised, or gave no answer in time
                        findings[("No answer", f"{where}: {type(exc).__name__}")] += 1  # noqa: B023
                        return
                    try:
                        case.validate_response(response, checks=checks, headers=caller)
                    except FailureGroup as failed:
                        for failure in failed.exceptions:
                            title = getattr(failure, "title", type(failure).__name__)
                            # `one` runs at once, within this iteration of `where`.
                            found = f"{where}: {response.status_code} {_code(response)}"  # noqa: B023
                            findings[(title, found)] += 1

                with contextlib.suppress(Unsatisfiable):  # nothing of it can be made invalid
                    one()
        core.close()
    return findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--examples", type=int, default=5,
                        help="generated requests per operation, mode and caller mix")
    parser.add_argument("--service", action="append", choices=[s.value for s in Service],
                        help="only these services (default: all seven)")
    args = parser.parse_args()
    services = [Service(s) for s in args.service] if args.service else list(Service)
    findings = run(services, args.examples)
    by_check: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    for (title, where), count in findings.items():
        by_check[title].append((where, count))
    for title, places in sorted(by_check.items(), key=lambda item: -sum(c for _, c in item[1])):
        print(f"{sum(c for _, c in places):5d}  {title}")
        for where, count in sorted(places):
            print(f"         {count:3d}  {where}")
    print(f"{sum(findings.values()):5d}  findings in all")


if __name__ == "__main__":
    main()
