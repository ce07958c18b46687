"""Workers that do not see the storage root get no work (lakehouse/worker_storage.py).

The "other host" is a real `dask worker` process in a private mount namespace with an empty
tmpfs over the warehouse folder: it sees a folder of the same name that is not the control
plane's, just as a worker on another machine would with `file://` storage. Needs root
(unshare), as the suite has in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import LocalCluster, get_worker
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.cluster import Cluster, dask_client, forget, usable_workers, worker_verdicts
from lakehouse.config import Settings
from lakehouse.storage.location import StorageRoot
from lakehouse.storage.probe import PROBE_DIR
from tests.conftest import PASSWORD, stop_process

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="a private mount namespace needs root and unshare")


def write_marker(root_uri: str, name: str, pause_s: float = 0.0) -> str:
    """A job: write a small file under the root; the worker that did it."""
    time.sleep(pause_s)  # long enough that the scheduler spreads such jobs over the workers
    root = StorageRoot.parse(root_uri)
    root.fs.create_dir(root.full("jobs"), recursive=True)
    with root.fs.open_output_stream(root.full(f"jobs/{name}")) as out:
        out.write(name.encode())
    return str(get_worker().address)


@pytest.fixture
def two_views(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A scheduler with one worker here and one with a private warehouse: (scheduler address,
    storage root URI, the address of the worker here)."""
    warehouse = tmp_path / "warehouse"
    warehouse.mkdir()
    dask = Path(sys.executable).parent / "dask"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as local:
        [here] = local.scheduler.workers
        script = (f"mount -t tmpfs tmpfs {warehouse} && exec {dask} worker "
                  f"{local.scheduler_address} --nthreads 1 --no-nanny --no-dashboard "
                  f"--name elsewhere")
        other = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                  script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 # The jobs are this module's functions: let it import them.
                                 env={**os.environ, "PYTHONPATH": str(REPO)})
        try:
            deadline = time.monotonic() + 60
            while len(local.scheduler.workers) < 2:
                assert other.poll() is None, "the worker with a private warehouse exited"
                assert time.monotonic() < deadline, "the second worker never joined"
                time.sleep(0.2)
            yield local.scheduler_address, warehouse.as_uri(), here
        finally:
            forget(local.scheduler_address)
            stop_process(other, 10)


def test_a_worker_with_its_own_disk_is_excluded_and_gets_no_job(
        two_views: tuple[str, str, str], tmp_path: Path) -> None:
    address, root_uri, here = two_views
    client = dask_client(address, root_uri)
    assert usable_workers(client) == (here,)
    verdicts = worker_verdicts(address)
    [elsewhere] = [v for w, v in verdicts.items() if w != here]
    assert not elsewhere.usable and "storage root of its own" in elsewhere.reason
    assert verdicts[here].usable

    names = [f"job-{n}" for n in range(8)]
    ran_on = Cluster(address, root_uri).run_all(write_marker, [(root_uri, n) for n in names],
                                                name="flush")
    assert set(ran_on) == {here}  # every job on the worker that sees the root
    assert sorted(p.name for p in (tmp_path / "warehouse" / "jobs").iterdir()) == names
    # The probes tidied up after themselves.
    assert not list((tmp_path / "warehouse" / PROBE_DIR).glob("*"))


def test_without_a_root_to_check_any_worker_may_run_a_job(
        two_views: tuple[str, str, str], tmp_path: Path) -> None:
    """The check is what keeps the jobs off the other worker: with it off, they reach it and
    their files are lost to the control plane (so the test above can fail)."""
    address, root_uri, here = two_views
    names = [f"x-{n}" for n in range(16)]
    ran_on = Cluster(address).run_all(write_marker, [(root_uri, n, 0.2) for n in names],
                                      name="flush")
    assert len(set(ran_on)) == 2
    written = {p.name for p in (tmp_path / "warehouse" / "jobs").iterdir()}
    assert written == {n for n, worker in zip(names, ran_on, strict=True) if worker == here}


def test_nodes_status_and_health_show_the_excluded_worker(
        two_views: tuple[str, str, str], tmp_path: Path) -> None:
    address, root_uri, here = two_views
    settings = Settings.for_tests(tmp_path / "state", dask_scheduler_address=address,
                                  storage_root=root_uri)
    core = build_core(settings)
    try:
        core.auth.create_user("reader", PASSWORD, "acme", Role.READER)
        core.auth.create_user("root", PASSWORD, "ops", Role.ADMIN)
        with TestClient(create_app(Service.OPERATION, core),
                        raise_server_exceptions=False) as client:
            def as_user(name: str) -> dict[str, str]:
                token = core.auth.login(name, PASSWORD).access_token
                return {"Authorization": f"Bearer {token}"}

            body = client.get("/nodes/status", headers=as_user("root")).json()
            tenant_view = client.get("/nodes/status", headers=as_user("reader")).json()
            health = client.get("/health").json()
    finally:
        core.close()
    # A tenant sees that a worker is excluded, not why (the reason may name the storage).
    assert [w["storage"] for w in tenant_view["workers"]] == [w["storage"] for w in
                                                              body["workers"]]
    assert all("reason" not in w for w in tenant_view["workers"])
    storage = {w["address"]: w["storage"] for w in body["workers"]}
    assert storage[here] == "verified"
    [excluded] = [w for w in body["workers"] if w["address"] != here]
    assert excluded["storage"] == "excluded" and excluded["name"] == "elsewhere"
    assert "storage root of its own" in excluded["reason"]
    assert body["scheduler"]["workers"] == 2 and body["scheduler"]["workers_usable"] == 1
    assert health["status"] == "degraded"
    dask_check = health["checks"]["dask"]
    assert dask_check["ok"] is False and dask_check["workers_verified"] == 1
    assert dask_check["workers_excluded"] == 1  # how many: health answers anyone


def test_up_refuses_a_local_root_that_remote_workers_do_not_see(
        two_views: tuple[str, str, str], tmp_path: Path) -> None:
    from cli.up import storage_refusal

    address, root_uri, _ = two_views
    shared = Settings.for_tests(tmp_path / "state", distributed_mode=True,
                                dask_scheduler_address=address, storage_root=root_uri)
    refusal = storage_refusal(shared)
    assert refusal is not None and "Set STORAGE_ROOT to shared storage" in refusal
    assert "elsewhere" not in refusal and "tcp://" in refusal  # names the workers
    # With a cluster of its own (not DISTRIBUTED_MODE) its workers are local: no question.
    assert storage_refusal(Settings.for_tests(tmp_path / "own", storage_root=root_uri)) is None
