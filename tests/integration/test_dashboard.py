"""The dashboard in a real headless browser: Debian's chromium and chromium-driver (installed
here when missing), driven with selenium, against the services over real HTTP on loopback
(uvicorn), with the write-ahead log on RocksDB, an in-process Dask LocalCluster, a temporary
Prefect server for the flush's run, and the alert rounds running as in `lakehouse up`.
Nothing is mocked. A screenshot is kept in artifacts/dashboard.png."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from distributed import LocalCluster

from api.core import Core, build_core
from api.services import Service
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import PASSWORD
from tests.serving import free_ports, serving

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
RULES = {"rules": [
    {"name": "RecordsWaiting", "expr": "lakehouse_unflushed_bytes > 0", "for": "0s",
     "severity": "warning", "summary": "records wait to be flushed"},
    {"name": "Never", "expr": "lakehouse_data_dir_free_ratio < 0", "for": "1m",
     "severity": "info", "summary": "cannot happen"},
]}
CHARTS = ("chart-ingest", "chart-backlog", "chart-queries", "chart-latency", "chart-errors",
          "chart-dask")


def _ensure_chromium() -> None:
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium",
                    "chromium-driver"], check=True, capture_output=True, timeout=900)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, prefect_api_url: str,
             ) -> Iterator[tuple[Core, dict[Service, str]]]:
    _ensure_chromium()
    folder = tmp_path_factory.mktemp("dashboard")
    rules = folder / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES))
    ports = dict(zip((f"{s.value}_port" for s in Service), free_ports(len(Service)),
                     strict=True))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster:
        core = build_core(Settings.for_tests(
            folder / "data", prefect_api_url=prefect_api_url, alert_rules_file=str(rules),
            alert_eval_interval_s=1.0, dask_scheduler_address=cluster.scheduler_address,
            query_on_dask=False, flush_on_dask=False, **ports), ingest=True)
        core.auth.create_user("watcher", PASSWORD, "acme", Role.READER)
        core.auth.create_user("writer", PASSWORD, "acme", Role.WRITER)
        try:
            with serving(core, [Service.TENANT, Service.OPERATION, Service.MONITORING],
                         alert_rounds=True) as urls:
                yield core, urls
        finally:
            core.close()


def _busy(urls: dict[Service, str]) -> None:
    """Records written and flushed (a run), queries answered in several rounds, and records
    left waiting (the alert)."""
    token = httpx.post(urls[Service.MONITORING] + "/dashboard/login", timeout=30, json={
        "username": "writer", "password": PASSWORD}).json()["access_token"]
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        for n in range(4):
            body = "\n".join(f'{{"data_id": "r{n}-{i}", "payload": {{"n": {i}}}}}'
                             for i in range(50))
            stored = http.post(urls[Service.TENANT] + "/data/store", content=body,
                               headers={"Content-Type": "application/x-ndjson"})
            assert stored.status_code == 200, stored.text
            if n == 1:
                flushed = http.post(urls[Service.TENANT] + "/data/flush")
                assert flushed.status_code == 200, flushed.text
            for _ in range(5):
                answer = http.post(urls[Service.OPERATION] + "/query/execute",
                                   json={"query": "SELECT count(*) AS n FROM records"})
                assert answer.status_code == 200, answer.text
            time.sleep(1.2)  # the next alert round: a point of its own


def _driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1500", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=DriverService(
        executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver"))


def _wait(condition: Any, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"the page did not show {what} in {timeout_s:g} s"
        time.sleep(0.2)


def test_the_dashboard_signs_in_and_draws_every_chart_and_the_firing_alert(
        platform: tuple[Core, dict[Service, str]]) -> None:
    from selenium.webdriver.common.by import By

    _, urls = platform
    page = urls[Service.MONITORING] + "/dashboard"
    served = httpx.get(page, timeout=30)
    assert served.status_code == 200 and "script-src 'self'" in served.headers[
        "content-security-policy"]
    assert httpx.get(page + "/data", timeout=30).status_code == 401
    _busy(urls)

    driver = _driver()
    try:
        driver.get(page)
        _wait(lambda: driver.find_element(By.ID, "login").is_displayed(), "the sign-in form")
        driver.find_element(By.ID, "username").send_keys("watcher")
        driver.find_element(By.ID, "password").send_keys("not the password")
        driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
        _wait(lambda: driver.find_element(By.ID, "login-error").text, "the refusal")
        assert not driver.find_element(By.ID, "board").is_displayed()

        driver.find_element(By.ID, "password").clear()
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
        _wait(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-loaded"),
              "its data")

        def drawn() -> dict[str, int]:
            return {c: int(driver.find_element(By.ID, c).get_attribute("data-points") or 0)
                    for c in CHARTS}
        _wait(lambda: all(drawn().values()), f"data in every chart ({drawn()})")
        for chart in CHARTS:
            assert driver.find_elements(By.CSS_SELECTOR, f"#{chart} path.line"), chart

        alerts = driver.find_element(By.ID, "alerts").text
        assert "RecordsWaiting" in alerts and "firing" in alerts
        assert "1 alert firing" in driver.find_element(By.ID, "status").text
        _wait(lambda: "flush" in driver.find_element(By.ID, "runs").text, "the flush run")
        link = driver.find_element(By.CSS_SELECTOR, "#runs a")
        assert "/runs/flow-run/" in (link.get_attribute("href") or "")
        assert driver.find_element(By.ID, "chart-dask").get_attribute("data-workers") == "1"
        assert "/status" in (driver.find_element(By.ID, "dask-link").get_attribute("href")
                             or "")

        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "dashboard.png"))
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"
                  and "/dashboard/login" not in e["message"]]  # the refused sign-in's 401
        assert not errors, errors
    finally:
        driver.quit()
