"""Kill the server between the flush's steps; after a restart nothing is lost or doubled.

A real `lakehouse serve` on a real WAL and catalog. `LAKEHOUSE_CRASH_AT` makes the process exit
at once (as SIGKILL would) right after the files are written, or right after the catalog commit
and before the log is trimmed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_crash import _free_port

pytestmark = pytest.mark.slow


def _start(data_dir: Path, ports: tuple[int, int], crash_at: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATA_DIR": str(data_dir), "ENVIRONMENT": "development",
           "AUTH_PORT": str(ports[0]), "TENANT_PORT": str(ports[1]), "LOG_LEVEL": "WARNING",
           "PREFECT_API_URL": "http://127.0.0.1:9/api", "FLUSH_ON_DASK": "false",
           "FLUSH_MAX_AGE_S": "3600", "PREFECT_CLIENT_MAX_RETRIES": "0"}
    env.pop("LAKEHOUSE_CRASH_AT", None)
    if crash_at:
        env["LAKEHOUSE_CRASH_AT"] = crash_at
    log = (data_dir / "server.log").open("ab")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "lakehouse"), "serve", "-s",
                             "auth", "-s", "tenant"], env=env, stdout=log, stderr=log)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{ports[1]}/health").status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def _records(base: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if after is not None:
            params["after"] = after
        page = httpx.get(f"{base}/data", headers=headers, params=params, timeout=30).json()
        out.extend(page["records"])
        after = page["next_after"]
        if after is None:
            return out


@pytest.mark.parametrize("point", ["flush:after_write", "flush:after_commit"])
def test_kill_during_flush(tmp_path: Path, point: str) -> None:
    ports = (_free_port(), _free_port())
    base = f"http://127.0.0.1:{ports[1]}"
    server = _start(tmp_path, ports, crash_at=point)
    token = httpx.post(f"http://127.0.0.1:{ports[0]}/auth/login", json={
        "username": "admin", "password": "password"}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    stored = httpx.post(f"{base}/data/store", headers=headers, json=[
        {"data_id": f"r{i}", "payload": {"i": i}} for i in range(300)]).json()
    assert stored["accepted"] == 300
    with pytest.raises(httpx.HTTPError):  # the process dies inside the flush
        httpx.post(f"{base}/data/flush", headers=headers, timeout=120)
    assert server.wait(30) == 137

    server = _start(tmp_path, ports, crash_at=None)
    try:
        rows = _records(base, headers)
        assert sorted(r["data_id"] for r in rows) == sorted(f"r{i}" for i in range(300))
        flushed = httpx.post(f"{base}/data/flush", headers=headers, timeout=120).json()
        # After the commit the restart already trimmed the log: nothing is flushed twice.
        assert flushed["rows"] == (0 if point == "flush:after_commit" else 300)
        after = _records(base, headers)
        assert len(after) == 300 and all(r["flushed"] for r in after)
        parquet = list((tmp_path / "warehouse" / "default" / "records").rglob("*.parquet"))
        assert len(parquet) == 1  # a replay rewrote the same file name; no stray copies
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
