"""What a storm of wrong-password logins costs the other services: p50 and p99 of an
authenticated `GET /data` on the Tenant Node, without and with a concurrent storm on
`POST /auth/login`, as a ratio, for the platform as configured (login throttle on) and, as the
reference in the same run, with the throttle turned off.

    .venv/bin/python bench/login_storm.py [--probes 400] [--seconds 60] [--rate 100]
                                          [--addresses 1]

The services run as `lakehouse serve` runs them (api/server.py: the Auth Gateway and the Tenant
Node in one process, on one event loop, uvicorn on loopback), in a child process with a
temporary DATA_DIR and OWASP's argon2id cost (19 MiB, t=2), the default. The storm runs in
another process: `--rate` attempts per second (open loop, at most 64 in flight) with wrong
passwords for real and made-up user names, from `--addresses` loopback source addresses
(127.0.0.2, 127.0.0.3, …). The probe is one client sending `GET /data` one after the other,
with a token validated moments before (so what is measured is the storm's effect on the shared
event loop, cores and thread pool, not a database round trip).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.synchronize
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PASSWORD = "bench-password-1"  # noqa: S105 - throwaway users of a temporary DATA_DIR
VICTIMS = 10  # real user names the storm guesses at; as many made-up ones
UNTHROTTLED = 10**9  # free failures: the throttle never holds anyone


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the services (child process) -------------------------------------------------------------
def serve(data_dir: str, auth_port: int, tenant_port: int, throttled: bool) -> None:
    from api.core import build_core
    from api.server import serve as serve_services
    from api.services import Service
    from lakehouse.auth.identity import Role
    from lakehouse.config import Settings

    free = {} if throttled else {"login_user_free_failures": UNTHROTTLED,
                                 "login_address_free_failures": UNTHROTTLED}
    settings = Settings.for_tests(Path(data_dir), argon2_memory_kib=19 * 1024,
                                  argon2_time_cost=2, auth_port=auth_port,
                                  tenant_port=tenant_port, flush_enabled=False, **free)
    core = build_core(settings, ingest=True)
    assert core.ingest is not None
    core.auth.create_user("reader", PASSWORD, "acme", Role.READER)
    for i in range(VICTIMS):
        core.auth.create_user(f"victim{i}", PASSWORD, "acme", Role.WRITER)
    pending = core.ingest.write("acme", [{"data_id": f"r{i}", "payload": {"n": i, "s": "x" * 50}}
                                         for i in range(200)])
    for future in pending.futures():
        future.result()
    token = core.auth.login("reader", PASSWORD).access_token
    print(json.dumps({"token": token}), flush=True)
    asyncio.run(serve_services(core, [Service.AUTH, Service.TENANT]))


def start_services(throttled: bool, tmp: str) -> tuple[subprocess.Popen[str], str, int, int]:
    auth_port, tenant_port = free_port(), free_port()
    data = tempfile.mkdtemp(dir=tmp)
    child = subprocess.Popen(  # this very script, with our own arguments
        [sys.executable, __file__, "--serve", data, str(auth_port), str(tenant_port),
         "1" if throttled else "0"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "LOG_LEVEL": "WARNING"})
    assert child.stdout is not None
    token = json.loads(child.stdout.readline())["token"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the ports answer once uvicorn has started
        try:
            httpx.get(f"http://127.0.0.1:{tenant_port}/health", timeout=1)
            httpx.get(f"http://127.0.0.1:{auth_port}/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    return child, token, auth_port, tenant_port


# --- the storm (another process) --------------------------------------------------------------
def storm(auth_port: int, rate: float, addresses: int, stop: multiprocessing.synchronize.Event,
          out: Any) -> None:
    out.put(asyncio.run(_storm(auth_port, rate, addresses, stop)))


async def _storm(auth_port: int, rate: float, addresses: int,
                 stop: multiprocessing.synchronize.Event) -> dict[str, Any]:
    clients = [httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{auth_port}", timeout=60,
        transport=httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + i}"))
        for i in range(addresses)]
    statuses: dict[str, int] = {}
    in_flight: set[asyncio.Task[None]] = set()
    skipped = 0

    async def attempt(n: int) -> None:
        name = f"victim{n % VICTIMS}" if n % 2 else f"nobody{n % VICTIMS}"
        try:
            response = await clients[n % addresses].post(
                "/auth/login", json={"username": name, "password": "wrong guess"})
            key = str(response.status_code)
        except httpx.HTTPError as exc:
            key = type(exc).__name__
        statuses[key] = statuses.get(key, 0) + 1

    start = time.monotonic()
    n = 0
    while not stop.is_set():
        n += 1
        if len(in_flight) >= 64:
            skipped += 1
        else:
            task = asyncio.create_task(attempt(n))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
    sent_for = time.monotonic() - start
    await asyncio.gather(*in_flight)
    for client in clients:
        await client.aclose()
    return {"attempts_per_s": round((n - skipped) / sent_for, 1), "statuses": statuses,
            "not_sent_64_in_flight": skipped}


# --- the probe (this process) -----------------------------------------------------------------
def probe(tenant_port: int, token: str, count: int, seconds: float) -> list[float]:
    """`count` timings (ms), sorted, or fewer if `seconds` run out first (a storm without the
    throttle slows each probe to seconds)."""
    times = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=f"http://127.0.0.1:{tenant_port}", timeout=60,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        for i in range(count + 20):
            if time.monotonic() > deadline and len(times) >= 20:
                break
            started = time.perf_counter()
            client.get("/data", params={"limit": 10}).raise_for_status()
            if i >= 20:  # warm-up
                times.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)  # the probe itself should barely load the server
    return sorted(times)


def p50_p99(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def run(throttled: bool, args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    child, token, auth_port, tenant_port = start_services(throttled, tmp)
    try:
        quiet = probe(tenant_port, token, args.probes, args.seconds)
        stop = multiprocessing.Event()
        out: multiprocessing.Queue[dict[str, Any]] = multiprocessing.Queue()
        stormer = multiprocessing.Process(target=storm, args=(auth_port, args.rate,
                                                              args.addresses, stop, out))
        stormer.start()
        time.sleep(1.0)  # let the storm build up
        stormy = probe(tenant_port, token, args.probes, args.seconds)
        stop.set()
        storm_report = out.get(timeout=300)
        stormer.join(timeout=30)
    finally:
        child.terminate()
        child.wait(timeout=30)
    return {"quiet": p50_p99(quiet), "storm": p50_p99(stormy), "storm_report": storm_report,
            "probes": (len(quiet), len(stormy))}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        data, auth_port, tenant_port, throttled = sys.argv[2:6]
        serve(data, int(auth_port), int(tenant_port), throttled == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probes", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="longest a phase probes (fewer probes if it runs out)")
    parser.add_argument("--rate", type=float, default=100.0, help="login attempts per second")
    parser.add_argument("--addresses", type=int, default=1, choices=range(1, 200),
                        metavar="1..199", help="loopback source addresses of the storm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="login-storm-") as tmp:
        results = {mode: run(mode == "throttled", args, tmp)
                   for mode in ("throttled", "unthrottled")}
    print(f"GET /data on the Tenant Node, {args.probes} probes; storm: {args.rate:.0f} "
          f"wrong-password logins/s from {args.addresses} address(es)")
    for mode, result in results.items():
        (q50, q99), (s50, s99) = result["quiet"], result["storm"]
        print(f"{mode:12s} quiet p50 {q50:6.2f} ms p99 {q99:7.2f} ms | storm p50 {s50:7.2f} ms "
              f"p99 {s99:8.2f} ms | ratio p50 {s50 / q50:5.2f}x p99 {s99 / q99:6.2f}x")
        print(f"{'':12s} probes quiet/storm {result['probes']}; "
              f"storm: {json.dumps(result['storm_report'])}")


if __name__ == "__main__":
    main()
