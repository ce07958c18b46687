"""Serve one or all services from one process: one uvicorn server per port, one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator, Sequence
from typing import Any

import uvicorn

from api.alert_rounds import evaluate_forever
from api.app import create_app
from api.core import Core
from api.early_shed import http_protocol
from api.loop_watch import keep_limits
from api.middleware import ShedLines
from api.services import SPECS, Service
from flows.ingest import flush
from lakehouse.ingest.flush import write_locally
from lakehouse.ingest.flush_policy import FlushThresholds
from lakehouse.ingest.flush_trigger import FlushTrigger
from tasks.flush import dask_writer

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Several servers share this process; `serve` below owns the signals for all of them.
        yield


def build_servers(core: Core, services: Sequence[Service]) -> list[uvicorn.Server]:
    servers: list[uvicorn.Server] = []
    for service in services:
        spec = SPECS[service]
        shed_lines = ShedLines()
        config = uvicorn.Config(
            create_app(service, core, shed_lines),
            host=core.settings.bind_host,
            port=spec.port(core.settings),
            log_config=None,  # our JSON logging is already configured
            access_log=False,
            timeout_graceful_shutdown=5,
            lifespan="off",
            # httptools, the C parser (h11 costs a large share of a small request), answering
            # what the admission limits refuse before the app is started (api/early_shed.py).
            http=http_protocol(service, core, shed_lines),
        )
        servers.append(_Server(config))
    return servers


def start_flushing(core: Core) -> FlushTrigger | None:
    """The ingest flow's trigger, in the process that owns the WAL."""
    if core.flusher is None or not core.settings.flush_enabled:
        return None
    settings = core.settings
    write = dask_writer(settings.dask_scheduler_address) if settings.flush_on_dask else (
        write_locally)
    flusher = core.flusher

    def flush_now(reason: str) -> dict[str, Any]:
        return flush(flusher, write, reason)

    trigger = FlushTrigger(flusher.service, flush_now, FlushThresholds(
        settings.flush_max_bytes, settings.flush_max_rows, settings.flush_max_age_s),
        settings.flush_check_interval_s)
    trigger.start()
    core.flush_trigger = trigger
    return trigger


async def serve(core: Core, services: Sequence[Service]) -> None:
    servers = build_servers(core, services)
    trigger = start_flushing(core)
    if core.mirror_keeper is not None:
        core.mirror_keeper.start()  # core.close() stops it
    loop = asyncio.get_running_loop()
    # The process serving the Monitoring service evaluates the alert rules (one evaluator).
    rounds = (asyncio.create_task(evaluate_forever(core), name="alert-rounds")
              if Service.MONITORING in services else None)
    limits = asyncio.create_task(keep_limits(core), name="admission-limits")

    def stop(sig: signal.Signals) -> None:
        log.info("stopping", extra={"signal": sig.name})
        for server in servers:
            if server.should_exit:
                server.force_exit = True  # a second signal: stop without waiting
            server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        for service in services:
            spec = SPECS[service]
            log.info("serving", extra={"service": spec.title, "port": spec.port(core.settings)})
        results = await asyncio.gather(*(s.serve() for s in servers), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed or any(not s.started for s in servers):
            raise SystemExit(1)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if rounds is not None:
            rounds.cancel()
        limits.cancel()
        if trigger is not None:
            await asyncio.to_thread(trigger.stop)  # flushes what is left first
        core.close()
