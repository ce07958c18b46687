"""The seven services: their names, keys and the setting that holds each one's port."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request

from lakehouse.config import Settings


class Service(enum.StrEnum):
    AUTH = "auth"
    TENANT = "tenant"
    OPERATION = "operation"
    CBO = "cbo"
    CATALOG = "catalog"
    MONITORING = "monitoring"
    INTERPRETER = "interpreter"


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    service: Service
    title: str
    description: str
    needs_dask: bool = False

    def port(self, settings: Settings) -> int:
        return int(getattr(settings, f"{self.service.value}_port"))


SPECS: dict[Service, ServiceSpec] = {
    spec.service: spec
    for spec in (
        ServiceSpec(Service.AUTH, "Auth Gateway", "Log in, validate, refresh and log out."),
        ServiceSpec(Service.TENANT, "Tenant Node", "Write and read a tenant's records."),
        ServiceSpec(Service.OPERATION, "Operation Node",
                    "Run queries on the Dask cluster; runs and nodes.", needs_dask=True),
        ServiceSpec(Service.CBO, "CBO Engine", "Cost-based optimizer."),
        ServiceSpec(Service.CATALOG, "Metadata Catalog", "Tables, partitions, statistics."),
        ServiceSpec(Service.MONITORING, "Monitoring", "Metrics, alerts, logs and a dashboard."),
        ServiceSpec(Service.INTERPRETER, "Query Interpreter", "Parse, validate and plan SQL."),
    )
}


def parse_service(name: str) -> Service:
    """A service by key (`auth`) or title (`Auth Gateway`, `auth-gateway`)."""
    wanted = name.strip().lower().replace("-", " ").replace("_", " ")
    for spec in SPECS.values():
        if wanted in (spec.service.value, spec.title.lower()):
            return spec.service
    raise ValueError(f"unknown service {name!r}; one of: "
                     + ", ".join(s.value for s in Service))


def url_on(service: Service, path: str, request: Request, settings: Settings) -> str:
    """`path` on `service`, reached as this request reached the platform: its scheme and host,
    the service's port (a run started on one service is followed on the Operation Node)."""
    return str(request.url.replace(port=SPECS[service].port(settings), path=path, query=""))


def accepted(what: str, model: type[BaseModel],
             links: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """The declared 202 of an operation that starts work: the body, where to follow it, and
    the operations of the same document its answer leads to (OpenAPI links)."""
    answer: dict[str, Any] = {"model": model, "description": what, "headers": {"Location": {
        "description": "where to follow it (GET)", "schema": {"type": "string"}}}}
    if links:
        answer["links"] = links
    return {202: answer}
