"""Resilience figures: a crashed services process restarted, and a power cut.

    sudo .venv/bin/python bench/resilience.py

- Restart: `lakehouse up` runs the whole system (a temporary DATA_DIR, free ports); two clients
  write records in batches of 500 over HTTP; the services' process is SIGKILLed while they
  write. Printed: the time from the kill to the Tenant Node taking writes again, and the
  records acknowledged against those present afterwards (lost, doubled).
- Power loss: the write-ahead log on a filesystem that drops unsynced writes at the cut
  (tests/powerloss/: FUSE; needs root and /dev/fuse), with WAL_SYNC on and off: acknowledged,
  present, lost.
- Overload (tests/e2e/overload.py): the capacity for small NDJSON writes and for a grouping
  query measured with closed loops, then for --overload-s seconds (60) one tenant offers five
  times both while another tenant writes and queries at a modest rate, /health is polled and an
  admin logs in: offered, accepted and shed per stream, accepted p50/p99, the peak memory of
  the services' process, and the time back to normal write latency once the load stops.

    sudo .venv/bin/python bench/resilience.py --only overload --overload-s 20   # a short look
    sudo .venv/bin/python bench/resilience.py --only overload --overload-s 20 --write-only
    sudo .venv/bin/python bench/resilience.py --only overload --capacity 400,30  # runs to compare

The capacities are measured and printed either way; with --capacity the flood offers five
times the rates given instead, so runs on a noisy machine offer the same flood.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the power-cut disk and the port picker live with the tests
from tests.e2e.overload import WRITE_BATCH, Plan, Ports, run_overload  # noqa: E402
from tests.e2e.test_up import PORT_SETTINGS, _free_ports  # noqa: E402
from tests.powerloss.harness import (  # noqa: E402
    ensure_fuse3,
    fuse_available,
    power_cut,
    volatile_disk,
)

BIN = Path(sys.executable).parent
BATCH = 500


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not happen in {timeout_s:.0f} s")


def _login(port: int) -> str:
    """The admin's token, once the Auth Gateway answers."""
    found: list[str] = []

    def logged_in() -> bool:
        answer = httpx.post(f"http://127.0.0.1:{port}/auth/login", timeout=30,
                            json={"username": "admin", "password": "password"})
        if answer.status_code == 200:
            found.append(answer.json()["access_token"])
        return bool(found)

    _wait(logged_in, 60, "a login")
    return found[0]


