"""Prefect with authentication: a real Prefect server started with PREFECT_SERVER_API_AUTH_STRING
answers the platform's run endpoints when PREFECT_API_AUTH_STRING holds the same credentials, and
refuses them (a clear 503 naming Prefect) when it does not."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings

from api.app import create_app
from api.core import build_core
from api.services import Service
from deployments.local import prefect_server
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import logged_in, stop_process

pytestmark = pytest.mark.slow
CREDENTIALS = "lakehouse:a-long-prefect-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def secured_prefect(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    settings = Settings.for_tests(tmp_path, prefect_port=port,
                                  prefect_api_url=f"http://127.0.0.1:{port}/api")
    spec = prefect_server(settings)
    env = {**os.environ, **spec.extra_env, "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_API_AUTH_STRING": CREDENTIALS}
    env.pop("PREFECT_API_URL", None)
    process = subprocess.Popen(spec.argv, env=env, cwd=spec.cwd, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{settings.prefect_api_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, "the Prefect server exited"
            time.sleep(0.5)
        else:
            raise AssertionError("the Prefect server did not start")
        yield settings.prefect_api_url
    finally:
        stop_process(process, 15)


def test_runs_need_prefects_credentials(tmp_path: Path, secured_prefect: str) -> None:
    # The server really requires them.
    assert httpx.get(f"{secured_prefect}/flows/filter", timeout=5).status_code in (401, 405)
    core = build_core(Settings.for_tests(tmp_path / "lake", prefect_api_url=secured_prefect))
    headers = logged_in(core, {"acme": ("r", Role.READER)})["acme"]
    try:
        with TestClient(create_app(Service.OPERATION, core),
                        raise_server_exceptions=False) as operation:
            with temporary_settings(updates={PREFECT_API_AUTH_STRING: None}):
                refused = operation.get("/runs", headers=headers)
            assert refused.status_code == 503, refused.text
            assert "Prefect" in refused.json()["message"]
            with temporary_settings(updates={PREFECT_API_AUTH_STRING: CREDENTIALS}):
                answered = operation.get("/runs", headers=headers)
            assert answered.status_code == 200, answered.text
            assert answered.json() == {"count": 0, "runs": []}
    finally:
        core.close()
