"""The control plane's alert rounds: refresh the gauges the rules watch (dependencies' health,
Dask workers, the unflushed backlog, free disk, maintenance runs), then evaluate the rules over
the platform's metrics. Run every ALERT_EVAL_INTERVAL_S by the Monitoring service while it
serves (one evaluator per process: the Monitoring app is created once in it)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time

from fastapi.concurrency import run_in_threadpool

from api.core import Core
from api.maintenance_status import maintenance_status

log = logging.getLogger(__name__)


async def refresh_gauges(core: Core) -> None:
    metrics = core.metrics
    checks = await core.checks(dask=True, wal=core.ingest is not None)
    for check in checks:
        if check.name in ("catalog", "prefect", "dask", "wal"):
            metrics.component_up.labels(check.name).set(1 if check.ok else 0)
        if check.name == "dask":  # the workers that get work: not those excluded (storage)
            usable = int(check.detail.get("workers", 0)) - int(
                check.detail.get("workers_excluded", 0))
            metrics.dask_workers.set(max(0, usable))
            metrics.observe_dask(check.detail)
    if core.ingest is not None:
        backlog = core.ingest.backlog()
        metrics.unflushed_bytes.set(backlog.unflushed_bytes)
        metrics.unflushed_age.set(backlog.oldest_unflushed_age_s)
    usage = await run_in_threadpool(shutil.disk_usage, core.settings.data_dir)
    metrics.free_ratio.set(usage.free / usage.total if usage.total else 1.0)
    await maintenance_status(core)  # sets the maintenance gauges (cached, cheap)


async def evaluate_once(core: Core) -> None:
    assert core.alerting is not None  # noqa: S101 - build_core always sets it
    await refresh_gauges(core)
    samples = core.metrics.samples()
    await run_in_threadpool(core.alerting.evaluate, samples)
    core.metrics.alerts.clear()
    for (state, severity), count in core.alerting.counts().items():
        core.metrics.alerts.labels(state, severity).set(count)
    # The dashboard's point of this round, with the alerts just decided.
    core.history.add(time.time(), {**samples, "lakehouse_alerts": [
        ((("severity", severity), ("state", state)), float(count))
        for (state, severity), count in core.alerting.counts().items()]})


async def evaluate_forever(core: Core) -> None:
    """Until cancelled; a round that fails is logged and the next one runs on time."""
    while True:
        try:
            await evaluate_once(core)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("an alert round failed")
        await asyncio.sleep(core.settings.alert_eval_interval_s)
