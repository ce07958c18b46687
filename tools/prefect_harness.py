"""Prefect's test harness, with its last step bounded, and the temporary servers of killed test
runs cleaned up.

On leaving, `prefect_test_harness` drains every events worker of the process with no time
limit. A worker left from an earlier harness in the same process (a pytest worker runs several
modules' servers in turn) may never finish: its server is gone. That hung a test run's teardown
for 300 s. Here the drain waits at most DRAIN_S; what it did not send was about a temporary
server that is going away anyway.

The harness's server is a child process, stopped when the harness ends or at the test
process's exit. A test process that is killed (a run stopped at its first failure, Ctrl-C twice,
a worker lost) leaves it running, holding its port, memory and a SQLite database, and the next
runs found several; a whole, passing run left one too (an xdist worker that exited without
stopping its own). `reap_orphaned_servers` stops those whose test process is gone, wherever they
were adopted (each server's environment names its owner): before and after every run
(tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import psutil
from prefect.events.worker import EventsWorker
from prefect.testing.utilities import prefect_test_harness

DRAIN_S = 30.0
# What Prefect's temporary server (prefect.server.api.server.SubprocessASGIServer) is started
# with, and what `lakehouse up`'s Prefect server is not.
EPHEMERAL_MARK = ("PREFECT__SERVER_EPHEMERAL", "1")
# Set while a harness starts its server, so the server's environment names the test process
# that owns it ("<pid>:<start time>"): gone, the server is orphaned whoever adopted it.
OWNER_VAR = "LAKEHOUSE_PREFECT_SERVER_OWNER"


@contextlib.contextmanager
def bounded_prefect_harness(server_startup_timeout: int = 120) -> Iterator[None]:
    bounded = functools.partial(EventsWorker.drain_all, timeout=DRAIN_S)
    with contextlib.ExitStack() as stack:
        # Undone last on the way out, after the harness' own drain met the bounded one.
        # Harnesses nest (a session's around a module's): each puts back what it found.
        stack.callback(_put_back, EventsWorker.__dict__.get("drain_all"))
        EventsWorker.drain_all = bounded  # type: ignore[method-assign]
        with _owned_by_this_process():
            stack.enter_context(prefect_test_harness(
                server_startup_timeout=server_startup_timeout))
        yield


@contextlib.contextmanager
def _owned_by_this_process() -> Iterator[None]:
    before = os.environ.get(OWNER_VAR)
    os.environ[OWNER_VAR] = owner_mark(psutil.Process())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(OWNER_VAR, None)
        else:
            os.environ[OWNER_VAR] = before


def owner_mark(process: psutil.Process) -> str:
    return f"{process.pid}:{process.create_time()!r}"


def _owner_gone(mark: str) -> bool:
    pid, _, started = mark.partition(":")
    try:
        owner = psutil.Process(int(pid))
        # Another process given the same pid later is not the owner.
        return bool(owner.status() == psutil.STATUS_ZOMBIE
                    or abs(owner.create_time() - float(started)) > 0.01)
    except (ValueError, psutil.NoSuchProcess):
        return True


def _put_back(found: object) -> None:
    if found is None:  # drain_all was only inherited
        with contextlib.suppress(AttributeError):
            delattr(EventsWorker, "drain_all")
    else:
        EventsWorker.drain_all = found  # type: ignore[method-assign,assignment]


def reap_orphaned_servers(grace_s: float = 10.0) -> int:
    """Stop Prefect temporary servers of this user whose test process has gone (it died
    without stopping its own): the owner its environment names is gone, or, for one without
    that mark, init adopted it. Returns how many."""
    me = psutil.Process()
    found: list[psutil.Process] = []
    for process in psutil.process_iter(["ppid", "uids", "cmdline"]):
        try:
            info = process.info
            parent = process.parent()
            if (info["uids"] is None or info["uids"].real != me.uids().real
                    or "prefect.server.api.server:create_app" not in (info["cmdline"] or [])
                    or process.environ().get(EPHEMERAL_MARK[0]) != EPHEMERAL_MARK[1]):
                continue
            owner = process.environ().get(OWNER_VAR)
            if owner is not None:  # whoever adopted it: a subreaper, a service manager, init
                if _owner_gone(owner):
                    found.append(process)
            elif parent is None or parent.pid == 1:
                found.append(process)
        except psutil.Error:
            continue
    for process in found:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(found, timeout=grace_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return len(found)
