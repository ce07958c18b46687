"""Start child processes in their own process groups, wait until they serve, restart one that
crashed, stop them all.

Each child gets a session of its own, so Ctrl-C in the terminal reaches only us and we decide the
order of shutdown; stopping a child kills its whole group (Dask's worker processes, Prefect's
flow-run subprocesses), and anything still alive after the grace period is killed.

Children die with the supervisor even when it is killed outright (SIGKILL, the OOM killer): the
kernel sends each one SIGKILL when its parent goes (PR_SET_PDEATHSIG; children are started from
the main thread, whose exit is what the kernel watches). A small launcher sets it and then execs
the command (the setting survives exec): setting it between fork and exec (`preexec_fn`) is not
safe in a process with threads, where a child can die or hang before it execs. What their own
children leave behind, and anything of a supervisor killed before that existed, is found at the
next start in RUN_DIR's `supervisor.json` (each child's pid and start time) and killed by
process group.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import psutil

from deployments.local import ProcessSpec

log = logging.getLogger(__name__)

RUN_FILE = "supervisor.json"
_PR_SET_PDEATHSIG = 1


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


# Sets the parent-death signal, leaves if the supervisor is already gone, then becomes the
# command. Run by a fresh interpreter: no threads, so nothing can be held at the fork.
_LAUNCHER = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl("
    f"{_PR_SET_PDEATHSIG}, {int(signal.SIGKILL)}, 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n")


def dying_with_me(argv: list[str]) -> list[str]:
    """`argv`, started so that the kernel kills it when this process dies."""
    return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *argv]


class Supervisor:
    def __init__(self, env: dict[str, str], log_dir: Path, run_dir: Path | None = None) -> None:
        self.env = env
        self.log_dir = log_dir
        self.run_dir = run_dir
        self.children: list[Child] = []
        self._known_pids: set[int] = set()

    def start(self, spec: ProcessSpec) -> Child:
        child = self._spawn(spec)
        self.children.append(child)
        self._record()
        return child

    def restart(self, old: Child) -> Child:
        """Start the spec of a child that exited again, in its place (the order of stopping
        stays the order of starting)."""
        old.log_file.close()
        child = self._spawn(old.spec)
        self.children[self.children.index(old)] = child
        self._record()
        return child

    def _spawn(self, spec: ProcessSpec) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        log_file = log_path.open("ab")
        process = subprocess.Popen(
            dying_with_me(spec.argv), cwd=spec.cwd, env={**self.env, **spec.extra_env},
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.debug("started", extra={"child": spec.name, "pid": process.pid})
        return Child(spec, process, log_path, log_file)

    def _record(self) -> None:
        """Who the children are, for the next start to clean up after a killed supervisor."""
        if self.run_dir is None:
            return
        me = psutil.Process()
        children = {}
        for child in self.children:
            with contextlib.suppress(psutil.Error):
                children[child.spec.name] = {
                    "pid": child.process.pid,
                    "create_time": psutil.Process(child.process.pid).create_time()}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        partial = self.run_dir / f".{RUN_FILE}"
        partial.write_text(json.dumps({"pid": me.pid, "create_time": me.create_time(),
                                       "children": children}))
        partial.replace(self.run_dir / RUN_FILE)

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
        if self.run_dir is not None:
            (self.run_dir / RUN_FILE).unlink(missing_ok=True)
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


def clean_leftovers(run_dir: Path) -> list[str]:
    """Kill what an earlier `lakehouse up` on this DATA_DIR left running (it was killed before
    it could stop its children); the names of the children cleaned up. StartupFailed if that
    supervisor still runs: two of them on one DATA_DIR would fight over ports and the log."""
    path = run_dir / RUN_FILE
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    if _same_process(earlier.get("pid"), earlier.get("create_time")):
        raise StartupFailed(f"another `lakehouse up` (pid {earlier['pid']}) runs on this "
                            "DATA_DIR; stop it first (Ctrl-C in its terminal, or kill -INT it)")
    cleaned = []
    for name, child in sorted((earlier.get("children") or {}).items()):
        group = _group_of(child.get("pid"), child.get("create_time"))
        if group:
            for proc in group:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs(group, timeout=5)
            cleaned.append(name)
    path.unlink(missing_ok=True)
    return cleaned


def _same_process(pid: object, create_time: object) -> bool:
    if not isinstance(pid, int) or not isinstance(create_time, int | float):
        return False
    try:
        return bool(abs(psutil.Process(pid).create_time() - create_time) < 1.0)
    except psutil.Error:
        return False


def _group_of(pid: object, create_time: object) -> list[psutil.Process]:
    """The processes still in a recorded child's process group (it led its own session) that
    started after it: its leftovers, not an unrelated process that reused a number."""
    if not isinstance(pid, int) or not isinstance(create_time, int | float):
        return []
    found = []
    for proc in psutil.process_iter(["pid", "create_time"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == pid and proc.info["create_time"] >= create_time - 1.0:
                found.append(proc)
    return found


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
