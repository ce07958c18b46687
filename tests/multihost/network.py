"""Simulated hosts for the multi-host tests: Linux network namespaces on a bridge.

Each host is a network namespace with its own address on a bridge made for the test run (the
test process reaches every host through the bridge's own address). Processes of a host are
started in its namespace; a host may also hide folders of the others under an empty tmpfs in
a mount namespace of its own, so it cannot see another host's disk even by accident. Killing a
host kills every process in its namespace (SIGKILL), as a power cut of that machine would.

Everything made here is removed by `Network.down`, which also removes what an earlier, killed
run of the same tag left behind. A run killed outright (SIGKILL, a lost CI job) cannot remove
its own; each run records itself in OWNERS (its process and that process's start time), and the
next run to bring a network up removes the namespaces and bridge of every recorded run whose
process is gone.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

OWNERS = Path("/run/lakehouse-test-hosts")  # <tag>.owner: "<pid> <start time>" of a live run


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True,
                          timeout=30)


@dataclass
class Host:
    name: str
    netns: str
    address: str
    folder: Path  # its own data folder; the other hosts are never told about it
    hidden: tuple[Path, ...] = ()  # other hosts' folders, covered by an empty tmpfs here
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` as run on this host."""
        inside = ["ip", "netns", "exec", self.netns]
        if not self.hidden:
            return [*inside, *argv]
        mounts = " && ".join(f"mount -t tmpfs tmpfs {shlex.quote(str(p))}"
                             for p in self.hidden)
        return [*inside, "unshare", "--mount", "--propagation", "private", "sh", "-c",
                f'{mounts} && exec "$@"', "sh", *argv]

    def start(self, label: str, argv: Sequence[str], env: Mapping[str, str],
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """A process on this host, its output in `{folder}/{label}.log`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / f"{label}.log").open("ab") as log:
            process = subprocess.Popen(self.command(argv), env=dict(env), stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=cwd or self.folder)
        self.processes.append(process)
        return process

    def run(self, argv: Sequence[str], env: Mapping[str, str], stdin: str = "",
            timeout_s: float = 120, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.command(argv), env=dict(env), capture_output=True,
                              text=True, timeout=timeout_s, input=stdin, check=False,
                              cwd=self.folder)
        if check:
            assert done.returncode == 0, (argv, done.stdout[-3000:], done.stderr[-3000:])
        return done

    def pids(self) -> list[int]:
        found = _ip("netns", "pids", self.netns, check=False).stdout.split()
        return [int(pid) for pid in found if pid.isdigit()]

    def kill(self) -> int:
        """SIGKILL every process of the host; how many there were."""
        killed = 0
        for _ in range(5):  # a process may fork while we kill: look again
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(10)
        self.processes.clear()
        return killed

    def log(self, label: str) -> str:
        path = self.folder / f"{label}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""


@dataclass
class Network:
    """Hosts `names` on one bridge: 10.231.{subnet}.{1…} and the test process at .254."""

    tag: str  # a few characters naming this run's links and namespaces
    subnet: int
    root: Path
    names: Sequence[str]
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"lhb{self.tag}"

    @property
    def gateway(self) -> str:
        return f"10.231.{self.subnet}.254"

    def up(self, hide: Mapping[str, Sequence[str]] | None = None) -> dict[str, Host]:
        """Make the hosts; `hide[host]` names the hosts whose folders it must not see."""
        self.down()
        self.remove_gone_runs()
        OWNERS.mkdir(parents=True, exist_ok=True)
        me = psutil.Process()
        (OWNERS / f"{self.tag}.owner").write_text(f"{me.pid} {me.create_time()}")
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        hide = dict(hide or {})
        for index, name in enumerate(self.names, start=1):
            netns, veth = f"lh{self.tag}-{name}", f"lh{self.tag}{name}"[:15]
            _ip("netns", "add", netns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
            _ip("link", "set", veth, "master", self.bridge, "up")
            address = f"10.231.{self.subnet}.{index}"
            _ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
            _ip("-n", netns, "link", "set", "lo", "up")
            folder = self.root / name
            folder.mkdir(parents=True, exist_ok=True)
            self.hosts[name] = Host(name, netns, address, folder)
        for name, others in hide.items():
            self.hosts[name].hidden = tuple(self.hosts[o].folder for o in others)
        return self.hosts

    def down(self) -> None:
        """Kill every process of every host, remove the namespaces and the bridge (also those
        an earlier, killed run of this tag left)."""
        for host in self.hosts.values():
            host.kill()
        listed = _ip("netns", "list", check=False).stdout.split("\n")
        ours = [line.split()[0] for line in listed if line.startswith(f"lh{self.tag}-")]
        for netns in ours:
            Host("", netns, "", self.root).kill()
            _ip("netns", "del", netns, check=False)
        _ip("link", "del", self.bridge, check=False)
        self.hosts.clear()
        (OWNERS / f"{self.tag}.owner").unlink(missing_ok=True)

    def remove_gone_runs(self) -> None:
        """Remove what recorded runs whose process is gone left behind."""
        for owner in sorted(OWNERS.glob("*.owner")) if OWNERS.is_dir() else []:
            if owner.stem != self.tag and not _alive(owner):
                Network(owner.stem, 0, self.root, ()).down()  # also forgets the record


def _alive(owner: Path) -> bool:
    """Whether the run `owner` records is still running (the same process, not a later one
    given its number)."""
    try:
        pid, started = owner.read_text().split()
        return psutil.Process(int(pid)).create_time() == float(started)
    except (OSError, ValueError, psutil.Error):
        return False
