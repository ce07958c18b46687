"""Health probes of what the services depend on; each returns a Check and never raises."""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from sqlalchemy import Engine

from lakehouse.catalog.engine import ping


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    critical: bool
    latency_ms: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "critical": self.critical,
                "latency_ms": round(self.latency_ms, 1), **self.detail}


# Threads of their own: on the shared default pool a probe waits behind every conversion and
# query of a busy process, and times out though the catalog answers at once.
_PROBE_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="health-probe")


async def probe_catalog(engine: Engine, timeout_s: float) -> Check:
    """`slow` in the detail when it did not answer in time, which is not yet down (the caller
    decides how long slow may last: Core.checks)."""
    start = time.perf_counter()
    pinging = asyncio.get_running_loop().run_in_executor(_PROBE_THREADS, ping, engine)
    answered, _ = await asyncio.wait({pinging}, timeout=timeout_s)
    detail: dict[str, Any]
    if not answered:  # still waiting: slow, not (yet) down; the ping finishes on its own
        pinging.add_done_callback(lambda done: done.exception())  # its outcome is not asked
        detail, ok = {"error": f"no answer within {timeout_s:g} s", "slow": True}, False
    elif (failure := pinging.exception()) is not None:  # an answer: the catalog is unreachable
        detail, ok = {"error": f"{type(failure).__name__}: {failure}"[:300]}, False
    else:
        detail, ok = {"url": engine.url.render_as_string(hide_password=True)}, True
    return Check("catalog", ok, True, (time.perf_counter() - start) * 1000, detail)


@functools.cache
def _tls() -> ssl.SSLContext:
    """httpx's TLS context, built once: each client built its own, loading the CA bundle
    (milliseconds on the event loop, at every health probe)."""
    return httpx.create_ssl_context()


async def probe_prefect(api_url: str, timeout_s: float) -> Check:
    start = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=timeout_s, verify=_tls()) as client:
            response = await client.get(api_url.rstrip("/") + "/health")
        ok = response.status_code == 200
        detail: dict[str, Any] = {"url": api_url, "status_code": response.status_code}
    except Exception as exc:  # unreachable, refused, timed out: all mean "down"
        ok, detail = False, {"url": api_url, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return Check("prefect", ok, False, (time.perf_counter() - start) * 1000, detail)


async def probe_dask(address: str, timeout_s: float) -> Check:
    """Ask the scheduler who it is; its answer lists the workers."""
    from distributed.core import rpc  # heavy import, only where a probe runs

    from lakehouse.cluster import client_connection_args, worker_verdicts

    start = time.perf_counter()
    try:
        # A plain connect first: a refused port fails at once, where rpc would retry until timeout.
        host, _, port = address.rsplit("://", maxsplit=1)[-1].rpartition(":")
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)),
                                                 timeout_s)
        writer.close()
        async with rpc(address, timeout=timeout_s,  # type: ignore[no-untyped-call]
                       connection_args=client_connection_args()) as scheduler:
            identity = await asyncio.wait_for(scheduler.identity(), timeout_s)
        workers = identity.get("workers", {})
        verdicts = worker_verdicts(address)
        # A worker that does not see the storage root gets no work: the cluster is short of
        # it, which an operator must hear about (lakehouse/worker_storage.py). Which and why:
        # GET /nodes/status, for admins; health answers anyone, so it says how many.
        excluded = [w for w, v in verdicts.items() if w in workers and not v.usable]
        detail: dict[str, Any] = {
            "address": address,
            "workers": len(workers),
            "threads": sum(int(w.get("nthreads", 0)) for w in workers.values()),
            "workers_verified": sum(1 for w, v in verdicts.items() if w in workers and v.usable),
            "workers_excluded": len(excluded),
            **_worker_load(workers.values()),
        }
        ok = not excluded
    except Exception as exc:  # unreachable scheduler
        ok, detail = False, {"address": address, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return Check("dask", ok, False, (time.perf_counter() - start) * 1000, detail)


def _worker_load(workers: Any) -> dict[str, Any]:
    """The workers' memory and tasks, summed, from the metrics their heartbeats carry."""
    memory = limit = spilled = 0
    tasks: dict[str, int] = {}
    for worker in workers:
        metrics = worker.get("metrics") or {}
        memory += int(metrics.get("memory") or 0)
        limit += int(worker.get("memory_limit") or 0)
        spilled += int((metrics.get("spilled_bytes") or {}).get("disk") or 0)
        for state, count in (metrics.get("task_counts") or {}).items():
            tasks[str(state)] = tasks.get(str(state), 0) + int(count)
    return {"memory_bytes": memory, "memory_limit_bytes": limit, "spilled_bytes": spilled,
            "tasks": tasks}


def tolerating_slowness(check: Check, answered_at: float | None, now: float,
                        grace_s: float) -> Check:
    """A critical check that is only slow (no answer in time, no error) counts as not critical
    while it answered within the last `grace_s`: a busy moment is `degraded`, a catalog that
    stays silent (or never answered) is `unhealthy`."""
    if (check.ok or not check.detail.get("slow") or answered_at is None
            or now - answered_at >= grace_s):
        return check
    return replace(check, critical=False,
                   detail={**check.detail, "last_answer_s_ago": round(now - answered_at, 1)})
