"""The processes `lakehouse up` runs on one machine, as command lines and environments.

Pure description: what to start, with which arguments and environment. Starting, watching and
stopping them is the supervisor's job (cli/supervisor.py).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from dotenv import dotenv_values

from lakehouse.cluster import WORKER_ENV
from lakehouse.config import Settings

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    ready_url: str | None = None  # GET answers 200 once the process serves
    ready_port: int | None = None  # or: a TCP connect succeeds
    cwd: Path = PROJECT_DIR
    extra_env: dict[str, str] = field(default_factory=dict)


def _bin(name: str) -> str:
    """A console script of this environment (next to the running interpreter)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def child_env(settings: Settings) -> dict[str, str]:
    """The environment every child gets: our settings made absolute, Prefect pointed at DATA_DIR.
    What `.env` sets is exported too: the flow runs a Prefect worker starts run in a folder of
    their own (the deployments carry no working directory: prefect.yaml), where no `.env` is."""
    env = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    env.update(os.environ)
    env.update({
        "DATA_DIR": str(settings.data_dir),
        "PREFECT_API_URL": settings.prefect_api_url,
        "PREFECT_HOME": str(settings.prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_API_DATABASE_CONNECTION_URL":
            f"sqlite+aiosqlite:///{settings.prefect_home / 'prefect.db'}",
        "DASK_SCHEDULER_ADDRESS": settings.dask_scheduler_address,
        "CATALOG_URL": settings.catalog_url,
        "STORAGE_ROOT": settings.storage_root,
        "PYTHONUNBUFFERED": "1",
    })
    return env


def prefect_server(settings: Settings, *, migrate: bool = True) -> ProcessSpec:
    return ProcessSpec(
        "prefect-server",
        [_bin("prefect"), "server", "start", "--host", settings.bind_host,
         "--port", str(settings.prefect_port)],
        ready_url=settings.prefect_api_url.rstrip("/") + "/health",
        extra_env={"PREFECT_API_DATABASE_MIGRATE_ON_START": "true" if migrate else "false"},
    )


NO_WORKERS_TIMEOUT = "60s"


def dask_scheduler(settings: Settings) -> ProcessSpec:
    return ProcessSpec(
        "dask-scheduler",
        [_bin("dask"), "scheduler", "--host", settings.bind_host,
         "--port", str(settings.dask_scheduler_port),
         # tls:// in DASK_SCHEDULER_ADDRESS: certificates come from Dask's own configuration
         # (DASK_DISTRIBUTED__COMM__TLS__…), which the scheduler and workers read too.
         "--protocol", settings.dask_scheduler_address.split("://", 1)[0]
         if "://" in settings.dask_scheduler_address else "tcp",
         "--dashboard-address", f"{settings.bind_host}:{settings.dask_dashboard_port}"],
        ready_port=settings.dask_scheduler_port,
        # Jobs go only to workers that see the storage root (lakehouse/worker_storage.py):
        # when every such worker is gone, a job fails after this instead of waiting for one
        # forever, and the control plane runs it itself.
        extra_env={"DASK_DISTRIBUTED__SCHEDULER__NO_WORKERS_TIMEOUT": NO_WORKERS_TIMEOUT},
    )


def dask_workers(settings: Settings) -> ProcessSpec:
    return ProcessSpec(
        "dask-workers",
        [_bin("dask"), "worker", settings.dask_scheduler_address,
         "--nworkers", str(settings.dask_workers),
         "--nthreads", str(settings.dask_threads_per_worker),
         "--memory-limit", settings.dask_memory_limit,
         "--local-directory", str(settings.dask_dir),
         "--name", "lakehouse-worker",
         "--host", settings.bind_host,
         "--dashboard-address", f"{settings.bind_host}:0"],
        extra_env=dict(WORKER_ENV),
    )


def work_pool_command(settings: Settings) -> list[str]:
    # --overwrite makes it idempotent: the second `lakehouse up` finds the pool and keeps going.
    return [_bin("prefect"), "work-pool", "create", settings.prefect_work_pool,
            "--type", "process", "--overwrite"]


def prefect_file(settings: Settings) -> Path:
    """prefect.yaml as it is, or a copy under PREFECT_HOME with the settings applied: every
    deployment in PREFECT_WORK_POOL (the file names the default pool, and `prefect deploy
    --pool` does not override a pool the file names), and with MAINTENANCE_INTERVAL_S set,
    every deployment run every that many seconds."""
    source = PROJECT_DIR / "prefect.yaml"
    spec = yaml.safe_load(source.read_text())
    deployments = spec.get("deployments", [])
    pools = {d.get("work_pool", {}).get("name") for d in deployments}
    if not settings.maintenance_interval_s and pools == {settings.prefect_work_pool}:
        return source
    for deployment in deployments:
        deployment["work_pool"] = {**deployment.get("work_pool", {}),
                                   "name": settings.prefect_work_pool}
        if settings.maintenance_interval_s:
            deployment["schedules"] = [{"interval": settings.maintenance_interval_s,
                                        "active": True}]
    target = settings.prefect_home / "prefect.settings.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def deploy_command(settings: Settings) -> list[str]:
    return [_bin("prefect"), "deploy", "--all", "--no-prompt",
            "--pool", settings.prefect_work_pool,
            "--prefect-file", str(prefect_file(settings))]


def prefect_worker(settings: Settings) -> ProcessSpec:
    return ProcessSpec(
        "prefect-worker",
        [_bin("prefect"), "worker", "start", "--pool", settings.prefect_work_pool,
         "--type", "process", "--name", f"lakehouse-{settings.prefect_work_pool}"],
    )


def control_plane(settings: Settings) -> ProcessSpec:
    return ProcessSpec(
        "control-plane",
        [_bin("lakehouse"), "serve"],
        ready_url=f"http://{settings.bind_host}:{settings.monitoring_port}/health",
    )
