"""One factory builds every service's app from the shared core."""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from api.bodies import COLUMN_TYPE_SCHEMAS, declare_schemas
from api.core import Core
from api.errors import ERROR_RESPONSES, install_error_handlers
from api.fast_writes import FastRecordWrites
from api.middleware import (
    BodyLimits,
    QueryAdmission,
    RequestContext,
    ShedLines,
    WriteAdmission,
    authenticated_tenant,
)
from api.query_params import refuse_unknown_query_params
from api.record_bodies import PAYLOAD_SCHEMAS
from api.routers import (
    auth,
    catalog,
    compaction,
    dashboard,
    data,
    interpreter,
    load,
    monitoring,
    optimize,
    query,
    runs,
    table_options,
    users,
)
from api.routers.health import health_router
from api.services import SPECS, Service
from lakehouse import __version__

ROUTERS: dict[Service, tuple[APIRouter, ...]] = {
    Service.AUTH: (auth.router, users.router),
    Service.TENANT: (data.router, load.router, query.data_router),
    Service.OPERATION: (runs.router, query.router),
    Service.CBO: (optimize.router, compaction.router),
    Service.CATALOG: (catalog.router, table_options.router),
    Service.MONITORING: (monitoring.router, dashboard.router),
    Service.INTERPRETER: (interpreter.router,),
}


# The requests that start a query, shed before they are read when the registry would refuse.
QUERY_PATHS = {Service.OPERATION: frozenset({"/query/execute"}),
               Service.TENANT: frozenset({"/data/execute"})}


def _operation_id(route: APIRoute) -> str:
    """An operation's id is its route's name (`write_one`, `execute`, `login`), unique within a
    service: what a client generated from the document calls its functions and models."""
    return route.name


def create_app(service: Service, core: Core, shed_lines: ShedLines | None = None) -> FastAPI:
    """`shed_lines` is shared with the service's early shedding (api/early_shed.py), so its
    shed answers are logged one a second together with the middlewares'."""
    spec = SPECS[service]
    # Swagger UI and ReDoc assets come from the installed package, so docs work offline.
    app = FastAPIOffline(
        title=f"{spec.title} — Storage Control Plane",
        description=spec.description,
        version=__version__,
        dependencies=[Depends(refuse_unknown_query_params)],
        generate_unique_id_function=_operation_id,
        # FastAPI's own OpenTelemetry hooks asked the global providers (and the environment)
        # on every request whether to trace it: a tenth of the event loop's time under a
        # flood of small requests. The platform's telemetry is its metrics and logs.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.core = core
    app.state.service = spec
    install_error_handlers(app)
    app.include_router(health_router(spec), responses=ERROR_RESPONSES)
    for router in ROUTERS[service]:
        app.include_router(router, responses=ERROR_RESPONSES)
    declare_schemas(app, {**PAYLOAD_SCHEMAS, **COLUMN_TYPE_SCHEMAS})
    if service is Service.TENANT:
        app.add_middleware(FastRecordWrites, core=core)
        app.add_middleware(WriteAdmission, slots=core.write_slots,
                           tenant_of=authenticated_tenant(core), metrics=core.metrics)
    if service in (Service.OPERATION, Service.TENANT):
        app.add_middleware(QueryAdmission, core=core, paths=QUERY_PATHS[service],
                           tenant_of=authenticated_tenant(core))
    # On every service, outside the write path's own layers: a body too large or nested too
    # deep is refused before the fast path, the admission limit or any parser sees it.
    app.add_middleware(BodyLimits, max_body_bytes=core.settings.request_max_body_bytes,
                       max_depth=core.settings.json_max_depth,
                       record_body_bytes=core.settings.ingest_max_body_bytes)
    # Added last, so it runs first: even shed requests get a request id and a log line.
    app.add_middleware(RequestContext, service=spec.title, metrics=core.metrics,
                       shed_lines=shed_lines)
    return app
