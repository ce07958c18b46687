"""Every Schemathesis check against the seven services' OpenAPI documents, and what fails.

    .venv/bin/python tools/openapi_checks.py [--examples N] [--seed S] [--phase coverage ...]
                                             [--coverage-limit N] [--service tenant ...]

The fuzz test in `make test` (tests/integration/test_openapi_fuzz.py) runs every check on a
few derandomized requests an operation; this is the longer run: as many requests as asked, on
the same derandomized cases or on a seed of your choice, so a run can go where the test's never
went. All checks run (among others: schema-valid requests must be accepted, invalid ones
refused, secured operations must refuse a missing token) in-process, on a fresh catalog,
write-ahead log and local folder, with an operator's and a tenant writer's token and none. It
prints each check's findings grouped by operation, status and error code, leaving out the
ones allowed by design (tools/openapi_allowances.py, the test's list), and exits 1 on any.
Prefect runs as its test harness (a temporary server), so runs start and can be listed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from prefect.settings import PREFECT_API_URL
from schemathesis.checks import CHECKS
from schemathesis.core.failures import FailureGroup

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tools.openapi_allowances import by_design, lost_in_sending
from tools.openapi_cases import MODES, coverage_cases, documented_operations, example_cases
from tools.prefect_harness import bounded_prefect_harness

PHASES = ("examples", "coverage", "fuzzing")
PASSWORD = "openapi-checks-password"  # noqa: S105 - a throwaway user of a throwaway catalog


def _core(folder: Path) -> Core:
    core = build_core(Settings.for_tests(folder, query_on_dask=False,
                                         prefect_api_url=PREFECT_API_URL.value()), ingest=True)
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


# The first request of each finding, and its answer (printed with --show).
instances: dict[tuple[str, str], str] = {}


def run(services: list[Service], examples: int, seed: int | None, phases: list[str], *,
        coverage_limit: int, only: list[str] | None = None,
        ) -> tuple[collections.Counter[tuple[str, str]], int]:
    settings = hypothesis.settings(
        max_examples=examples, derandomize=seed is None, database=None, deadline=None,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    findings: collections.Counter[tuple[str, str]] = collections.Counter()
    instances.clear()
    sent = 0
    with tempfile.TemporaryDirectory() as folder, bounded_prefect_harness(
            server_startup_timeout=120):
        core = _core(Path(folder))
        schemas = {s: schemathesis.openapi.from_asgi("/openapi.json", create_app(s, core))
                   for s in services}
        checks: list[Any] = list(CHECKS.get_all())
        for service, method, path, _ in documented_operations(services):
            if only and f"{method.upper()} {path}" not in only:
                continue
            operation = schemas[service][path][method]
            callers = [{"Authorization": "Bearer " + core.auth.login(user, PASSWORD).access_token}
                       for user in ("checks-root", "checks-writer")] + [{}]
            where = f"{service.value} {method} {path}"

            def check(case: schemathesis.Case[Any], caller: dict[str, str]) -> None:
                nonlocal sent
                sent += 1
                try:
                    response = case.call(headers=caller, timeout=120)
                except Exception as exc:  # the app raised, or gave no answer in time
                    findings[("No answer", f"{where}: {type(exc).__name__}")] += 1  # noqa: B023
                    return
                try:
                    case.validate_response(response, checks=checks, headers=caller)
                except FailureGroup as failed:
                    for failure in failed.exceptions:
                        if by_design(failure, response, service,  # noqa: B023
                                     f"{method} {path}") or lost_in_sending(  # noqa: B023
                                failure, case, response):
                            continue
                        title = getattr(failure, "title", type(failure).__name__)
                        found = f"{where}: {response.status_code} {_code(response)}"  # noqa: B023
                        findings[(title, found)] += 1
                        instances.setdefault((title, found), (
                            f"{case.as_curl_command(headers=caller)}\n"
                            f"{response.status_code} {response.text[:300]}\n"
                            f"generated as: {str(getattr(case, 'meta', None))[:600]}"))

            print(f"{where}: {sent} requests so far, {sum(findings.values())} findings",
                  file=sys.stderr, flush=True)  # progress: a long run takes an hour or more
            explicit = ((example_cases(operation) if "examples" in phases else [])
                        + (coverage_cases(operation, coverage_limit)
                           if "coverage" in phases else []))
            for number, case in enumerate(explicit):
                check(case, callers[number % len(callers)])
            if "fuzzing" not in phases:
                continue
            for mode in MODES:

                @settings
                @hypothesis.given(case=operation.as_strategy(generation_mode=mode),
                                  caller=st.sampled_from(callers))
                def one(case: schemathesis.Case[Any], caller: dict[str, str]) -> None:
                    check(case, caller)

                if seed is not None:
                    one = hypothesis.seed(seed)(one)
                with contextlib.suppress(Unsatisfiable):  # nothing of it can be made invalid
                    one()
        core.close()
    return findings, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--examples", type=int, default=5,
                        help="generated requests per operation, mode and caller mix")
    parser.add_argument("--seed", type=int, default=None,
                        help="generate from this seed (default: the fuzz test's derandomized "
                             "cases)")
    parser.add_argument("--phase", action="append", choices=PHASES,
                        help="only these of Schemathesis' phases (default: all three)")
    parser.add_argument("--coverage-limit", type=int, default=300,
                        help="coverage cases per operation at most (evenly thinned)")
    parser.add_argument("--show", action="store_true",
                        help="print each finding's first request (as curl) and answer")
    parser.add_argument("--service", action="append", choices=[s.value for s in Service],
                        help="only these services (default: all seven)")
    parser.add_argument("--operation", action="append",
                        help="only this operation, as \"METHOD /path\" (repeatable)")
    args = parser.parse_args()
    services = [Service(s) for s in args.service] if args.service else list(Service)
    findings, sent = run(services, args.examples, args.seed, args.phase or list(PHASES),
                         coverage_limit=args.coverage_limit, only=args.operation)
    by_check: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    for (title, where), count in findings.items():
        by_check[title].append((where, count))
    for title, places in sorted(by_check.items(), key=lambda item: -sum(c for _, c in item[1])):
        print(f"{sum(c for _, c in places):5d}  {title}")
        for where, count in sorted(places):
            print(f"         {count:3d}  {where}")
            if args.show:
                print("              " + instances[(title, where)][:1500].replace(
                    "\n", "\n              "))
    print(f"{sum(findings.values()):5d}  findings in all, of {sent} requests")
    raise SystemExit(1 if findings else 0)


if __name__ == "__main__":
    main()
