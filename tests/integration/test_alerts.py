"""Alerts fire for real: the rules run over the control plane's own gauges, with a real write
path, a real in-process Dask cluster and a webhook receiver on loopback; /alerts shows them and
the receiver gets Alertmanager-shaped notifications of both moves."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import yaml
from distributed import LocalCluster
from fastapi.testclient import TestClient

from api.alert_rounds import evaluate_once
from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows.ingest import flush_here
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.telemetry.alerting import DEFAULT_RULES_FILE, load_rules
from lakehouse.telemetry.metrics import Metrics
from tests.conftest import logged_in, wait_for_notifications

RULES = {"rules": [
    {"name": "Backlog", "expr": "lakehouse_unflushed_bytes > 2000", "for": "0s",
     "severity": "warning", "summary": "over 2000 bytes wait to be flushed"},
    {"name": "NoWorkers", "expr": "lakehouse_dask_workers < 1", "for": "0s",
     "severity": "critical", "summary": "no Dask worker", "labels": {"team": "ops"}},
    {"name": "Never", "expr": "lakehouse_data_dir_free_ratio < 0", "for": "1m",
     "severity": "info", "summary": "cannot happen"},
]}


def _round(core: Core) -> None:
    core._checks.clear()  # health probes are cached for 2 s; a round here must see now
    asyncio.run(evaluate_once(core))


def _states(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    answer = client.get("/alerts", params={"state": "all"}, headers=headers)
    assert answer.status_code == 200, answer.text
    return {a["name"]: a["state"] for a in answer.json()["alerts"]}


def test_alerts_fire_show_and_resolve_with_their_notifications(
        tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = receiver
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster:
        core = build_core(Settings.for_tests(
            tmp_path / "data", alert_rules_file=str(rules), alert_webhook_url=url,
            dask_scheduler_address=cluster.scheduler_address), ingest=True)
        headers = logged_in(core, {"acme": ("watcher", Role.READER)})["acme"]
        try:
            with TestClient(create_app(Service.MONITORING, core)) as client:
                assert client.get("/alerts").status_code == 401
                _round(core)
                assert _states(client, headers) == {
                    "Backlog": "inactive", "NoWorkers": "inactive", "Never": "inactive"}

                assert core.ingest is not None and core.flusher is not None
                core.ingest.write("acme", [{"data_id": "a", "payload": {"x": 1}}]).answer(
                    timeout_s=10)
                _round(core)
                assert _states(client, headers)["Backlog"] == "inactive"  # under its limit
                core.ingest.write("acme", [{"data_id": f"b{i}", "payload": {"x": "y" * 100}}
                                           for i in range(30)]).answer(timeout_s=10)
                [worker] = list(cluster.workers.values())
                asyncio.run_coroutine_threadsafe(worker.close(), cluster.loop.asyncio_loop
                                                 ).result(30)
                cluster.workers.clear()
                _round(core)
                listed = client.get("/alerts", headers=headers).json()
                firing = {a["name"]: a for a in listed["alerts"]}
                assert set(firing) == {"Backlog", "NoWorkers"}
                assert firing["NoWorkers"]["state"] == "firing"
                assert firing["NoWorkers"]["severity"] == "critical"
                assert firing["NoWorkers"]["labels"] == {"team": "ops"}
                assert firing["NoWorkers"]["value"] == 0
                assert firing["Backlog"]["value"] > 0 and listed["evaluated_at"]
                wait_for_notifications(received, 1)
                assert {a["labels"]["alertname"]: a["status"] for a in received[0]["alerts"]} == {
                    "Backlog": "firing", "NoWorkers": "firing"}
                metrics = client.get("/metrics").text
                assert 'lakehouse_alerts{severity="critical",state="firing"} 1.0' in metrics
                assert 'lakehouse_component_up{component="dask"}' in metrics
                board = client.get("/dashboard/data", headers=headers).json()
                assert {a["name"] for a in board["alerts"]} == {"Backlog", "NoWorkers"}
                assert board["history"]["dask_workers"][-1] == 0

                flush_here(core.flusher)
                cluster.scale(1)
                deadline = time.monotonic() + 30
                while len(cluster.scheduler.workers) < 1 and time.monotonic() < deadline:
                    time.sleep(0.1)
                _round(core)
                assert _states(client, headers) == {
                    "Backlog": "resolved", "NoWorkers": "resolved", "Never": "inactive"}
                wait_for_notifications(received, 2)
                resolved = received[1]
                assert resolved["status"] == "resolved" and resolved["version"] == "4"
                assert {a["labels"]["alertname"]: a["status"] for a in resolved["alerts"]} == {
                    "Backlog": "resolved", "NoWorkers": "resolved"}
                assert all(a["endsAt"] > a["startsAt"] for a in resolved["alerts"])
                assert not client.get("/dashboard/data", headers=headers).json()["alerts"]
        finally:
            core.close()


def test_the_shipped_rules_watch_series_the_platform_has() -> None:
    """Every default rule parses and names a metric the platform exposes (a renamed metric
    must not leave a rule that can never fire)."""
    rules = load_rules(None)
    assert len(rules) >= 9
    metrics = Metrics()
    exposed = {sample_name for family in metrics.registry.collect()
               for sample_name in (family.name, f"{family.name}_total")}
    missing = [r.name for r in rules if r.expression.metric not in exposed]
    assert missing == []
    assert yaml.safe_load(DEFAULT_RULES_FILE.read_text())["rules"][0]["name"] == rules[0].name
