"""The requests Schemathesis' examples and coverage phases make for one operation.

Its fuzzing phase is a Hypothesis strategy (`operation.as_strategy`); these two are lists:
every example the document gives, and the coverage cases (each parameter and body field at
its bounds and enum members, and each rule of the schema broken once: a missing required
field, a wrong type, a pattern not met, one past a limit), both valid and invalid requests.
The fuzz test in `make test` and tools/openapi_checks.py send them as they are.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from fastapi.routing import APIRoute
from schemathesis.generation.drivers import CoverageGenerator, ExamplesGenerator
from schemathesis.generation.feedback import NO_FEEDBACK
from schemathesis.generation.overrides import Override

from api.app import ROUTERS
from api.services import Service

MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(context: schemathesis.SerializationContext, value: Any) -> bytes:
    """POST /data/store's NDJSON: the document gives it as text, one record a line (sent as
    it is, lone surrogates and all); anything else generated for it goes as one JSON line."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return (json.dumps(value) + "\n").encode("utf-8", "surrogatepass")


def documented_operations(services: list[Service]) -> list[tuple[Service, str, str, bool]]:
    """Every operation the services' documents list: service, method, path, and whether it
    takes a body (known from the routers, without building an app)."""
    found: list[tuple[Service, str, str, bool]] = []
    for service in services:
        for router in ROUTERS[service]:
            for route in router.routes:
                if isinstance(route, APIRoute) and route.include_in_schema:
                    found.extend((service, method, route.path, route.body_field is not None)
                                 for method in sorted(route.methods or ()))
    return found


def example_cases(operation: Any) -> list[schemathesis.Case[Any]]:
    """A request for every example the operation's document gives."""
    return list(ExamplesGenerator(operation=operation, override=Override(),
                                  feedback=NO_FEEDBACK, fill_missing=False))


def coverage_cases(operation: Any, limit: int) -> list[schemathesis.Case[Any]]:
    """The operation's coverage cases, valid and invalid; when there are more than `limit`
    (a query DSL's nested conditions make thousands), every k-th, so each kind of case the
    generator walks through is still sent."""
    generator = CoverageGenerator(
        operation=operation, generation_modes=MODES,
        generation_config=operation.schema.config.generation_for(operation=operation,
                                                                 phase="coverage"),
        auth_storage=None, override=Override(), feedback=NO_FEEDBACK)
    cases = list(generator)
    if len(cases) <= limit:
        return cases
    step = len(cases) / limit
    return [cases[int(i * step)] for i in range(limit)]
