"""`lakehouse up` for real: Prefect server and worker, Dask scheduler and workers, seven services.

Nothing is mocked. The system runs on free ports under a temporary DATA_DIR so it never meets a
running instance, is checked through its public endpoints, then stopped with SIGINT as Ctrl-C would.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from api.services import SPECS

pytestmark = pytest.mark.slow

PORT_SETTINGS = ["AUTH_PORT", "TENANT_PORT", "OPERATION_PORT", "CBO_PORT", "CATALOG_PORT",
                 "MONITORING_PORT", "INTERPRETER_PORT", "PREFECT_PORT", "DASK_SCHEDULER_PORT",
                 "DASK_DASHBOARD_PORT"]
START_TIMEOUT_S = 240


def _free_ports(count: int) -> list[int]:
    """Free ports below Linux's ephemeral range (32768-60999): the Dask workers and clients the
    system starts bind port 0, and the kernel may hand them a port just released here."""
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < count:
        port = rng.randrange(20000, 32000)
        if port in ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports


# The system under test shares the 2 cores with the other pytest worker's tests, and Prefect's
# server starts every deployment's run at once on the minute: a request can wait longer than
# httpx's default 5 s without anything being wrong.
HTTP_TIMEOUT_S = 30


def _get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, timeout=HTTP_TIMEOUT_S, **kwargs)


def _post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, timeout=HTTP_TIMEOUT_S, **kwargs)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("up")
    ports = dict(zip(PORT_SETTINGS, _free_ports(len(PORT_SETTINGS)), strict=True))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "DASK_")) and k not in ("CATALOG_URL", "DATA_DIR")}
    env.update({name: str(port) for name, port in ports.items()})
    # The test profile's short schedule: every maintenance deployment runs each minute, so a
    # scheduled run fires and completes while the test watches.
    env.update({"DATA_DIR": str(data_dir), "ENVIRONMENT": "development", "DASK_WORKERS": "2",
                "LOG_LEVEL": "INFO", "MAINTENANCE_INTERVAL_S": "60"})
    info: dict[str, Any] = {"ports": ports, "data_dir": data_dir}

    def start(name: str) -> subprocess.Popen[bytes]:
        out_path = data_dir / f"{name}.out"
        with out_path.open("wb") as out:
            proc = subprocess.Popen([str(Path(sys.executable).parent / "lakehouse"), "up"],
                                    env=env, stdout=out, stderr=subprocess.STDOUT, cwd=data_dir)
        info.update(proc=proc, out=out_path)
        return proc

    info["start"] = start
    start("first")
    try:
        yield info
    finally:
        proc = info["proc"]
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def _health(port: int, *, any_status: bool = False) -> dict[str, Any] | None:
    """The service's /health answer (None unless 200, or, with `any_status`, any answer)."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    except httpx.HTTPError:
        return None
    body: dict[str, Any] = response.json()
    return body if response.status_code == 200 or any_status else None


