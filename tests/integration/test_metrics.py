"""GET /metrics and /metrics/tenants carry the write path, the runs, the Dask cluster and the
process: written for real through the Tenant Node (RocksDB, fsync), flushed through the run
shell as a run of the ingest flow on the test session's Prefect server, and the cluster an
in-process Dask LocalCluster."""

from __future__ import annotations

import asyncio
from pathlib import Path

from distributed import LocalCluster
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.alert_rounds import evaluate_once
from api.app import create_app
from api.core import build_core
from api.services import Service
from flows.ingest import flush
from lakehouse.auth.identity import Role
from lakehouse.config import Settings
from tests.conftest import logged_in

Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _series(text: str) -> Series:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(series: Series, name: str, **labels: str) -> float:
    return series[(name, tuple(sorted(labels.items())))]


def test_the_write_path_runs_cluster_and_process_are_measured(tmp_path: Path) -> None:
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster:
        core = build_core(Settings.for_tests(
            tmp_path / "data", dask_scheduler_address=cluster.scheduler_address), ingest=True)
        headers = logged_in(core, {"acme": ("w", Role.WRITER), "ops": ("root", Role.ADMIN)})
        try:
            with TestClient(create_app(Service.TENANT, core)) as tenant, \
                    TestClient(create_app(Service.MONITORING, core)) as monitoring:
                lines = b'{"data_id": "a", "payload": {"x": 1}}\n' \
                        b'{"data_id": "b", "payload": {"x": 2}}\nnot json\n'
                stored = tenant.post("/data/store", content=lines, headers={
                    **headers["acme"], "Content-Type": "application/x-ndjson"})
                assert stored.status_code in (200, 207), stored.text
                assert core.flusher is not None
                assert flush(core.flusher)["rows"] == 3  # the two, and the reject
                core._checks.clear()
                asyncio.run(evaluate_once(core))

                platform = _series(monitoring.get("/metrics").text)
                assert _value(platform, "lakehouse_ingest_records_total") == 2
                assert _value(platform, "lakehouse_ingest_rejected_records_total") == 1
                assert _value(platform, "lakehouse_ingest_bytes_total") > 0
                assert _value(platform, "lakehouse_wal_sync_duration_seconds_count") >= 1
                assert _value(platform, "lakehouse_wal_group_commit_duration_seconds_count") >= 1
                assert _value(platform, "lakehouse_run_duration_seconds_count",
                              kind="ingest", outcome="completed") == 1
                assert _value(platform, "lakehouse_dask_threads") == 2
                assert _value(platform, "lakehouse_dask_memory_bytes") > 0
                assert _value(platform, "lakehouse_dask_memory_limit_bytes") > 0
                assert _value(platform, "process_resident_memory_bytes") > 0
                assert not any("acme" in str(labels) for _, labels in platform)

                assert monitoring.get("/metrics/tenants", headers=headers["acme"]
                                      ).status_code == 403
                per_tenant = _series(monitoring.get("/metrics/tenants",
                                                    headers=headers["ops"]).text)
                assert _value(per_tenant, "lakehouse_ingest_records_total", tenant="acme") == 2
                assert _value(per_tenant, "lakehouse_ingest_rejected_records_total",
                              tenant="acme") == 1
        finally:
            core.close()
