"""prefect.yaml from any host: deployments applied from a worker host (its own folder, which
the control plane never sees) and run by a Prefect worker there."""

from __future__ import annotations

import time

import httpx

from deployments.local import prefect_file
from lakehouse.config import Settings
from tests.multihost.platform import BIN, Platform


def test_deployments_applied_and_run_from_a_worker_host(platform: Platform) -> None:
    host = platform.hosts["w1"]
    env = {**platform.env, "DATA_DIR": str(host.folder / "data"), "PREFECT_WORK_POOL": "remote"}
    env.pop("BIND_HOST")
    prefect = str(BIN / "prefect")
    host.run([prefect, "work-pool", "create", "remote", "--type", "process", "--overwrite"],
             env)
    # The deployments move to the pool only this host's worker serves: prefect.yaml with this
    # host's settings, written in this host's folder (as `lakehouse up` writes it).
    spec = prefect_file(Settings.for_tests(host.folder / "data", prefect_work_pool="remote"))
    host.run([prefect, "deploy", "--all", "--no-prompt", "--prefect-file", str(spec)], env,
             timeout_s=300)
    host.start("prefect-worker", [prefect, "worker", "start", "--pool", "remote", "--type",
                                  "process", "--name", "worker-host"], env)
    api = platform.env["PREFECT_API_URL"]
    deployment = httpx.get(f"{api}/deployments/name/compaction/compaction", timeout=30).json()
    assert deployment["work_pool_name"] == "remote" and deployment["pull_steps"] == []
    run = httpx.post(f"{api}/deployments/{deployment['id']}/create_flow_run", json={},
                     timeout=30).json()
    deadline = time.monotonic() + 240
    state = run["state_type"]
    while time.monotonic() < deadline and state not in ("COMPLETED", "FAILED", "CRASHED"):
        time.sleep(2)
        found = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=30).json()
        state = found["state_type"]
    assert state == "COMPLETED", (state, host.log("prefect-worker")[-4000:])
    assert "worker-host" in host.log("prefect-worker")
    assert str(platform.cp.folder) not in str(deployment), deployment
