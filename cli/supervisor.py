"""Start child processes in their own process groups, wait until they serve, stop them all.

Each child gets a session of its own, so Ctrl-C in the terminal reaches only us and we decide the
order of shutdown; stopping a child kills its whole group (Dask's worker processes, Prefect's
flow-run subprocesses), and anything still alive after the grace period is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import psutil

from deployments.local import ProcessSpec

log = logging.getLogger(__name__)


class StartupFailed(RuntimeError):
    pass


@dataclass
class Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class Supervisor:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.children: list[Child] = []
        self._known_pids: set[int] = set()

    def start(self, spec: ProcessSpec) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        log_file = log_path.open("ab")
        process = subprocess.Popen(
            spec.argv, cwd=spec.cwd, env={**self.env, **spec.extra_env},
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Child(spec, process, log_path, log_file)
        self.children.append(child)
        log.debug("started", extra={"child": spec.name, "pid": process.pid})
        return child

    def run_once(self, name: str, argv: list[str], cwd: Path, timeout_s: float) -> None:
        """Run a command to completion (e.g. `prefect deploy`); StartupFailed if it fails."""
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as out:
            try:
                result = subprocess.run(argv, cwd=cwd, env=self.env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT,
                                        timeout=timeout_s, check=False)
            except subprocess.TimeoutExpired as exc:
                raise StartupFailed(f"{name} did not finish in {timeout_s:.0f}s; "
                                    f"see {log_path}") from exc
        if result.returncode != 0:
            raise StartupFailed(f"{name} failed (exit {result.returncode}); see {log_path}")

    def wait_ready(self, child: Child, timeout_s: float,
                   interrupted: threading.Event | None = None) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if interrupted is not None and interrupted.is_set():
                raise StartupFailed("interrupted while starting")
            if not child.alive:
                raise StartupFailed(f"{child.spec.name} exited with {child.process.returncode} "
                                    f"while starting; see {child.log_path}")
            if self._is_ready(child.spec):
                return
            time.sleep(0.25)
        raise StartupFailed(f"{child.spec.name} was not ready after {timeout_s:.0f}s; "
                            f"see {child.log_path}")

    @staticmethod
    def _is_ready(spec: ProcessSpec) -> bool:
        if spec.ready_url is not None:
            try:
                return httpx.get(spec.ready_url, timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False
        if spec.ready_port is not None:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", spec.ready_port), timeout=1.0):
                return True
            return False
        return True

    def exited(self) -> list[Child]:
        return [c for c in self.children if not c.alive]

    def _remember_descendants(self) -> None:
        for child in self.children:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(child.process.pid)
                self._known_pids.add(proc.pid)
                self._known_pids.update(p.pid for p in proc.children(recursive=True))

    def stop_all(self, timeout_s: float) -> list[str]:
        """Stop children newest first, one after the other (the control plane's last flush
        still finds Dask and Prefect up); return the names of any that had to be killed."""
        self._remember_descendants()
        deadline = time.monotonic() + timeout_s
        killed: list[str] = []
        for child in reversed(self.children):
            _signal_group(child.process.pid, signal.SIGTERM)
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                killed.append(child.spec.name)
                _signal_group(child.process.pid, signal.SIGKILL)
                child.process.wait(timeout=5)
            # Stragglers of the group (e.g. a flow-run subprocess) go with their leader.
            _signal_group(child.process.pid, signal.SIGKILL)
            child.log_file.close()
        self._kill_survivors()
        return killed

    def _kill_survivors(self) -> None:
        survivors = []
        for pid in self._known_pids:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    survivors.append(proc)
        for proc in survivors:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(survivors, timeout=3)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
