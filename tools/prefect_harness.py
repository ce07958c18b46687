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
stopping its own). `reap_orphaned_servers` stops those whose test process is gone: before and
after every run (tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import psutil
from prefect.events.worker import EventsWorker
from prefect.testing.utilities import prefect_test_harness

DRAIN_S = 30.0
# What Prefect's temporary server (prefect.server.api.server.SubprocessASGIServer) is started
# with, and what `lakehouse up`'s Prefect server is not.
EPHEMERAL_MARK = ("PREFECT__SERVER_EPHEMERAL", "1")


@contextlib.contextmanager
def bounded_prefect_harness(server_startup_timeout: int = 120) -> Iterator[None]:
    bounded = functools.partial(EventsWorker.drain_all, timeout=DRAIN_S)
    with contextlib.ExitStack() as stack:
        # Undone last on the way out, after the harness' own drain met the bounded one.
        # Harnesses nest (a session's around a module's): each puts back what it found.
        stack.callback(_put_back, EventsWorker.__dict__.get("drain_all"))
        EventsWorker.drain_all = bounded  # type: ignore[method-assign]
        stack.enter_context(prefect_test_harness(server_startup_timeout=server_startup_timeout))
        yield


def _put_back(found: object) -> None:
    if found is None:  # drain_all was only inherited
        with contextlib.suppress(AttributeError):
            delattr(EventsWorker, "drain_all")
    else:
        EventsWorker.drain_all = found  # type: ignore[method-assign,assignment]


def reap_orphaned_servers(grace_s: float = 10.0) -> int:
    """Stop Prefect temporary servers of this user whose parent has gone (adopted by init): a
    test process that died without stopping its own. Returns how many."""
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
            # Orphaned: its test process is gone and init adopted it. (One adopted by a
            # subreaper, a service manager's, is left: its parent cannot be told from a test
            # process by name alone.)
            if parent is None or parent.pid == 1:
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