def _wait_until_healthy(system: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + START_TIMEOUT_S
    services = {spec.title: system["ports"][f"{spec.service.value.upper()}_PORT"]
                for spec in SPECS.values()}
    answers: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if system["proc"].poll() is not None:
            pytest.fail("lakehouse up exited early:\n" + system["out"].read_text()[-4000:])
        answers = {title: _health(port) for title, port in services.items()}
        banner = "Storage Control Plane is up" in system["out"].read_text()
        if banner and all(a is not None and a["status"] == "healthy" for a in answers.values()):
            return answers
        time.sleep(1)
    pytest.fail(f"not healthy after {START_TIMEOUT_S}s: {answers}\n"
                + system["out"].read_text()[-4000:])


def test_whole_system_up_then_clean_shutdown(system: dict[str, Any]) -> None:
    answers = _wait_until_healthy(system)
    ports = system["ports"]

    for title, body in answers.items():
        assert body["service"] == title
        assert body["version"]
        assert "T" in body["time"]
        assert body["checks"]["catalog"]["ok"] and body["checks"]["prefect"]["ok"]
    operation = answers["Operation Node"]["checks"]["dask"]
    assert operation["ok"] and operation["workers"] == 2

    # The seed's login example, verbatim.
    login = _post(f"http://localhost:{ports['AUTH_PORT']}/auth/login",
                       headers={"Content-Type": "application/json"},
                       content=b'{"username": "admin", "password": "password"}')
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    claims = _post(f"http://localhost:{ports['AUTH_PORT']}/auth/validate",
                        headers={"Authorization": f"Bearer {token}"}).json()
    assert claims["tenant"] == "default" and claims["role"] == "admin"

    # Records flow in, the ingest flow (a real Prefect run, files written on Dask) flushes them.
    tenant = f"http://127.0.0.1:{ports['TENANT_PORT']}"
    auth = {"Authorization": f"Bearer {token}"}
    stored = _post(f"{tenant}/data/store", headers=auth, json=[
        {"data_id": f"e2e-{i}", "payload": {"i": i}} for i in range(5)])
    assert stored.json()["accepted"] == 5
    flushed = httpx.post(f"{tenant}/data/flush", headers=auth, timeout=120).json()
    assert flushed["rows"] >= 5 and not flushed["run_id"].startswith("local-"), flushed
    run = _get(f"http://127.0.0.1:{ports['PREFECT_PORT']}/api/flow_runs/"
                    f"{flushed['run_id']}").json()
    assert run["name"] == "ingest (requested)" and run["state_type"] == "COMPLETED"
    parquet = list((system["data_dir"] / "warehouse" / "default" / "records").rglob("*.parquet"))
    assert parquet
    got = _get(f"{tenant}/data/retrieve", headers=auth, params={"data_id": "e2e-3"}).json()
    assert got["payload"] == {"i": 3} and got["flushed"] is True
    control_log = (system["data_dir"] / "logs" / "control-plane.log").read_text()
    assert "flush jobs ran on the Dask cluster" in control_log

    # The embedded ClickHouse store works with no other step: the table is mirrored by a named
    # backfill run, and a lookup answers on the ClickHouse route.
    catalog = f"http://127.0.0.1:{ports['CATALOG_PORT']}"
    marked = httpx.put(f"{catalog}/metadata/tables/records/options", headers=auth, timeout=60,
                       json={"serving": "clickhouse"})
    assert marked.status_code == 200, marked.text
    assert not marked.json()["mirror"]["run_id"].startswith("local-")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mirror = _get(f"{catalog}/metadata/tables", headers=auth,
                      params={"table": "records"}).json()["tables"][0]["serving"]
        if mirror.get("current") and mirror.get("rows") == 5:
            break
        time.sleep(0.5)
    assert mirror.get("current") and mirror.get("rows") == 5, mirror
    looked_up = _post(f"http://127.0.0.1:{ports['OPERATION_PORT']}/query/execute", headers=auth,
                      json={"query": "SELECT i FROM records WHERE data_id = 'e2e-3'"}).json()
    assert looked_up["engine"] == "clickhouse" and looked_up["rows"] == [[3]], looked_up
    assert (system["data_dir"] / "clickhouse").is_dir()

    # Docs work offline: the page loads its assets from the service itself.
    docs = _get(f"http://127.0.0.1:{ports['CATALOG_PORT']}/docs").text
    assert "cdn." not in docs and "/static-offline-docs/swagger-ui-bundle.js" in docs
    asset = _get(f"http://127.0.0.1:{ports['CATALOG_PORT']}"
                      "/static-offline-docs/swagger-ui-bundle.js")
    assert asset.status_code == 200

    # The deployments of prefect.yaml were applied, and the Dask dashboard serves.
    prefect_api = f"http://127.0.0.1:{ports['PREFECT_PORT']}/api"
    deployments = {d["name"]: d for d in
                   _post(f"{prefect_api}/deployments/filter", json={}).json()}
    assert set(deployments) >= {"hourly", "compaction", "retention", "cleanup"}
    for name in ("compaction", "retention", "cleanup"):
        assert deployments[name]["schedules"], name
        assert deployments[name]["global_concurrency_limit"]["limit"] == 1, deployments[name]
    for deployment in deployments.values():  # nothing ties them to this host's folders
        assert deployment["pull_steps"] == [] and ":" not in deployment["entrypoint"], deployment
    _wait_for_scheduled_run(prefect_api, deployments["compaction"]["id"])
    dashboard = _get(f"http://127.0.0.1:{ports['DASK_DASHBOARD_PORT']}/status",
                          follow_redirects=True)
    assert dashboard.status_code == 200

    # Monitoring: alerts evaluated, the logs of every process, the dashboard page and its data.
    monitoring = f"http://127.0.0.1:{ports['MONITORING_PORT']}"
    alerts = _get(f"{monitoring}/alerts", headers=auth, params={"state": "all"}).json()
    assert alerts["evaluated_at"] and {a["name"] for a in alerts["alerts"]} >= {
        "FlushLagging", "DaskWorkersMissing", "MaintenanceRunFailed"}
    logs = _get(f"{monitoring}/logs", headers=auth, params={"limit": 20}).json()
    assert set(logs["processes"]) >= {"control-plane", "dask-scheduler", "dask-workers",
                                      "prefect-server", "prefect-worker"}, logs["processes"]
    times = [entry["time"] for entry in logs["logs"]]
    assert len(times) == 20 and times == sorted(times, reverse=True) and logs["next"]
    after = _get(f"{monitoring}/logs", headers=auth, params={"limit": 20,
                                                             "before": logs["next"]}).json()
    assert after["logs"] and after["logs"][0]["time"] <= times[-1]
    scheduler = _get(f"{monitoring}/logs", headers=auth, params={
        "process": "dask-scheduler", "text": "scheduler at"}).json()
    assert scheduler["logs"] and {e["process"] for e in scheduler["logs"]} == {"dask-scheduler"}
    flush_lines = _get(f"{monitoring}/logs", headers=auth, params={
        "process": "control-plane", "text": "flush jobs ran on the Dask cluster"}).json()
    assert flush_lines["count"] >= 1
    page = _get(f"{monitoring}/dashboard").text
    assert "/dashboard/dashboard.js" in page and "cdn." not in page
    board = _get(f"{monitoring}/dashboard/data", headers=auth).json()
    assert board["history"]["at"] and any(r["flow"] == "ingest" for r in board["runs"]), board

    _stop_cleanly(system)


def _wait_for_scheduled_run(prefect_api: str, deployment_id: str) -> None:
    """A run the schedule made (not one we asked for) reaches COMPLETED on the worker."""
    deadline = time.monotonic() + 180
    states: list[str] = []
    while time.monotonic() < deadline:
        runs = _post(f"{prefect_api}/flow_runs/filter", json={
            "deployments": {"id": {"any_": [deployment_id]}}}).json()
        states = [r["state_type"] for r in runs]
        if "COMPLETED" in states:
            return
        assert "FAILED" not in states and "CRASHED" not in states, runs
        time.sleep(3)
    pytest.fail(f"no scheduled compaction run completed in 180 s: {states}")


def test_a_crashed_child_is_restarted_and_children_die_with_a_killed_supervisor(
        system: dict[str, Any]) -> None:
    """SIGKILL of the services' process: it is started again, recovers the write-ahead log (an
    acknowledged record is still there), and /health and /metrics count the restart. SIGKILL of
    `lakehouse up` itself: its children go with it, and the next start (the test after this
    one) cleans up whatever they left."""
    system["start"]("crash")
    _wait_until_healthy(system)
    ports, data_dir = system["ports"], system["data_dir"]
    login = _post(f"http://127.0.0.1:{ports['AUTH_PORT']}/auth/login",
                       json={"username": "admin", "password": "password"}).json()
    auth = {"Authorization": f"Bearer {login['access_token']}"}
    tenant = f"http://127.0.0.1:{ports['TENANT_PORT']}"
    stored = _post(f"{tenant}/data", headers=auth,
                        json={"data_id": "before-crash", "payload": {"x": 1}})
    assert stored.status_code in (200, 201), stored.text

    recorded = json.loads((data_dir / "run" / "supervisor.json").read_text())
    os.kill(recorded["children"]["control-plane"]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + START_TIMEOUT_S
    health: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        health = _health(ports["MONITORING_PORT"], any_status=True)
        if health and health["checks"].get("processes", {}).get("restarts", {}).get(
                "control-plane") == 1:
            break
        time.sleep(1)
    else:
        pytest.fail(f"not restarted: {health}\n" + system["out"].read_text()[-3000:])
    assert "control-plane exited with -9" in system["out"].read_text()
    metrics = _get(f"http://127.0.0.1:{ports['MONITORING_PORT']}/metrics").text
    assert 'lakehouse_process_restarts_total{process="control-plane"} 1.0' in metrics
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the restarted services answer again
        with contextlib.suppress(httpx.HTTPError):
            got = _get(f"{tenant}/data/retrieve", headers=auth,
                            params={"data_id": "before-crash"})
            if got.status_code == 200:
                break
        time.sleep(1)
    assert got.json()["payload"] == {"x": 1}

    children = [c["pid"] for c in json.loads(
        (data_dir / "run" / "supervisor.json").read_text())["children"].values()]
    system["proc"].kill()
    system["proc"].wait(10)
    deadline = time.monotonic() + 15
    alive = children
    while alive and time.monotonic() < deadline:
        alive = [p for p in children if psutil.pid_exists(p)
                 and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.2)
    assert alive == [], "children outlived their killed supervisor"


def test_second_start_reuses_what_the_first_applied(system: dict[str, Any]) -> None:
    deploy_log = system["data_dir"] / "logs" / "prefect-deploy.log"
    applied_once = deploy_log.read_bytes()
    system["start"]("second")
    answers = _wait_until_healthy(system)
    assert all(a["status"] == "healthy" for a in answers.values())
    assert deploy_log.read_bytes() == applied_once  # pool and deployments were not re-applied
    _stop_cleanly(system)


def _stop_cleanly(system: dict[str, Any]) -> None:
    """Ctrl-C: everything `lakehouse up` started is gone within 15 s."""
    proc = system["proc"]
    descendants = psutil.Process(proc.pid).children(recursive=True)
    names = {p.name() for p in descendants}
    assert len(descendants) >= 5, names
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    took = time.monotonic() - started
    assert took < 15, took
    alive = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], [p.cmdline() for p in alive]
    assert "stopped every process" in system["out"].read_text()
