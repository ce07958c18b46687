"""A maintenance run that fails fires the shipped MaintenanceRunFailed alert for real: a cleanup
run fails in Prefect (the test harness) because the catalog it is given cannot be opened; the
alert fires, shows in /alerts and in the dashboard's data, and the webhook receiver (a local
HTTP server) hears it; a cleanup run that succeeds resolves it, and the metric of the last
success is kept through a later failure."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prefect.settings import PREFECT_API_URL
from prometheus_client.parser import text_string_to_metric_families

from api import maintenance_status
from api.alert_rounds import evaluate_once
from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from flows.cleanup import cleanup
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from lakehouse.telemetry.alerting import DEFAULT_RULES_FILE
from tests.conftest import logged_in, wait_for_notifications


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    shipped = yaml.safe_load(DEFAULT_RULES_FILE.read_text())["rules"]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"rules": [
        r for r in shipped if r["name"] == "MaintenanceRunFailed"]}))
    return path


def _round(core: Core) -> None:
    maintenance_status._cache.clear()  # the last runs are cached 10 s; this round must see now
    asyncio.run(evaluate_once(core))


def _last_success(client: TestClient) -> float | None:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if (sample.name == "lakehouse_maintenance_last_success_timestamp_seconds"
                    and sample.labels.get("flow") == "cleanup"):
                return float(sample.value)
    return None


@pytest.fixture
def core(tmp_path: Path, rules: Path, receiver: tuple[str, list[dict[str, Any]]],
         monkeypatch: pytest.MonkeyPatch) -> Iterator[Core]:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "worker"))  # the flow's own settings
    monkeypatch.setenv("ENVIRONMENT", "test")
    built = build_core(Settings.for_tests(
        tmp_path / "api", prefect_api_url=PREFECT_API_URL.value(),
        alert_rules_file=str(rules), alert_webhook_url=receiver[0]))
    yield built
    built.close()


def test_a_failed_maintenance_run_fires_until_a_run_succeeds(
        core: Core, receiver: tuple[str, list[dict[str, Any]]],
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, received = receiver
    headers = logged_in(core, {"acme": ("watcher", Role.READER)})["acme"]
    with TestClient(create_app(Service.MONITORING, core)) as monitoring:
        assert cleanup(grace_s=0, return_state=True).is_completed()
        _round(core)
        succeeded = _last_success(monitoring)
        assert succeeded is not None

        monkeypatch.setenv("CATALOG_URL", f"sqlite:///{tmp_path}")  # a folder: no database
        assert cleanup(grace_s=0, return_state=True).is_failed()
        _round(core)
        firing = monitoring.get("/alerts", headers=headers).json()["alerts"]
        assert [(a["name"], a["state"], a["labels"]) for a in firing] == [
            ("MaintenanceRunFailed", "firing", {"flow": "cleanup"})]
        board = monitoring.get("/dashboard/data", headers=headers).json()
        assert [a["name"] for a in board["alerts"]] == ["MaintenanceRunFailed"]
        assert _last_success(monitoring) == succeeded  # kept through the failure
        wait_for_notifications(received, 1)
        assert [(a["labels"]["alertname"], a["status"]) for a in received[0]["alerts"]] == [
            ("MaintenanceRunFailed", "firing")]

        monkeypatch.delenv("CATALOG_URL")
        assert cleanup(grace_s=0, return_state=True).is_completed()
        _round(core)
        states = monitoring.get("/alerts", headers=headers).json()["alerts"]
        assert [(a["name"], a["state"]) for a in states] == [("MaintenanceRunFailed",
                                                              "resolved")]
        assert not monitoring.get("/dashboard/data", headers=headers).json()["alerts"]
        assert (_last_success(monitoring) or 0) > succeeded
        wait_for_notifications(received, 2)
        assert [(a["labels"]["alertname"], a["status"]) for a in received[1]["alerts"]] == [
            ("MaintenanceRunFailed", "resolved")]
