"""A Python client generated from the seven services' OpenAPI documents works, with no
hand-written HTTP: it logs in, writes a record and a batch, loads a file and follows the load's
run, runs a sync query and pages its rows, and runs an async query and follows it to its rows.

The generator is `openapi-python-client`, run from its own environment (`make install` builds
`.venv/client-generator`: its CLI pins an older typer than the platform's). The services run
for real: uvicorn on loopback ports, one core with the write-ahead log, a SQLite catalog and a
temporary Prefect server for the load's flow run. Nothing is mocked.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD
from tests.serving import free_ports, serving

GENERATOR = Path(sys.executable).parent.parent / "client-generator" / "bin"
# What the generator cannot do, and says so: NDJSON bodies (the JSON form of the same
# operation is generated). Any other warning fails the test.
KNOWN_WARNINGS = ("Unsupported content type application/x-ndjson",)
PAGE_ROWS = 3  # the sync answer's rows; the rest are paged


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str) -> Iterator[Core]:
    ports = dict(zip((f"{s.value}_port" for s in Service), free_ports(len(Service)),
                     strict=True))
    built = build_core(Settings.for_tests(
        tmp_path_factory.mktemp("client"), prefect_api_url=prefect_api_url,
        query_on_dask=False, load_on_dask=False, flush_on_dask=False,
        query_max_result_rows=PAGE_ROWS, **ports), ingest=True)
    built.auth.create_user("ada", PASSWORD, "acme", Role.WRITER)
    yield built
    built.close()


@pytest.fixture(scope="module")
def running(core: Core) -> Iterator[dict[Service, str]]:
    """Every service over real HTTP on loopback; their base URLs."""
    with serving(core, list(Service)) as urls:
        yield urls


@pytest.fixture(scope="module")
def clients(core: Core, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        dict[Service, ModuleType]]:
    """Each service's generated client package, imported."""
    if not (GENERATOR / "openapi-python-client").exists():
        pytest.fail(f"no client generator at {GENERATOR}: run `make install` (make test does)")
    out = tmp_path_factory.mktemp("generated")
    warnings: list[str] = []
    for service in Service:
        document = out / f"{service.value}.json"
        document.write_text(json.dumps(create_app(service, core).openapi()))
        config = out / f"{service.value}.yaml"
        config.write_text(f"package_name_override: {service.value}_client\n")
        generated = subprocess.run(
            [str(GENERATOR / "openapi-python-client"), "generate", "--path", str(document),
             "--output-path", str(out / f"{service.value}_client"), "--meta", "none",
             "--config", str(config)],
            check=False, capture_output=True, text=True, timeout=120, cwd=out,
            env={**os.environ, "PATH": f"{GENERATOR}{os.pathsep}{os.environ['PATH']}"})
        assert generated.returncode == 0, generated.stdout + generated.stderr
        warnings.extend(f"{service.value}: {line}" for line in generated.stdout.splitlines()
                        if line.startswith(("WARNING", "Unsupported", "Cannot", "Could not")))
    unexpected = [w for w in warnings if "WARNING parsing" not in w
                  and not w.endswith(KNOWN_WARNINGS)]
    assert not unexpected, "\n".join(unexpected)
    sys.path.insert(0, str(out))
    try:
        yield {s: importlib.import_module(f"{s.value}_client") for s in Service}
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n.endswith("_client") or "_client." in n]:
            if name.split(".")[0] in {f"{s.value}_client" for s in Service}:
                del sys.modules[name]


def _api(client: ModuleType, module: str) -> Any:
    return importlib.import_module(f"{client.__name__}.api.{module}")


def _model(client: ModuleType, name: str) -> Any:
    return getattr(importlib.import_module(f"{client.__name__}.models"), name)


def _page_params(next_uri: str) -> dict[str, int]:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(next_uri).query)
    return {"offset": int(query["offset"][0]), "limit": int(query["limit"][0])}


