"""The supervisor with real processes: children die with it even when it is SIGKILLed, what
their own children leave is cleaned up at the next start, a crashed child is started again, and
the services report restarts in /health and /metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import build_core
from api.services import Service
from cli.supervisor import RUN_FILE, StartupFailed, Supervisor, clean_leftovers
from deployments.local import ProcessSpec
from lakehouse.config import Settings
from lakehouse.telemetry.processes import restarts_check, write_restarts

ROOT = Path(__file__).resolve().parents[2]
# A supervisor in a process of its own: starts a child that itself starts a grandchild in its
# process group (as Dask's nanny starts workers), then waits to be killed.
SUPERVISOR = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from cli.supervisor import Supervisor
    from deployments.local import ProcessSpec
    run_dir = Path(sys.argv[1])
    supervisor = Supervisor({}, run_dir / "logs", run_dir)
    supervisor.start(ProcessSpec("worker", ["/bin/sh", "-c", "sleep 300 & exec sleep 300"]))
    print("started", flush=True)
    time.sleep(300)
""")


def _gone(pids: list[int], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.1)
    return False


def _killed_supervisor(run_dir: Path) -> tuple[int, list[int]]:
    """Start the supervisor above, SIGKILL it once its child runs: (child pid, grandchildren)."""
    process = subprocess.Popen([sys.executable, "-c", SUPERVISOR, str(run_dir)], cwd=ROOT,
                               stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline().strip() == b"started"
    recorded = json.loads((run_dir / RUN_FILE).read_text())
    assert recorded["pid"] == process.pid
    child = recorded["children"]["worker"]["pid"]
    deadline = time.monotonic() + 10
    grandchildren: list[int] = []
    while not grandchildren and time.monotonic() < deadline:
        grandchildren = [p.pid for p in psutil.Process(child).children()]
        time.sleep(0.05)
    assert grandchildren
    with pytest.raises(StartupFailed, match="another `lakehouse up`"):
        clean_leftovers(run_dir)  # it still runs: a second one must not start
    process.kill()
    process.wait(10)
    return child, grandchildren


def test_children_die_with_a_killed_supervisor_and_leftovers_are_cleaned(tmp_path: Path) -> None:
    child, grandchildren = _killed_supervisor(tmp_path)
    assert _gone([child]), "the kernel kills the child when its supervisor dies"
    assert not _gone(grandchildren, 1), "…but not what the child started itself"
    assert clean_leftovers(tmp_path) == ["worker"]
    assert _gone(grandchildren)
    assert not (tmp_path / RUN_FILE).exists()
    assert clean_leftovers(tmp_path) == []  # nothing the second time


def test_a_restarted_child_takes_the_place_of_the_one_that_exited(tmp_path: Path) -> None:
    supervisor = Supervisor({}, tmp_path / "logs", tmp_path)
    first = supervisor.start(ProcessSpec("quick", ["/bin/sh", "-c", "exit 3"]))
    other = supervisor.start(ProcessSpec("steady", ["sleep", "300"]))
    first.process.wait(10)
    assert supervisor.exited() == [first]
    second = supervisor.restart(first)
    assert supervisor.children == [second, other] and second.process.pid != first.process.pid
    recorded = json.loads((tmp_path / RUN_FILE).read_text())["children"]
    assert recorded["steady"]["pid"] == other.process.pid
    supervisor.stop_all(5)
    assert not (tmp_path / RUN_FILE).exists()


def test_restarts_show_in_health_and_metrics(tmp_path: Path) -> None:
    settings = Settings.for_tests(tmp_path)
    core = build_core(settings)
    try:
        with TestClient(create_app(Service.MONITORING, core)) as monitoring:
            assert "processes" not in monitoring.get("/health").json()["checks"]  # unsupervised
            write_restarts(settings.run_dir, {"control-plane": {
                "restarts": 2, "last_at": time.time(), "last_exit": -9}})
            health = monitoring.get("/health").json()
            assert health["status"] == "degraded", health
            assert health["checks"]["processes"]["restarts"] == {"control-plane": 2}
            metrics = monitoring.get("/metrics").text
            assert 'lakehouse_process_restarts_total{process="control-plane"} 2.0' in metrics
    finally:
        core.close()
    later = restarts_check(settings.run_dir, now=time.time() + 3600)
    assert later is not None and later.ok  # an old restart no longer degrades health
