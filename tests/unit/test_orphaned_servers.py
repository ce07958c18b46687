"""Temporary Prefect servers left by killed test runs are stopped (tools/prefect_harness.py):
real processes. The server stand-in is a sleeping Python process with the temporary server's
command line and environment mark (a real Prefect server takes seconds and a port to start and
would be stopped the same way); one whose parent is alive is left alone, and one whose owner
(named in its environment) is gone is stopped wherever it was adopted, a subreaper too."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from tools.prefect_harness import EPHEMERAL_MARK, OWNER_VAR, owner_mark, reap_orphaned_servers

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


# A process that makes itself a subreaper (prctl PR_SET_CHILD_SUBREAPER, 36), starts a starter
# that starts the stand-in, owned by the starter, and exits: the stand-in is adopted by the
# subreaper, not init. It prints the stand-in's pid, then waits to be killed.
SUBREAPER = """
import ctypes, subprocess, sys, time
assert ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
starter = subprocess.run([sys.executable, "-c", sys.argv[1], *sys.argv[2:]],
                         capture_output=True, text=True, check=True)
print(starter.stdout.strip(), flush=True)
while True:
    time.sleep(1)
"""
OWNED_STARTER = """
import os, subprocess, sys
import psutil
sys.path.insert(0, os.getcwd())
from tools.prefect_harness import OWNER_VAR, owner_mark
env = {**os.environ, OWNER_VAR: owner_mark(psutil.Process())}
p = subprocess.Popen(sys.argv[1:], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(p.pid)
"""


def test_a_server_adopted_by_a_subreaper_is_stopped_once_its_owner_is_gone() -> None:
    reaper = subprocess.Popen([sys.executable, "-c", SUBREAPER, OWNED_STARTER, *STAND_IN],
                              env={**os.environ, EPHEMERAL_MARK[0]: EPHEMERAL_MARK[1]},
                              stdout=subprocess.PIPE, text=True)
    owned = subprocess.Popen(STAND_IN, env={
        **os.environ, EPHEMERAL_MARK[0]: EPHEMERAL_MARK[1],
        OWNER_VAR: owner_mark(psutil.Process())})  # its owner, this process, lives
    adopted = 0
    try:
        assert reaper.stdout is not None
        adopted = int(reaper.stdout.readline().strip())
        deadline = time.monotonic() + 10
        while psutil.Process(adopted).ppid() != reaper.pid:
            assert time.monotonic() < deadline, "the stand-in was not adopted by the subreaper"
            time.sleep(0.05)
        assert reap_orphaned_servers(grace_s=5) >= 1
        deadline = time.monotonic() + 10
        while psutil.pid_exists(adopted) and psutil.Process(adopted).status() != "zombie":
            assert time.monotonic() < deadline, "the adopted stand-in was not stopped"
            time.sleep(0.05)
        assert owned.poll() is None
    finally:
        for process in (reaper, owned):
            process.kill()
            process.wait(10)
        if adopted and psutil.pid_exists(adopted):
            psutil.Process(adopted).kill()
