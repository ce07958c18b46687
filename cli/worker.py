"""`lakehouse worker`: a Dask worker of the platform on this host (README "On several hosts").

It is `dask worker` with the platform's settings (threads, memory, spill folder) and a check
first: the worker must be able to open STORAGE_ROOT here, and a local-folder root on a host
other than the scheduler's is flagged at once, since the control plane would exclude such a
worker anyway (lakehouse/worker_storage.py).

A Dask worker ends itself when its scheduler goes away; this command starts it again (after the
restart policy's back-off, cli/restart_policy.py), and the new one waits until the scheduler is
back, so a restarted scheduler finds its workers again without anyone logging in to the worker
hosts. SIGTERM or Ctrl-C stops the worker and the command; the worker also dies with the
command (its parent-death signal).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from cli.common import EXIT_USAGE, err, fail
from cli.restart_policy import GiveUp, decide_restart
from cli.supervisor import dying_with_me
from lakehouse.cluster import WORKER_ENV
from lakehouse.config import Settings
from lakehouse.storage.location import StorageRoot


def worker_command(
    scheduler: Annotated[str | None, typer.Option(
        "--scheduler", help="The Dask scheduler, e.g. tcp://10.0.0.1:8786 "
                            "(default: DASK_SCHEDULER_ADDRESS).")] = None,
    nworkers: Annotated[int | None, typer.Option(
        "--nworkers", min=1, help="Worker processes (default: DASK_WORKERS, at least 1).")] = None,
    host: Annotated[str | None, typer.Option(
        "--host", help="The address this worker listens on and tells the scheduler (default: "
                       "the interface that reaches the scheduler).")] = None,
    name: Annotated[str | None, typer.Option(
        "--name", help="The worker's name in the Dask dashboard (default: this host's name).")
    ] = None,
) -> None:
    """Run Dask workers of the platform on this host, connected to the scheduler."""
    try:
        settings = Settings()
    except ValueError as exc:
        fail(f"in settings: {exc}", code=EXIT_USAGE)
    address = scheduler or settings.dask_scheduler_address
    try:
        root = StorageRoot.parse(settings.storage_root)
    except (OSError, ValueError) as exc:
        fail(f"STORAGE_ROOT={settings.storage_root} cannot be opened on this host: {exc}",
             code=EXIT_USAGE)
    if root.is_local and not _is_this_host(address):
        err.print(f"[yellow]warning:[/yellow] STORAGE_ROOT is a folder on this host "
                  f"({settings.storage_root}) and the scheduler is elsewhere: the control "
                  "plane gives this worker no work unless it sees the very same folder (a "
                  "shared mount). Set STORAGE_ROOT=s3://… on every host to share storage.")
    settings.dask_dir.mkdir(parents=True, exist_ok=True)
    dask = str(Path(sys.executable).parent / "dask")
    command = [dask, "worker", address,
               "--nworkers", str(nworkers or max(settings.dask_workers, 1)),
               "--nthreads", str(settings.dask_threads_per_worker),
               "--memory-limit", settings.dask_memory_limit,
               "--local-directory", str(settings.dask_dir),
               "--name", name or socket.gethostname()]
    if host:
        command += ["--host", host]
    err.print(f"starting Dask workers for {address}: {' '.join(command[3:])}")
    raise typer.Exit(run_restarting(command))


def run_restarting(command: list[str]) -> int:
    """Run `command` until SIGTERM/SIGINT, starting it again whenever it exits on its own;
    1 when it keeps exiting fast (the policy gives up)."""
    stop = threading.Event()
    running: list[subprocess.Popen[bytes]] = []

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()
        for child in running:
            child.terminate()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    exits: list[float] = []
    while not stop.is_set():
        child = subprocess.Popen(dying_with_me(command),  # noqa: S603 (our own console script)
                                 env={**WORKER_ENV, **os.environ})
        running[:] = [child]
        code = child.wait()
        if stop.is_set():
            break
        now = time.time()
        exits.append(now)
        decided = decide_restart(exits, now)
        if isinstance(decided, GiveUp):
            err.print(f"[red]the Dask worker exited with {code} and is not started again:[/red] "
                      f"{decided.reason}")
            return 1
        err.print(f"[yellow]the Dask worker exited with {code}[/yellow] (its scheduler went "
                  f"away?); starting it again in {decided.delay_s:.0f} s")
        stop.wait(decided.delay_s)
    return 0


def _is_this_host(address: str) -> bool:
    host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    if host in ("localhost", socket.gethostname()):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
