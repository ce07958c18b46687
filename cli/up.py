"""`lakehouse up`: the whole system on one machine, in the foreground, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import errno
import logging
import signal
import socket
import threading
import time
from types import FrameType

from rich.console import Console
from rich.table import Table

from api.services import SPECS
from cli.log_rotation import CHECK_EVERY_S, rotate_due
from cli.restart_policy import GiveUp, decide_restart
from cli.supervisor import Child, StartupFailed, Supervisor, clean_leftovers
from deployments import applied, local
from lakehouse.cluster import dask_client, forget, usable_workers, worker_verdicts
from lakehouse.config import Settings
from lakehouse.storage.location import StorageRoot
from lakehouse.telemetry.processes import write_restarts

console = Console(stderr=True)
log = logging.getLogger(__name__)

PREFECT_START_TIMEOUT_S = 120.0
DASK_START_TIMEOUT_S = 60.0
SERVICES_START_TIMEOUT_S = 60.0
DEPLOY_TIMEOUT_S = 120.0


def _summary(settings: Settings, elapsed: float) -> Table:
    host = settings.bind_host if settings.bind_host != "0.0.0.0" else "127.0.0.1"
    dashboard_host = settings.dask_scheduler_address.split("://")[-1].rsplit(":", 1)[0]
    table = Table(title=f"Storage Control Plane is up ({elapsed:.1f}s) — Ctrl-C stops everything")
    table.add_column("what")
    table.add_column("where", no_wrap=True)
    table.add_column("API docs", no_wrap=True)
    table.add_row("Prefect UI", settings.prefect_api_url.removesuffix("/api"), "")
    table.add_row("Dask dashboard",
                  f"http://{dashboard_host}:{settings.dask_dashboard_port}/status", "")
    table.add_row("Dask scheduler", settings.dask_scheduler_address, "")
    for spec in SPECS.values():
        base = f"http://{host}:{spec.port(settings)}"
        table.add_row(spec.title, base, f"{base}/docs")
    table.add_row("data", str(settings.data_dir), "")
    table.add_row("logs of each process", str(settings.log_dir), "")
    return table


LOCAL_ONLY_PORTS = ("PREFECT_PORT", "DASK_SCHEDULER_PORT", "DASK_DASHBOARD_PORT")


def listening_ports(settings: Settings) -> dict[str, int]:
    """Each port `lakehouse up` will listen on, by the setting that chooses it."""
    ports = {f"{spec.service.value.upper()}_PORT": spec.port(settings) for spec in SPECS.values()}
    if not settings.distributed_mode:
        ports |= {name: int(getattr(settings, name.lower())) for name in LOCAL_ONLY_PORTS}
    return ports


def busy_ports(settings: Settings) -> list[str]:
    """The ports something else already listens on, each named by its setting."""
    busy = []
    for name, port in listening_ports(settings).items():
        with socket.socket() as sock:
            # The servers set SO_REUSEADDR too, so a port in TIME_WAIT is not "busy".
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((settings.bind_host, port))
            except OSError as exc:
                why = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                busy.append(f"{name}={port} ({why})")
    return busy


def storage_refusal(settings: Settings) -> str | None:
    """Why starting would risk acknowledged data, or None. With a cluster of its own the
    workers run here and see the data folder; with DISTRIBUTED_MODE the scheduler's workers
    are asked (lakehouse/worker_storage.py) and a local-folder STORAGE_ROOT that some of them
    do not see is refused: the control plane would keep their work for itself, and a setting
    that only works by accident is better fixed before the first record."""
    if not settings.distributed_mode:
        return None
    client = dask_client(settings.dask_scheduler_address, settings.storage_root)
    if client is None:
        return None  # no scheduler yet: the control plane checks workers as they come
    try:
        usable_workers(client)
        excluded = {w: v for w, v in worker_verdicts(settings.dask_scheduler_address).items()
                    if not v.usable}
    finally:
        forget(settings.dask_scheduler_address)
    if not excluded:
        return None
    where = ", ".join(f"{w} on {v.host or 'an unknown host'}" for w, v in sorted(excluded.items()))
    if StorageRoot.parse(settings.storage_root).is_local:
        return (f"STORAGE_ROOT={settings.storage_root} is a folder of this host, and the Dask "
                f"workers {where} do not see it: data they wrote would be lost to the control "
                "plane. Set STORAGE_ROOT to shared storage (s3://bucket/prefix, the same on "
                "every host), or run the workers on this host.")
    console.print(f"[yellow]warning:[/yellow] the Dask workers {where} do not see "
                  f"STORAGE_ROOT and get no work until they do: "
                  f"{next(iter(excluded.values())).reason}")
    return None


def run_up(settings: Settings) -> int:
    try:
        cleaned = clean_leftovers(settings.run_dir)
    except StartupFailed as exc:
        console.print(f"[red]cannot start:[/red] {exc}")
        return 1
    if cleaned:
        console.print(f"stopped what an earlier, killed `lakehouse up` left running: "
                      f"{', '.join(cleaned)}")
    refused = storage_refusal(settings)
    if refused:
        console.print(f"[red]cannot start:[/red] {refused}")
        return 1
    busy = busy_ports(settings)
    if busy:
        console.print(f"[red]cannot start:[/red] {', '.join(busy)} on {settings.bind_host}. "
                      "Stop what listens there (an earlier `lakehouse up`?) or choose other "
                      "ports with these settings in .env.")
        return 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    for folder in (settings.data_dir, settings.log_dir, settings.prefect_home, settings.dask_dir):
        folder.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(local.child_env(settings), settings.log_dir, settings.run_dir)
    write_restarts(settings.run_dir, {})
    started = time.monotonic()
    code = 0
    try:
        code = _start_everything(settings, supervisor, stop)
        if code == 0:
            console.print(_summary(settings, time.monotonic() - started))
            code = _supervise(settings, supervisor, stop)
    finally:
        console.print("stopping…")
        t0 = time.monotonic()
        killed = supervisor.stop_all(settings.shutdown_timeout_s)
        note = f" (killed after the grace period: {', '.join(killed)})" if killed else ""
        console.print(f"stopped every process in {time.monotonic() - t0:.1f}s{note}")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _rotate_logs(settings: Settings) -> None:
    try:
        rotated = rotate_due(settings.log_dir, int(settings.log_max_mb * 1024 * 1024),
                             settings.log_keep_files)
    except OSError as exc:  # a full or read-only disk: the platform goes on, and says so
        log.warning("could not rotate the log files", extra={"error": str(exc)})
        return
    if rotated:
        log.info("log files rotated", extra={"files": rotated})


def _supervise(settings: Settings, supervisor: Supervisor, stop: threading.Event) -> int:
    """Until stopped: restart a child that exits on its own, after a back-off; give up (stopping
    the rest, exit 1) when one keeps crashing. Restarts are counted in RUN_DIR for /health and
    /metrics."""
    crashes: dict[str, list[float]] = {}
    restarts: dict[str, dict[str, object]] = {}
    rotate_at = time.monotonic() + CHECK_EVERY_S
    while not stop.wait(0.5):
        if time.monotonic() >= rotate_at:
            rotate_at = time.monotonic() + CHECK_EVERY_S
            _rotate_logs(settings)
        for child in supervisor.exited():
            name, exit_code, now = child.spec.name, child.process.returncode, time.time()
            crashes.setdefault(name, []).append(now)
            decided = decide_restart(crashes[name], now)
            if isinstance(decided, GiveUp):
                console.print(f"[red]{name} exited with {exit_code} and is not restarted:[/red] "
                              f"{decided.reason} ({child.log_path}); stopping the rest")
                return 1
            console.print(f"[yellow]{name} exited with {exit_code}[/yellow]; restarting it in "
                          f"{decided.delay_s:.0f} s (crash {decided.attempt} in a row; log "
                          f"{child.log_path})")
            log.warning("child crashed; restarting", extra={
                "child": name, "exit_code": exit_code, "delay_s": decided.delay_s})
            if stop.wait(decided.delay_s):
                return 0
            supervisor.restart(child)
            record = restarts.setdefault(name, {"restarts": 0})
            record.update(restarts=int(str(record["restarts"])) + 1, last_at=time.time(),
                          last_exit=exit_code)
            write_restarts(settings.run_dir, restarts)
    return 0


def _start_everything(settings: Settings, supervisor: Supervisor, stop: threading.Event) -> int:
    try:
        with console.status("starting…") as status:
            prefect: Child | None = None
            if not settings.distributed_mode:
                status.update("starting the Prefect server and the Dask scheduler…")
                migrated = applied.database_is_current(settings)
                prefect = supervisor.start(local.prefect_server(settings, migrate=not migrated))
                scheduler = supervisor.start(local.dask_scheduler(settings))
                supervisor.wait_ready(scheduler, DASK_START_TIMEOUT_S, stop)
                if settings.dask_workers > 0:
                    supervisor.start(local.dask_workers(settings))
            # The control plane starts while Prefect migrates its database: it does not need
            # Prefect to serve, and its health reports Prefect's state honestly meanwhile.
            status.update("starting the seven services…")
            services = supervisor.start(local.control_plane(settings))
            if prefect is not None:
                status.update("waiting for the Prefect server…")
                supervisor.wait_ready(prefect, PREFECT_START_TIMEOUT_S, stop)
                applied.mark_database_current(settings)
            if stop.is_set():
                return 130
            if not applied.is_applied(settings):
                status.update("applying the work pool and the deployments of prefect.yaml…")
                supervisor.run_once("prefect-work-pool", local.work_pool_command(settings),
                                    local.PROJECT_DIR, DEPLOY_TIMEOUT_S)
                supervisor.run_once("prefect-deploy", local.deploy_command(settings),
                                    local.PROJECT_DIR, DEPLOY_TIMEOUT_S)
                applied.mark_applied(settings)
            supervisor.start(local.prefect_worker(settings))
            status.update("waiting for the services…")
            supervisor.wait_ready(services, SERVICES_START_TIMEOUT_S, stop)
    except StartupFailed as exc:
        if stop.is_set():
            return 130
        console.print(f"[red]could not start:[/red] {exc}")
        return 1
    return 130 if stop.is_set() else 0
