"""Overload of the whole running system (`lakehouse up`): one tenant offers five times the
measured write and query capacity for 60 s (tests/e2e/overload.py) while another writes and
queries at a modest rate, /health is polled and an admin logs in.

What holds: the flood is shed (429/503, each with Retry-After) and never answered 5xx
otherwise; the other tenant is never shed; health and logins always answer (health 200: a
catalog probe that is only slow in the starved process is `degraded`, not 503); memory stays
bounded; every request gets an answer within the client's 30 s; write latency is back to
normal once the load stops (within 10 s is the target, a figure). What does not yet (README,
"Overload"): the latency targets under the flood. The admission limits follow the event loop's
lag and the flood is shed before its bodies are read, but the loop stays busy with the flood's
requests and shares the interpreter with the queries it admitted: accepted writes wait hundreds
of milliseconds there, against the 100 ms target. Those latencies are figures
(bench/resilience.py --only overload prints them), not asserted: tests here check behaviour,
not timings.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from tests.e2e.overload import Plan, Ports, run_overload
from tests.e2e.test_up import _wait_until_healthy, system  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

MEMORY_LIMIT_BYTES = 3 * 2**30  # the services' process and its threads, peak


def _admin_token(port: int) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = httpx.post(f"http://127.0.0.1:{port}/auth/login", timeout=30,
                            json={"username": "admin", "password": "password"})
        if answer.status_code == 200:
            token: str = answer.json()["access_token"]
            return token
        time.sleep(0.5)
    raise AssertionError("the admin could not log in")


@pytest.fixture(scope="module")
def figures(system: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    _wait_until_healthy(system)
    ports = system["ports"]
    token = _admin_token(ports["AUTH_PORT"])
    recorded = json.loads((system["data_dir"] / "run" / "supervisor.json").read_text())
    pid = recorded["children"]["control-plane"]["pid"]
    found = asyncio.run(run_overload(
        Ports(ports["AUTH_PORT"], ports["TENANT_PORT"], ports["OPERATION_PORT"]),
        token, "password", pid, Plan(duration_s=60.0)))
    print(json.dumps(found, indent=1))  # the figures, for whoever reads the test's output
    return found


def test_a_flood_is_shed_fairly_and_the_platform_recovers(figures: dict[str, Any]) -> None:
    streams = figures["streams"]
    for name, stream in streams.items():
        assert set(stream["statuses"]) <= {200, 429, 503}, (name, stream)  # no other 5xx
        assert stream["failures"] == 0 and stream["unanswered"] == 0, (name, stream)
    for name in ("flood writes", "flood queries", "calm writes", "calm queries"):
        assert streams[name]["retry_after_missing"] == 0, (name, streams[name])
    assert streams["flood writes"]["shed"] > 0 and streams["flood queries"]["shed"] > 0
    for name in ("calm writes", "calm queries", "logins"):
        assert streams[name]["shed"] == 0 and streams[name]["accepted"] > 0, (name, streams)
    # Health always answers, and never 503: a catalog probe that times out in the starved
    # process is `degraded` until the catalog has been silent for 30 s (api/core.py).
    assert set(streams["health"]["statuses"]) == {200}, streams["health"]
    for name in ("health", "logins"):
        assert streams[name]["unanswered"] == 0 and streams[name]["accepted"] > 0, (
            name, streams[name])
    assert figures["memory"]["peak_bytes"] < MEMORY_LIMIT_BYTES, figures["memory"]
    # It recovers: writes are back to their unloaded latency within the probe's 30 s. How fast
    # (the target is 10 s) is a figure, like the latencies: measured 1.3 s and 11.3 s on this
    # machine, depending on the flush and the admitted queries still running when it stops.
    assert figures["recovery_s"] is not None, figures
    # Where the CPU went during the flood (a figure, read beside the latencies): shares that
    # add up, taken from the services' process that served the flood.
    cpu = figures["cpu"]
    assert 0 < cpu["machine_busy_pct"] <= 100, cpu
    assert 0 < cpu["services_pct"] <= 100 * cpu["cores"], cpu
    if cpu["loop_on_cpu_pct"] is not None:
        assert 0 < cpu["loop_on_cpu_pct"] + cpu["loop_waiting_pct"] <= 100.5, cpu
