"""Crash test: SIGKILL the Tenant Node at random moments while a client streams records.

A real server process on a real RocksDB WAL with fsync on. After every kill it is restarted and
the client retries what was not acknowledged, as a client would. At the end every acknowledged
record is present exactly once, and every batch is all there or not there at all.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

KILLS = 6
BATCH = 50


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`lakehouse serve` for the Auth Gateway and the Tenant Node, restartable on its ports."""

    def __init__(self, data_dir: Path, services: tuple[str, ...] = ("auth", "tenant"),
                 **settings: str) -> None:
        self.services = services
        self.ports = {service: _free_port() for service in services}
        self.auth_port, self.tenant_port = self.ports["auth"], self.ports["tenant"]
        self.env = {**{k: v for k, v in os.environ.items()
                       if k not in ("DATA_DIR", "LAKEHOUSE_CRASH_AT")},
                    "DATA_DIR": str(data_dir), "ENVIRONMENT": "development",
                    **{f"{service.upper()}_PORT": str(port)
                       for service, port in self.ports.items()},
                    "PREFECT_API_URL": "http://127.0.0.1:9/api", "LOG_LEVEL": "WARNING",
                    **settings}
        self.log = (data_dir / "server.log").open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        services = [part for service in self.services for part in ("-s", service)]
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "lakehouse"), "serve", *services], env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the server exited while starting"
            try:
                if httpx.get(f"http://127.0.0.1:{self.tenant_port}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        self.log.close()


def test_acknowledged_records_survive_sigkill_exactly_once(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.start()
    token = httpx.post(f"http://127.0.0.1:{server.auth_port}/auth/login",
                       json={"username": "admin", "password": "password"}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{server.tenant_port}"
    acked: dict[str, int] = {}
    sent_batches: dict[str, list[str]] = {}
    stop = threading.Event()

    def write(client: httpx.Client, n: int) -> None:
        """Send batch n (or single record n) until some server acknowledges it."""
        ids = [f"b{n}-{i}" for i in range(BATCH)] if n % 3 else [f"s{n}"]
        sent_batches[f"{n}"] = ids
        while not stop.is_set() or n not in done:
            try:
                if len(ids) == 1:
                    r = client.post(f"{base}/data", headers=headers,
                                    json={"data_id": ids[0], "payload": {"n": n, "v": "x" * 200}})
                    if r.status_code in (200, 201):
                        acked[ids[0]] = r.json()["seq"]
                        done.add(n)
                        return
                else:
                    r = client.post(f"{base}/data/store", headers=headers, json=[
                        {"data_id": d, "payload": {"n": n, "i": i, "v": "y" * 200}}
                        for i, d in enumerate(ids)])
                    if r.status_code == 200:
                        answer = r.json()
                        listed = {rec["data_id"]: rec for rec in answer["records"]}
                        written = iter(d for d in ids if d not in listed)
                        for span in answer["tables"]:  # accepted records, in request order
                            for seq in range(span["first_seq"], span["last_seq"] + 1):
                                acked[next(written)] = seq
                        for data_id, rec in listed.items():  # duplicates of earlier tries
                            assert rec["status"] == "duplicate", rec
                            if "seq" in rec:
                                acked[data_id] = rec["seq"]
                        done.add(n)
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)  # the server is down: retry, as a client would

    done: set[int] = set()

    def writer() -> None:
        with httpx.Client(timeout=10) as client:
            n = 0
            while not stop.is_set():
                write(client, n)
                n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    rng = random.Random(7)
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.3, 1.5))
            server.kill()
            time.sleep(rng.uniform(0.0, 0.3))
            server.start()
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(60)
    try:
        seen: list[dict[str, Any]] = []
        after = None
        with httpx.Client(timeout=30) as client:
            while True:
                params: dict[str, Any] = {"limit": 1000}
                if after is not None:
                    params["after"] = after
                page = client.get(f"{base}/data", headers=headers, params=params).json()
                seen.extend(page["records"])
                after = page["next_after"]
                if after is None:
                    break
        ids = [r["data_id"] for r in seen]
        assert len(ids) == len(set(ids)), "a record is stored twice"
        present = {r["data_id"]: r for r in seen}
        missing = [d for d in acked if d not in present]
        assert not missing, f"acknowledged but lost: {missing[:5]}"
        for data_id, seq in acked.items():
            assert present[data_id]["seq"] == seq
        for batch, members in sent_batches.items():
            found = [m for m in members if m in present]
            assert found in ([], members), f"batch {batch} is half-present: {len(found)}"
        assert len(acked) > 100, len(acked)
    finally:
        server.stop()
