"""Shared fixtures: settings under a temporary DATA_DIR, the real core on SQLite, clients."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import dask
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.cluster import WORKER_CONFIG
from lakehouse.config import Settings

# Tests never read a developer's `.env` nor reach a running instance by accident.
for _name in ("DATA_DIR", "ENVIRONMENT", "JWT_SECRET", "CATALOG_URL", "PREFECT_API_URL"):
    os.environ.pop(_name, None)

# The in-process Dask workers of the tests run as the platform's do (lakehouse/cluster.py
# WORKER_CONFIG: no statistical profiler, whose sys._current_frames() can deadlock the process).
dask.config.set(WORKER_CONFIG)

PASSWORD = "correct horse battery"


def stop_process(process: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM, then SIGKILL once `grace_s` has passed."""
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()


def logged_in(core: Core, users: dict[str, tuple[str, Role]]) -> dict[str, dict[str, str]]:
    """Per tenant, the Authorization header of a new user of it: `users` maps each tenant to
    the user's name and role."""
    headers = {}
    for tenant, (name, role) in users.items():
        core.auth.create_user(name, PASSWORD, tenant, role)
        headers[tenant] = {"Authorization":
                           f"Bearer {core.auth.login(name, PASSWORD).access_token}"}
    return headers


# Tests under these folders start whole systems (`lakehouse up`, simulated hosts): they take
# turns on one worker, so two never compete for the machine's cores or a namespace.
_WHOLE_SYSTEMS = ("e2e", "multihost")


def _folder(nodeid: str) -> str:
    parts = nodeid.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else ""


def pytest_sessionstart(session: pytest.Session) -> None:
    """Before a run: stop the temporary Prefect servers earlier, killed runs left behind."""
    _reap_prefect_servers(session)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """After a run, once its workers have exited: the same, for the servers of workers that
    exited without stopping theirs (seen after whole, passing runs too)."""
    _reap_prefect_servers(session)


def _reap_prefect_servers(session: pytest.Session) -> None:
    """In the controller only, not in each xdist worker (tools/prefect_harness.py)."""
    if hasattr(session.config, "workerinput"):
        return
    from tools.prefect_harness import reap_orphaned_servers

    reaped = reap_orphaned_servers()
    if reaped:
        print(f"stopped {reaped} Prefect temporary server(s) left by test processes that exited")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest-running folders first (whole systems, then the differential check), so
    `make test`'s two workers end near the same time; the rest in collection order."""
    def rank(item: pytest.Item) -> int:
        folder = _folder(item.nodeid)
        return 0 if folder in _WHOLE_SYSTEMS else 1 if folder == "differential" else 2

    items.sort(key=rank)  # stable: each module's tests stay together and in order


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown when it is not loaded
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """How `make test` (`pytest -n 2`, pytest-xdist) shares the tests among its workers: a
    module's tests run on one worker, so its module fixtures are built once, and every test
    that starts whole systems runs on the same worker, one after another. (pytest-xdist's own
    `loadgroup` cannot do it: it renames node ids, which pytest 9 no longer lets it.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if _folder(nodeid) in _WHOLE_SYSTEMS:
                return "whole systems"
            return nodeid.split("::", 1)[0]

    config.option.loadscopereorder = False  # in the order collected, longest first
    return ByModule(config, log)


# Figures a test wants whoever reads the run's output to see (how many requests a fuzzer sent,
# how many answers a schema does not declare): shown at the end of the run, captured or not.
# They travel in the test's report, so they reach the process that prints the summary also
# when pytest-xdist runs the test elsewhere.
_FIGURES_PROPERTY = "figures: "
_FIGURES: dict[str, Any] = {}  # title → lines


def report_figures(node: pytest.Item, title: str, lines: list[str]) -> None:
    """Show `lines` under `title` in the run's closing summary (the last call per title wins)."""
    node.user_properties.append((_FIGURES_PROPERTY + title, lines))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, value in report.user_properties:
        if name.startswith(_FIGURES_PROPERTY):
            _FIGURES[name.removeprefix(_FIGURES_PROPERTY)] = value


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for title, lines in _FIGURES.items():
        terminalreporter.section(title, sep="-")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.for_tests(tmp_path)


@pytest.fixture
def core(settings: Settings) -> Iterator[Core]:
    built = build_core(settings)
    yield built
    built.close()


@pytest.fixture
def client_for(core: Core) -> Iterator[Callable[[Service], TestClient]]:
    clients: list[TestClient] = []

    def make(service: Service) -> TestClient:
        client = TestClient(create_app(service, core), raise_server_exceptions=False)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def auth_client(client_for: Callable[[Service], TestClient]) -> TestClient:
    return client_for(Service.AUTH)


@pytest.fixture
def make_user(core: Core) -> Callable[..., str]:
    def make(username: str, tenant: str = "acme", role: Role = Role.WRITER) -> str:
        core.auth.create_user(username, PASSWORD, tenant, role)
        return username

    return make


@pytest.fixture
def login(auth_client: TestClient) -> Callable[[str], dict[str, str]]:
    def do(username: str, password: str = PASSWORD) -> dict[str, str]:
        response = auth_client.post("/auth/login",
                                    json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        body: dict[str, str] = response.json()
        return body

    return do


@pytest.fixture
def ingest_core(settings: Settings) -> Iterator[Core]:
    """The core with the write path open on a real RocksDB WAL under the test's DATA_DIR."""
    built = build_core(settings, ingest=True)
    yield built
    built.close()


@pytest.fixture
def tenant_client(ingest_core: Core) -> Iterator[TestClient]:
    """A Tenant Node client logged in as a writer of tenant `acme`."""
    ingest_core.auth.create_user("writer", PASSWORD, "acme", Role.WRITER)
    with TestClient(create_app(Service.TENANT, ingest_core),
                    raise_server_exceptions=False) as client:
        pair = ingest_core.auth.login("writer", PASSWORD)
        client.headers["Authorization"] = f"Bearer {pair.access_token}"
        yield client


@pytest.fixture(scope="session")
def embedded_clickhouse() -> Any:
    """The embedded ClickHouse store (chDB) of this test process: chDB opens one folder per
    process, so every test that needs it shares this one (the one `Settings.for_tests` names),
    each with tenants or a database prefix of its own."""
    from lakehouse.config import tests_clickhouse_dsn
    from lakehouse.serving.store import open_store

    return open_store(tests_clickhouse_dsn(), f"s{uuid.uuid4().hex[:10]}_")


class _Receiver(BaseHTTPRequestHandler):
    """An alert webhook receiver: keeps what it is sent."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on loopback: its URL, and the notifications it got."""
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    server.shutdown()


def wait_for_notifications(received: list[dict[str, Any]], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(received) < count and time.monotonic() < deadline:
        time.sleep(0.05)