def test_a_generated_client_writes_loads_and_queries(
        core: Core, running: dict[Service, str], clients: dict[Service, ModuleType]) -> None:
    auth, tenant, operation = clients[Service.AUTH], clients[Service.TENANT], \
        clients[Service.OPERATION]

    # Log in: the token the other clients carry.
    login = _api(auth, "auth.login").sync(
        client=auth.Client(base_url=running[Service.AUTH]),
        body=_model(auth, "LoginRequest")(username="ada", password=PASSWORD))
    token = login.access_token
    assert token

    def authed(service: Service, client: ModuleType) -> Any:
        return client.AuthenticatedClient(base_url=running[service], token=token,
                                          raise_on_unexpected_status=True)

    writer = authed(Service.TENANT, tenant)

    # One record, then a batch.
    record = _model(tenant, "WriteOneRecord").from_dict(
        {"data_id": "o0", "table": "orders", "payload": {"amount": 0, "city": "Oslo"}})
    written = _api(tenant, "data.write_one").sync_detailed(client=writer, body=record)
    assert written.status_code == 201, written.content
    assert written.parsed.status == "durable" and written.parsed.table == "orders"
    batch = [_model(tenant, "WriteManyJsonRecord").from_dict(
        {"data_id": f"o{i}", "table": "orders", "payload": {"amount": i, "city": "Bergen"}})
        for i in range(1, 8)]
    stored = _api(tenant, "data.write_many").sync(client=writer, body=batch)
    assert (stored.accepted, stored.rejected, stored.status) == (7, 0, "durable")
    assert [(t.table, t.count) for t in stored.tables] == [("orders", 7)]

    # A file loaded as a table, followed to its end on the Operation Node.
    imports = core.settings.data_dir / "imports"
    imports.mkdir()
    pq.write_table(pa.table({"sku": ["a", "b", "c"], "price": [1.5, 2.5, 3.5]}),
                   imports / "prices.parquet")
    started = _api(tenant, "data.load").sync_detailed(
        client=writer, body=_model(tenant, "LoadBody")(table="prices",
                                                       source=str(imports / "prices.parquet")))
    assert started.status_code == 202, started.content
    run_id = started.parsed.run_id
    assert started.headers["location"] == f"{running[Service.OPERATION]}/runs/{run_id}"
    reader = authed(Service.OPERATION, operation)
    get_run = _api(operation, "runs.get_run")
    deadline = time.monotonic() + 120
    run = get_run.sync(run_id, client=reader)
    while run.state not in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
        assert time.monotonic() < deadline, f"the load did not end in 120 s: {run.state}"
        time.sleep(0.5)
        run = get_run.sync(run_id, client=reader)
    assert run.state == "COMPLETED", run.error
    assert run.result["rows"] == 3, run
    # Progress counts the task runs Prefect has recorded, from their events, after the run's
    # own state; in a test process that served other modules' Prefect servers before, the
    # events may never arrive (Prefect's events client is one per process), so only its shape
    # is checked here (tests/flows/test_runs_api.py checks the counts against one server).
    assert 0 <= run.progress.done <= run.progress.total, run

    # A sync query: the first page, then the rest by next_uri.
    execute, result = _api(operation, "query.execute"), _api(operation, "query.result")
    body = _model(operation, "ExecuteBody")
    page = execute.sync(client=reader, body=body.from_dict(
        {"query": "SELECT data_id, amount FROM orders ORDER BY amount"}))
    assert [c.name for c in page.columns] == ["data_id", "amount"]
    assert page.row_count == 8 and page.returned == PAGE_ROWS and page.next_uri
    rows = list(page.rows)
    while page.next_uri:
        page = result.sync(page.query_id, client=reader, **_page_params(page.next_uri))
        rows.extend(page.rows)
    assert rows == [[f"o{i}", i] for i in range(8)]
    priced = execute.sync(client=reader, body=body.from_dict(
        {"query": "SELECT sum(price) AS total FROM prices"}))
    assert priced.rows == [[7.5]]

    # An async query: 202 with where to follow it, its status, then its rows.
    submitted = execute.sync_detailed(client=reader, body=body.from_dict(
        {"query": "SELECT city, count(*) AS n FROM orders GROUP BY city ORDER BY city",
         "mode": "async"}))
    assert submitted.status_code == 202, submitted.content
    query_id = submitted.parsed.query_id
    assert submitted.headers["location"] == f"{running[Service.OPERATION]}/query/{query_id}"
    status = _api(operation, "query.status")
    deadline = time.monotonic() + 60
    state = status.sync(query_id, client=reader)
    while state.state not in ("finished", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"the query did not end in 60 s: {state.state}"
        time.sleep(0.2)
        state = status.sync(query_id, client=reader)
    assert state.state == "finished" and state.rows == 2, state.error
    answered = result.sync(query_id, client=reader)
    assert answered.rows == [["Bergen", 7], ["Oslo", 1]] and answered.next_uri is None
