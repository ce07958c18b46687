"""Kill the server between the flush's steps; after a restart nothing is lost or doubled.

A real `lakehouse serve` on a real WAL and catalog. `LAKEHOUSE_CRASH_AT` makes the process exit
at once (as SIGKILL would) right after the files are written, or right after the catalog commit
and before the log is trimmed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_crash import Server

pytestmark = pytest.mark.slow


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
    server = Server(tmp_path, FLUSH_ON_DASK="false", FLUSH_MAX_AGE_S="3600",
                    PREFECT_CLIENT_MAX_RETRIES="0", LAKEHOUSE_CRASH_AT=point)
    server.start()
    base = f"http://127.0.0.1:{server.tenant_port}"
    token = httpx.post(f"http://127.0.0.1:{server.auth_port}/auth/login", json={
        "username": "admin", "password": "password"}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    stored = httpx.post(f"{base}/data/store", headers=headers, json=[
        {"data_id": f"r{i}", "payload": {"i": i}} for i in range(300)]).json()
    assert stored["accepted"] == 300
    with pytest.raises(httpx.HTTPError):  # the process dies inside the flush
        httpx.post(f"{base}/data/flush", headers=headers, timeout=120)
    assert server.proc is not None and server.proc.wait(30) == 137

    del server.env["LAKEHOUSE_CRASH_AT"]
    server.start()
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
        server.stop()
