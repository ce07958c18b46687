"""Services of one core over real HTTP on loopback (uvicorn, as `lakehouse up` serves them),
in a thread of the test process; with `alert_rounds`, the rules evaluated as the process
serving Monitoring evaluates them."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from api.alert_rounds import evaluate_forever
from api.core import Core
from api.server import build_servers
from api.services import SPECS, Service

START_TIMEOUT_S = 30


def free_ports(count: int) -> list[int]:
    """`count` ports free on loopback now (bound together, so all different)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def serving(core: Core, services: Sequence[Service], *,
            alert_rounds: bool = False) -> Iterator[dict[Service, str]]:
    """Each service's base URL while it serves."""
    servers = build_servers(core, services)

    async def serve() -> None:
        rounds = asyncio.create_task(evaluate_forever(core)) if alert_rounds else None
        await asyncio.gather(*(server.serve() for server in servers))
        if rounds is not None:
            rounds.cancel()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not all(s.started for s in servers):
        assert time.monotonic() < deadline, f"the services did not start in {START_TIMEOUT_S} s"
        time.sleep(0.05)
    try:
        yield {s: f"http://127.0.0.1:{SPECS[s].port(core.settings)}" for s in services}
    finally:
        for server in servers:
            server.should_exit = True
        thread.join(30)
