"""GET /logs over the log files of the processes `lakehouse up` runs (LOG_DIR): every
process's lines in one list, newest first, filtered and paged; a caller who is not an admin
sees only the platform's lines that name their tenant. The files are written here in each
process's own format (as tests/e2e/test_up.py sees them written for real)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import Core, build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import logged_in

CONTROL = "\n".join([
    '{"time":"2026-12-06T03:05:23.725+00:00","level":"INFO","logger":"api.core",'
    '"message":"user created","request_id":null,"user":"root","tenant":"ops"}',
    '{"time":"2026-12-06T03:05:30.000+00:00","level":"INFO","logger":"lakehouse.ingest",'
    '"message":"flushed orders","request_id":"req-1","tenant":"acme"}',
    '{"time":"2026-12-06T03:05:31.000+00:00","level":"ERROR","logger":"lakehouse.executor",'
    '"message":"query failed","query_id":"q-42","tenant":"globex","table":"secret_plans"}',
    '{"time":"2026-12-06T03:05:40.000+00:00","level":"WARNING","logger":"api.access",'
    '"message":"request","request_id":"req-2","status":429}',
]) + "\n"
SCHEDULER = (
    "2026-12-06 03:05:19,879 - distributed.scheduler - INFO - State start\n"
    "2026-12-06 03:05:20,235 - distributed.scheduler - INFO -   Scheduler at: tcp://x:8786\n"
    "2026-12-06 03:05:35,000 - distributed.worker - ERROR - lost a worker\n"
    "Traceback (most recent call last):\n  File \"w.py\", line 3\nOSError: gone\n")
PREFECT = (" ___ ___\n| _ \\ _ \\\n\n"
           "03:05:21.000 | INFO    | prefect.server - Uvicorn running\n"
           "03:05:45.500 | WARNING | prefect.server - slow database\n")


def _local(text: str) -> float:
    return dt.datetime.fromisoformat(text).astimezone().timestamp()


@pytest.fixture
def core(tmp_path: Path) -> Core:
    built = build_core(Settings.for_tests(tmp_path / "data"))
    logs = built.settings.log_dir
    logs.mkdir(parents=True)
    (logs / "control-plane.log").write_text(CONTROL)
    scheduler = logs / "dask-scheduler.log"
    scheduler.write_text(SCHEDULER)
    prefect = logs / "prefect-server.log"
    prefect.write_text(PREFECT)
    stamp = _local("2026-12-06T03:06:00")  # Prefect's times are of the day written
    for path in (scheduler, prefect, logs / "control-plane.log"):
        os.utime(path, (stamp, stamp))
    return built


def _get(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = client.get("/logs", headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_every_process_newest_first_filtered_and_paged(core: Core) -> None:
    users = logged_in(core, {"ops": ("root", Role.ADMIN), "acme": ("rita", Role.READER)})
    with TestClient(create_app(Service.MONITORING, core)) as client:
        admin = users["ops"]
        every = _get(client, admin, level="DEBUG")
        assert every["processes"] == ["control-plane", "dask-scheduler", "prefect-server"]
        assert every["scope"] == "all" and every["next"] is None
        times = [e["time"] for e in every["logs"]]
        assert times == sorted(times, reverse=True) and len(times) == 10
        assert [e["process"] for e in every["logs"][:3]] == [
            "prefect-server", "control-plane", "dask-scheduler"]
        lost = every["logs"][2]
        assert lost["level"] == "ERROR" and lost["message"].endswith("OSError: gone")
        banner = [e for e in every["logs"] if e["message"].startswith(" ___")]
        assert banner and banner[0]["time"].startswith("2026-12-06T03:05:21")  # its next line's

        pages, cursor = [], None
        while True:
            page = _get(client, admin, limit=3, **({"before": cursor} if cursor else {}))
            pages.append([e["time"] + e["process"] for e in page["logs"]])
            cursor = page["next"]
            if cursor is None:
                break
        flat = [key for page in pages for key in page]
        assert [len(p) for p in pages] == [3, 3, 3, 1]
        assert flat == [e["time"] + e["process"] for e in every["logs"]]

        assert [e["process"] for e in _get(client, admin, level="WARNING")["logs"]] == [
            "prefect-server", "control-plane", "dask-scheduler", "control-plane"]
        chosen = _get(client, admin, process="dask-scheduler,prefect-server", text="SCHEDULER")
        assert [e["message"] for e in chosen["logs"]] == ["  Scheduler at: tcp://x:8786"]
        assert [e["message"] for e in _get(client, admin, request_id="req-1")["logs"]] == [
            "flushed orders"]
        assert _get(client, admin, query_id="q-42")["logs"][0]["table"] == "secret_plans"
        window = _get(client, admin, since="2026-12-06T03:05:30Z",
                      until="2026-12-06T03:05:31Z")
        assert [e["message"] for e in window["logs"]] == ["query failed", "flushed orders"]

        bad = client.get("/logs", headers=admin, params={"process": "nope"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_process"
        assert bad.json()["details"]["processes"] == every["processes"]
        for since in ("0.5", "2026-12-06T03:05:30", "2026-13-01T00:00:00Z"):
            late = client.get("/logs", headers=admin, params={"since": since})
            assert late.status_code == 400 and late.json()["error"] == "invalid_time", since
        cursor_bad = client.get("/logs", headers=admin, params={"before": "yesterday"})
        assert cursor_bad.status_code == 422 and "before" in cursor_bad.text

        mine = client.get("/logs", headers=users["acme"], params={"level": "DEBUG"})
        assert mine.status_code == 200 and mine.json()["scope"] == "tenant"
        assert [e["message"] for e in mine.json()["logs"]] == ["flushed orders"]
        for secret in ("globex", "secret_plans", "ops", "root", "Scheduler"):
            assert secret not in mine.text, secret
    core.close()
