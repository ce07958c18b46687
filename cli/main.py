"""`lakehouse up | serve | services | users | tables | load | compact`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.services import SPECS, Service, parse_service
from cli.common import EXIT_USAGE, fail, failing, load_settings
from cli.load import load as load_command
from cli.maintenance import compact as compact_command
from cli.worker import worker_command
from lakehouse.auth.identity import Role
from lakehouse.telemetry.logs import configure_logging

app = typer.Typer(help="Storage Control Plane: multi-tenant storage and query platform.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
users_app = typer.Typer(help="Manage users of the Auth Gateway.", no_args_is_help=True)
app.add_typer(users_app, name="users")
tables_app = typer.Typer(help="Declare tables (schema, checks, partitioning).",
                         no_args_is_help=True)
app.add_typer(tables_app, name="tables")


@app.command()
def up() -> None:
    """Start the whole system on this machine: Prefect server and worker, Dask, all services."""
    from cli.up import run_up

    settings = load_settings()
    configure_logging(settings.log_level)
    raise typer.Exit(run_up(settings))


@app.command()
def serve(
    service: Annotated[list[str] | None, typer.Option(
        "--service", "-s", help="Serve only this service (repeatable); default: all seven."),
    ] = None,
) -> None:
    """Serve the services' HTTP APIs from this process."""
    from api.core import build_core
    from api.server import serve as serve_services
    from api.warm_up import warm_up

    settings = load_settings()
    configure_logging(settings.log_level)
    try:
        chosen = [parse_service(name) for name in service] if service else list(Service)
    except ValueError as exc:
        fail(str(exc), code=EXIT_USAGE)
    # The group-commit thread must get the interpreter soon after its fsync returns; with the
    # default 5 ms switch interval every commit could wait that long behind request handling.
    sys.setswitchinterval(0.0005)
    with failing(EXIT_USAGE):
        core = build_core(settings, ingest=Service.TENANT in chosen)
    warm_up()
    import gc

    # Everything built so far lives as long as the process: keep the collector off it, and
    # collect the young generation less often, so full collections do not pause requests.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    # The standard event loop, not uvloop: uvloop runs libuv without the interpreter lock and
    # takes it back for every callback (each accept, read and write), so while other threads
    # hold it (queries, conversions, the flush) each callback waits its turn, and under a
    # write flood connections waited seconds to be accepted (bench/resilience.py: accepted
    # writes' p99 11 to 18 s with uvloop, 1.1 s with this loop, capacity unchanged).
    asyncio.run(serve_services(core, chosen))


@app.command("services")
def list_services() -> None:
    """List the services and the ports they serve on."""
    settings = load_settings()
    table = Table("service", "key", "url")
    for spec in SPECS.values():
        table.add_row(spec.title, spec.service.value,
                      f"http://{settings.bind_host}:{spec.port(settings)}")
    Console().print(table)


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Argument(help="The new user's name.")],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="The user's tenant.")],
    role: Annotated[Role, typer.Option("--role", "-r", help="admin, writer or reader.")],
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input instead of a prompt.")
    ] = False,
) -> None:
    """Create a user (prompts for the password)."""
    from api.core import build_core

    settings = load_settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    core = build_core(settings)
    try:
        with failing():
            core.auth.create_user(username, password, tenant, role)
    finally:
        core.close()
    Console().print(f"created user [bold]{username}[/bold] ({role.value}) in tenant {tenant}")


@users_app.command("list")
def users_list(
    tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
) -> None:
    """List users, optionally of one tenant."""
    from api.core import build_core

    core = build_core(load_settings())
    try:
        table = Table("user", "tenant", "role", "disabled")
        for user in core.auth.store.list_users(tenant):
            table.add_row(user.username, user.tenant, user.role.value, str(user.disabled))
        Console().print(table)
    finally:
        core.close()


@tables_app.command("declare")
def tables_declare(
    spec: Annotated[Path, typer.Argument(help="A JSON declaration, as POST /metadata/tables "
                                          "takes it.", exists=True, dir_okay=False)],
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="The table's tenant.")],
) -> None:
    """Declare a table: records written to it must then fit its schema and checks."""
    import json

    from lakehouse.auth.identity import check_tenant_name
    from lakehouse.catalog.declarations import SqlDeclarations
    from lakehouse.catalog.declare import declare_table
    from lakehouse.catalog.engine import catalog_engine
    from lakehouse.catalog.lake_sql import SqlCatalog
    from lakehouse.schema.declared import parse_declaration

    settings = load_settings()
    engine = catalog_engine(settings.catalog_url)
    try:
        with failing():
            check_tenant_name(tenant)
            try:
                raw = json.loads(spec.read_text())
            except ValueError as exc:
                fail(f"{spec} is not valid JSON: {exc}")
            declared = parse_declaration(raw)
            snapshot = declare_table(SqlDeclarations(engine), SqlCatalog(engine), tenant,
                                     declared)
    finally:
        engine.dispose()
    Console().print(f"declared table [bold]{declared.name}[/bold] for tenant {tenant} "
                    f"(snapshot {snapshot})")


app.command("load")(load_command)
app.command("compact")(compact_command)
app.command("worker")(worker_command)


def main() -> None:
    app()
