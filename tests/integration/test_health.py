"""`GET /health` of every service, with real probes: a real SQLite catalog, a real in-process Dask
cluster, and a Prefect address where nothing listens (the e2e test covers a live Prefect)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from distributed import LocalCluster
from fastapi.testclient import TestClient

from api.app import create_app
from api.core import build_core
from api.services import SPECS, Service
from lakehouse.config import Settings


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("service", list(Service))
def test_health_has_the_seed_shape_and_real_checks(tmp_path: Path, dask_address: str,
                                                   service: Service) -> None:
    core = build_core(Settings.for_tests(tmp_path, dask_scheduler_address=dask_address))
    with TestClient(create_app(service, core)) as client:
        response = client.get("/health")
    core.close()
    body = response.json()
    assert response.status_code == 200
    assert body["service"] == SPECS[service].title
    assert body["version"]
    assert dt.datetime.fromisoformat(body["time"]).tzinfo is not None
    # Prefect is down here: a non-critical dependency, so the service is degraded, not dead.
    assert body["status"] == "degraded"
    assert body["checks"]["catalog"]["ok"] is True
    assert body["checks"]["prefect"]["ok"] is False
    assert "error" in body["checks"]["prefect"]
    if service is Service.OPERATION:
        assert body["checks"]["dask"] == {**body["checks"]["dask"], "ok": True, "workers": 2,
                                          "threads": 2}
    else:
        assert "dask" not in body["checks"]


def test_unreachable_catalog_is_unhealthy(tmp_path: Path) -> None:
    core = build_core(Settings.for_tests(tmp_path))
    core.engine.dispose()
    (tmp_path / "catalog.db").unlink()
    (tmp_path / "catalog.db").mkdir()  # a directory where the database file was: cannot open
    with TestClient(create_app(Service.CATALOG, core)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert response.json()["checks"]["catalog"]["ok"] is False


def test_dask_down_is_reported(tmp_path: Path) -> None:
    core = build_core(Settings.for_tests(tmp_path, dask_scheduler_address="tcp://127.0.0.1:9"))
    with TestClient(create_app(Service.OPERATION, core)) as client:
        body = client.get("/health").json()
    core.close()
    assert body["checks"]["dask"]["ok"] is False
    assert body["checks"]["dask"]["latency_ms"] < 1500  # refused at once, not after a timeout


def test_a_slow_catalog_is_degraded_until_it_stays_silent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe that gets no answer in time (a busy moment) is `degraded`, not a 503 a load
    balancer would act on; once the catalog has not answered for the grace period it is
    `unhealthy`. An answer again is `healthy`'s business at once."""
    import api.core
    from lakehouse.telemetry import probes

    core = build_core(Settings.for_tests(tmp_path, health_timeout_s=0.2))
    slow = threading.Event()
    real_ping = probes.ping

    def ping(engine: Any) -> None:
        if slow.is_set():
            time.sleep(0.5)
        real_ping(engine)

    monkeypatch.setattr(probes, "ping", ping)
    monkeypatch.setattr(api.core, "HEALTH_CACHE_S", 0.0)
    monkeypatch.setattr(api.core, "HEALTH_STALE_S", 0.0)  # every answer waits for its probe
    with TestClient(create_app(Service.CATALOG, core)) as client:
        assert client.get("/health").json()["checks"]["catalog"]["ok"] is True
        slow.set()
        busy = client.get("/health")
        assert busy.status_code == 200 and busy.json()["status"] == "degraded"
        catalog = busy.json()["checks"]["catalog"]
        assert catalog["ok"] is False and catalog["slow"] is True
        assert catalog["critical"] is False and catalog["last_answer_s_ago"] < 5
        monkeypatch.setattr(api.core, "CATALOG_SLOW_GRACE_S", 0.0)
        silent = client.get("/health")
        assert silent.status_code == 503 and silent.json()["status"] == "unhealthy"
        slow.clear()
        time.sleep(0.6)  # the last slow probe's thread finishes
        assert client.get("/health").json()["checks"]["catalog"]["ok"] is True
    core.close()


def test_a_stale_check_is_answered_at_once_and_probed_again_behind_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past HEALTH_CACHE_S and within HEALTH_STALE_S, /health answers the checks it holds at
    once while one probe (not one per request) refreshes them; a later answer shows what that
    probe found. Past HEALTH_STALE_S, or before any probe, the answer waits for the probe."""
    import api.core
    from lakehouse.telemetry import probes

    core = build_core(Settings.for_tests(tmp_path, health_timeout_s=5))
    broken = threading.Event()
    pings: list[float] = []
    real_ping = probes.ping

    def ping(engine: Any) -> None:
        pings.append(time.monotonic())
        if broken.is_set():
            time.sleep(1.0)
            raise RuntimeError("the catalog went away")
        real_ping(engine)

    monkeypatch.setattr(probes, "ping", ping)
    monkeypatch.setattr(api.core, "HEALTH_CACHE_S", 0.0)
    monkeypatch.setattr(api.core, "HEALTH_STALE_S", 60.0)
    with TestClient(create_app(Service.CATALOG, core)) as client:
        assert client.get("/health").json()["checks"]["catalog"]["ok"] is True  # waited
        assert len(pings) == 1
        broken.set()
        for _ in range(3):  # the probe under way takes 1 s: these do not wait for it
            started = time.monotonic()
            stale = client.get("/health")
            assert time.monotonic() - started < 0.8
            assert stale.status_code == 200 and stale.json()["checks"]["catalog"]["ok"] is True
        assert len(pings) == 2  # one probe refreshing, however many asked meanwhile
        deadline = time.monotonic() + 10
        while (found := client.get("/health")).status_code == 200:
            assert time.monotonic() < deadline, found.json()
            time.sleep(0.1)
        assert found.json()["status"] == "unhealthy"
        assert "went away" in found.json()["checks"]["catalog"]["error"]
        time.sleep(1.2)  # the probe the last answer started is done: the next one is new
        monkeypatch.setattr(api.core, "HEALTH_STALE_S", 0.0)
        probes_before, started = len(pings), time.monotonic()
        assert client.get("/health").status_code == 503
        # Too old to answer: it waited for a probe of its own.
        assert len(pings) == probes_before + 1 and time.monotonic() - started >= 1.0
    core.close()
