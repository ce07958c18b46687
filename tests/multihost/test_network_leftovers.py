"""What a killed run of the multi-host tests left (namespaces, a bridge) is removed by the next
run that brings a network up, and a live run's is left alone (tests/multihost/network.py). Real
namespaces and links; a "killed run" is a record naming a process that has exited."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil

from tests.multihost.network import OWNERS, Network


def _namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            check=False).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True,
                          check=False).returncode == 0


def test_a_gone_run_s_hosts_are_removed_and_a_live_run_s_kept(tmp_path: Path) -> None:
    gone, live, next_run = (Network(tag, subnet, tmp_path, ["x"]) for tag, subnet in
                            (("9q01", 241), ("9q02", 242), ("9q03", 243)))
    try:
        gone.up()
        live.up()
        # The first run is killed: its record now names a process that has exited.
        ended = subprocess.Popen([sys.executable, "-c", "pass"])
        started = psutil.Process(ended.pid).create_time()
        ended.wait(30)
        (OWNERS / "9q01.owner").write_text(f"{ended.pid} {started}")
        gone.hosts.clear()  # as a killed run would: nothing of it is left to call down()

        next_run.up()

        assert "lh9q01-x" not in _namespaces() and not _link_exists(gone.bridge)
        assert not (OWNERS / "9q01.owner").exists()
        assert "lh9q02-x" in _namespaces() and _link_exists(live.bridge)
        assert "lh9q03-x" in _namespaces()
    finally:
        for network in (next_run, live, gone):
            network.down()
    assert not {"lh9q01-x", "lh9q02-x", "lh9q03-x"} & _namespaces()
