"""Temporary Prefect servers left by killed test runs are stopped (tools/prefect_harness.py):
real processes. The server stand-in is a sleeping Python process with the temporary server's
command line and environment mark (a real Prefect server takes seconds and a port to start and
would be stopped the same way); one whose parent is alive is left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from tools.prefect_harness import EPHEMERAL_MARK, reap_orphaned_servers

# The module path rides along as an argument, so the command line reads like the server's.
STAND_IN = [sys.executable, "-c", "import time; time.sleep(120)", "--factory",
            "prefect.server.api.server:create_app"]


def _orphan() -> int:
    """A stand-in whose parent exits at once, so init adopts it; its pid."""
    starter = subprocess.run(
        [sys.executable, "-c", "import subprocess, sys; p = subprocess.Popen(sys.argv[1:], "
         "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, "
         "start_new_session=True); print(p.pid)", *STAND_IN],
        env={**os.environ, EPHEMERAL_MARK[0]: EPHEMERAL_MARK[1]}, capture_output=True,
        text=True, check=True, timeout=30)
    pid = int(starter.stdout.strip())
    deadline = time.monotonic() + 10
    while psutil.Process(pid).ppid() != 1:  # adopted once its starter has been reaped
        assert time.monotonic() < deadline, "the stand-in was not adopted by init"
        time.sleep(0.05)
    return pid


def test_an_orphaned_temporary_server_is_stopped_and_a_parented_one_left() -> None:
    if os.getpid() == 1:  # nothing is ever orphaned from init's own children
        return
    orphan = _orphan()
    parented = subprocess.Popen(STAND_IN, env={**os.environ,
                                               EPHEMERAL_MARK[0]: EPHEMERAL_MARK[1]})
    unmarked = subprocess.Popen(STAND_IN)  # not a temporary server: no mark
    try:
        assert reap_orphaned_servers(grace_s=5) >= 1
        assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == "zombie"
        assert parented.poll() is None and unmarked.poll() is None
    finally:
        for process in (parented, unmarked):
            process.kill()
            process.wait(10)
        if psutil.pid_exists(orphan):
            psutil.Process(orphan).kill()