@contextlib.contextmanager
def running_system(prefix: str, extra: dict[str, str] | None = None,
                   ) -> Iterator[tuple[dict[str, int], Path, subprocess.Popen[bytes]]]:
    """`lakehouse up` in a temporary DATA_DIR on free ports, once it says it is up."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        data_dir = Path(tmp)
        ports = dict(zip(PORT_SETTINGS, _free_ports(len(PORT_SETTINGS)), strict=True))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PREFECT_", "DASK_")) and k not in ("CATALOG_URL",
                                                                         "DATA_DIR")}
        env |= {name: str(port) for name, port in ports.items()}
        env |= {"DATA_DIR": str(data_dir), "ENVIRONMENT": "development", "DASK_WORKERS": "1"}
        env |= extra or {}
        with (data_dir / "up.out").open("wb") as out:
            up = subprocess.Popen([str(BIN / "lakehouse"), "up"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT, cwd=data_dir)
        try:
            _wait(lambda: "Storage Control Plane is up" in (data_dir / "up.out").read_text(),
                  300, "the start")
            yield ports, data_dir, up
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(60)


def restart() -> dict[str, Any]:
    with running_system("bench-resilience-") as (ports, data_dir, _):
        tenant = f"http://127.0.0.1:{ports['TENANT_PORT']}"
        token = _login(ports["AUTH_PORT"])
        headers = {"Authorization": f"Bearer {token}",
                   "Content-Type": "application/x-ndjson"}
        acknowledged: list[str] = []
        stop = threading.Event()

        def writer(prefix: str) -> None:
            n = 0
            while not stop.is_set():
                ids = [f"{prefix}-{n + i}" for i in range(BATCH)]
                n += BATCH
                body = b"\n".join(orjson.dumps({"data_id": i, "payload": {"n": 1}})
                                  for i in ids)
                try:
                    answer = httpx.post(f"{tenant}/data/store", content=body,
                                        headers=headers, timeout=30)
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                if answer.status_code in (200, 201):
                    acknowledged.extend(ids)
                else:
                    time.sleep(0.05)

        writers = [threading.Thread(target=writer, args=(f"w{k}",)) for k in range(2)]
        for thread in writers:
            thread.start()
        time.sleep(3)
        recorded = json.loads((data_dir / "run" / "supervisor.json").read_text())
        os.kill(recorded["children"]["control-plane"]["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        before = len(acknowledged)
        _wait(lambda: len(acknowledged) > before, 120, "a write after the restart")
        back_s = time.monotonic() - killed_at
        time.sleep(1)
        stop.set()
        for thread in writers:
            thread.join(60)
        _wait(lambda: httpx.get(f"http://127.0.0.1:{ports['OPERATION_PORT']}/health",
                                timeout=5).status_code == 200, 60, "the Operation Node")
        rows = httpx.post(f"http://127.0.0.1:{ports['OPERATION_PORT']}/query/execute",
                          headers={"Authorization": f"Bearer {token}"}, timeout=120,
                          json={"query": "SELECT data_id FROM records"}).json()["rows"]
        found = [row[0] for row in rows]
    return {"back_s": back_s, "acknowledged": len(acknowledged), "present": len(set(found)),
            "lost": len(set(acknowledged) - set(found)), "doubled": len(found) - len(set(found))}


def overload(plan: Plan, settings: dict[str, str]) -> dict[str, Any]:
    with running_system("bench-overload-", settings) as (ports, data_dir, _):
        token = _login(ports["AUTH_PORT"])
        recorded = json.loads((data_dir / "run" / "supervisor.json").read_text())
        pid = recorded["children"]["control-plane"]["pid"]
        return asyncio.run(run_overload(
            Ports(ports["AUTH_PORT"], ports["TENANT_PORT"], ports["OPERATION_PORT"]),
            token, "password", pid, plan))


def print_overload(figures: dict[str, Any]) -> None:
    capacity = figures["capacity"]
    print(f"overload: capacity {capacity['writes_per_s']:,} writes/s "
          f"({capacity['records_per_s']:,} records/s in batches of {WRITE_BATCH}), "
          f"{capacity['queries_per_s']} queries/s; unloaded write p50 "
          f"{figures['unloaded_write_p50_ms']} ms", flush=True)
    for name, stream in figures["streams"].items():
        print(f"  {name:14} offered {stream['offered_per_s']:8,.1f}/s sent {stream['sent']:7,} "
              f"accepted {stream['accepted']:7,} shed {stream['shed']:7,} unanswered "
              f"{stream['unanswered']:4,} failed {stream['failures']:4,}  accepted p50 "
              f"{stream['accepted_p50_ms']:7.1f} ms "
              f"p99 {stream['accepted_p99_ms']:7.1f} ms  shed p99 {stream['shed_p99_ms']:6.1f} "
              f"ms  statuses {stream['statuses']}"
              + (f" shed as {stream['shed_codes']}" if stream["shed_codes"] else ""), flush=True)
    memory = figures["memory"]
    print(f"  memory of the services' process: {memory['before_bytes'] / 2**20:,.0f} MiB before, "
          f"peak {memory['peak_bytes'] / 2**20:,.0f} MiB; back to normal write latency "
          f"{figures['recovery_s']} s after the load stopped", flush=True)
    cpu = figures["cpu"]
    loop = ("" if cpu["loop_on_cpu_pct"] is None else
            f"; the services' event loop on a CPU {cpu['loop_on_cpu_pct']}% of the time and "
            f"waiting for one {cpu['loop_waiting_pct']}%")
    print(f"  CPU during the flood: the machine's {cpu['cores']} cores "
          f"{cpu['machine_busy_pct']}% busy; the services' process {cpu['services_pct']}% of "
          f"a core, this load generator {cpu['generator_pct']}%{loop}", flush=True)


def _capacity(text: str) -> tuple[float, float]:
    try:
        writes, queries = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give writes and queries a second, as 400,30") from None
    if not (0 < writes < math.inf and 0 < queries < math.inf):
        raise argparse.ArgumentTypeError(f"{text!r}: both rates must be numbers above 0")
    return writes, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("restart", "power", "overload"))
    parser.add_argument("--overload-s", type=float, default=60.0)
    parser.add_argument("--write-only", action="store_true",
                        help="overload: no queries during the flood, the write path alone")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the system under overload (to compare limits)")
    parser.add_argument("--capacity", type=_capacity, metavar="WRITES,QUERIES",
                        help="overload: offer five times these writes and queries a second "
                             "instead of the capacities measured (the same flood in runs to "
                             "compare on a noisy machine)")
    args = parser.parse_args()
    if args.only in (None, "overload"):
        settings = dict(item.split("=", 1) for item in args.env)
        print_overload(overload(Plan(duration_s=args.overload_s, queries=not args.write_only,
                                     offered_capacity=args.capacity), settings))
    if args.only == "overload":
        return
    if args.only in (None, "restart"):
        restart_figures()
    if args.only in (None, "power"):
        power_figures()


def restart_figures() -> None:
    figures = restart()
    print(f"restart: writes taken again {figures['back_s']:.1f} s after the services' process "
          f"was killed; acknowledged {figures['acknowledged']:,}, present "
          f"{figures['present']:,}, lost {figures['lost']}, doubled {figures['doubled']}",
          flush=True)


def power_figures() -> None:
    if not fuse_available():
        print("power loss: not measured (needs root and /dev/fuse)")
        return
    ensure_fuse3()
    for sync in (True, False):
        with tempfile.TemporaryDirectory(prefix="bench-powercut-") as tmp, \
                volatile_disk(Path(tmp)) as disk:
            counts = power_cut(disk, sync=sync)
        print(f"power loss, WAL_SYNC={'true' if sync else 'false'}: acknowledged "
              f"{counts['acknowledged']:,}, present {counts['present']:,}, lost "
              f"{counts['lost']:,}", flush=True)


if __name__ == "__main__":
    main()
