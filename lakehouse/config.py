"""Settings: one class, read from the environment and `.env`, built only in entry points.

Every address is a setting, and every piece of local state lives below `DATA_DIR`, so a second
instance is a second `DATA_DIR` (and other ports).
"""

from __future__ import annotations

import atexit
import enum
import ipaddress
import os
import shutil
import tempfile
import uuid
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lakehouse.errors import ConfigurationError

# Known to be public: it is in this file. Only ever accepted with ENVIRONMENT=development.
DEVELOPMENT_JWT_SECRET = "development-only-secret-change-me-before-production-0000"
MIN_JWT_SECRET_BYTES = 32
DEVELOPMENT_ADMIN_PASSWORD = "password"  # the public default: refused off loopback


@cache
def tests_clickhouse_dsn() -> str:
    """The embedded ClickHouse folder the tests of this process share, removed at its exit."""
    folder = Path(tempfile.gettempdir()) / f"lakehouse-tests-clickhouse-{os.getpid()}"
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return f"chdb://{folder}"


def is_loopback(host: str) -> bool:
    """Whether a bind address reaches this machine only (a name other than localhost: no)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Every setting of the platform; `.env.example` lists each with its default."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    environment: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    # The log files `lakehouse up` writes (one a process, in DATA_DIR/logs) are rotated past
    # this size, keeping this many older ones (cli/log_rotation.py).
    log_max_mb: float = Field(default=64, gt=0)
    log_keep_files: int = Field(default=3, ge=1, le=100)
    data_dir: Path = Path("data")
    # False: `lakehouse up` starts a local Dask cluster and Prefect server. True: it connects to
    # the ones named by DASK_SCHEDULER_ADDRESS and PREFECT_API_URL and starts neither.
    distributed_mode: bool = False

    bind_host: str = Field(default="127.0.0.1", validation_alias=AliasChoices("BIND_HOST", "HOST"))
    auth_port: int = 8090
    tenant_port: int = 8000
    operation_port: int = 8081
    cbo_port: int = 8082
    catalog_port: int = 8083
    monitoring_port: int = 8084
    interpreter_port: int = 8085

    prefect_port: int = 4200
    prefect_api_url: str = ""  # default: http://127.0.0.1:{prefect_port}/api
    prefect_work_pool: str = "lakehouse"

    dask_scheduler_address: str = ""  # default: tcp://127.0.0.1:{dask_scheduler_port}
    dask_scheduler_port: int = 8786
    dask_dashboard_port: int = 8787
    dask_workers: int = Field(default=2, ge=0)
    dask_threads_per_worker: int = Field(default=1, ge=1)
    dask_memory_limit: str = "auto"

    catalog_url: str = ""  # default: sqlite:///{data_dir}/catalog.db
    storage_root: str = ""  # default: file://{data_dir}/warehouse
    clickhouse_dsn: str = ""  # default: chdb:///{data_dir}/clickhouse
    # The ClickHouse databases of this platform are {prefix}{tenant}: platforms sharing one
    # ClickHouse server keep apart by their prefixes.
    clickhouse_database_prefix: str = Field(default="lakehouse_",
                                            pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")
    # How often the control plane looks for served tables whose mirror lags (a flush, a load
    # or a compaction of this process wakes it at once).
    serving_catch_up_interval_s: float = Field(default=5.0, gt=0)

    jwt_secret: str = DEVELOPMENT_JWT_SECRET
    access_token_ttl_s: int = Field(default=900, ge=10)
    refresh_token_ttl_s: int = Field(default=7 * 24 * 3600, ge=60)
    bootstrap_admin_user: str = "admin"
    bootstrap_admin_password: str = DEVELOPMENT_ADMIN_PASSWORD
    bootstrap_admin_tenant: str = "default"
    # OWASP's argon2id minimum; tests lower it only where they hash many passwords.
    argon2_memory_kib: int = Field(default=19 * 1024, ge=8)
    argon2_time_cost: int = Field(default=2, ge=1)
    # Login throttling (lakehouse/auth/throttle.py): failures a user name, and a client address,
    # may have before each attempt waits 1 s, doubling up to the cap; forgotten after a quiet
    # window.
    login_user_free_failures: int = Field(default=5, ge=1)
    login_address_free_failures: int = Field(default=20, ge=1)
    login_failure_window_s: float = Field(default=900.0, gt=0)
    login_max_backoff_s: float = Field(default=300.0, ge=1)

    # Every request body: at most this many bytes (the record writes, POST /data and
    # /data/store, take INGEST_MAX_BODY_BYTES instead), and arrays and objects nested at most
    # this deep (parsers recurse per level: far deeper crashes the process; see
    # lakehouse/json_nesting.py). Records' payloads stop at 32 levels in any case.
    request_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    json_max_depth: int = Field(default=64, ge=2, le=256)

    wal_sync: bool = True
    wal_open_timeout_s: float = Field(default=30.0, gt=0)
    ingest_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    ingest_max_records: int = Field(default=10_000, ge=1)
    ingest_max_inflight: int = Field(default=32, ge=1)
    # The writes limit never falls below this while the loop lags, and a tenant holding fewer
    # writes in flight is let in whatever the others hold (lakehouse/fair_share.py, least share).
    ingest_min_inflight: int = Field(default=8, ge=1)
    # The writes and queries limits shrink while the event loop lags past this and grow back
    # when it keeps up (lakehouse/loop_pressure.py); 0 keeps them fixed.
    admission_target_lag_ms: float = Field(default=20.0, ge=0)
    ingest_max_unflushed_bytes: int = Field(default=1024**3, ge=1)
    ingest_max_unflushed_age_s: float = Field(default=0.0, ge=0)
    # NDJSON batches of new records are read and checked by Arrow whole (see
    # lakehouse/ingest/arrow_read.py); false checks every record in Python, as before.
    ingest_arrow_batches: bool = True
    tenant_write_rate: float = Field(default=250_000.0, ge=0)
    tenant_write_burst: float = Field(default=500_000.0, ge=1)

    flush_enabled: bool = True
    flush_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    flush_max_rows: int = Field(default=500_000, ge=1)
    flush_max_age_s: float = Field(default=60.0, ge=0)
    flush_check_interval_s: float = Field(default=1.0, gt=0)
    flush_on_dask: bool = True

    # Where `lakehouse load` and POST /data/load may read from: comma-separated local folders
    # and URIs (s3://bucket/prefix?endpoint_override=…). Empty: DATA_DIR and its subfolders.
    load_roots: str = ""
    load_on_dask: bool = True

    cleanup_grace_s: float = Field(default=3600.0, ge=0)
    cleanup_orphan_age_s: float = Field(default=86_400.0, ge=0)

    compaction_target_file_mb: float = Field(default=128.0, gt=0)
    compaction_min_files: int = Field(default=4, ge=2)
    compaction_max_files_active: int = Field(default=64, ge=1)
    compaction_active_window_s: float = Field(default=600.0, ge=0)
    compaction_on_dask: bool = True
    # 0: the deployments keep the schedules of prefect.yaml; N > 0: every one runs each N
    # seconds instead (a test profile that wants to see scheduled runs fire).
    maintenance_interval_s: float = Field(default=0.0, ge=0)

    # Queries (Operation Node, Tenant Node /data/execute, CBO Engine).
    query_max_result_rows: int = Field(default=1_000_000, ge=1)
    query_timeout_s: float = Field(default=300.0, gt=0)
    query_max_bytes_scanned: int = Field(default=64 * 1024**3, ge=1)
    query_max_concurrent_per_tenant: int = Field(default=4, ge=1)
    query_max_concurrent: int = Field(default=8, ge=1)
    # The queries limit never falls below this while the loop lags, and a tenant running fewer
    # is let in whatever the others run (lakehouse/fair_share.py, least share).
    query_min_concurrent: int = Field(default=2, ge=1)
    query_track_threshold_s: float = Field(default=1.0, ge=0)
    query_on_dask: bool = True
    query_results_kept: int = Field(default=200, ge=1)
    query_results_kept_per_tenant: int = Field(default=20, ge=1)
    query_result_spill_mb: float = Field(default=64.0, ge=0)
    query_unflushed_tail_mb: float = Field(default=256.0, ge=0)
    query_memory_limit_mb: int = Field(default=4096, ge=0)  # 0: DuckDB's default
    query_file_reader: Literal["duckdb", "arrow"] = "duckdb"
    optimizer_broadcast_threshold_mb: float = Field(default=64.0, ge=0)
    optimizer_target_fragment_mb: float = Field(default=32.0, gt=0)
    optimizer_single_node_threshold_mb: float = Field(default=512.0, ge=0)
    optimizer_learn_split_threshold: bool = True

    health_timeout_s: float = Field(default=2.0, gt=0)
    alert_rules_file: str = ""  # empty: the shipped lakehouse/telemetry/alert_rules.yaml
    alert_eval_interval_s: float = Field(default=5.0, gt=0)
    alert_webhook_url: str = ""  # Alertmanager-shaped notifications on each transition
    shutdown_timeout_s: float = Field(default=12.0, gt=0)

    @model_validator(mode="after")
    def _fill_derived_addresses(self) -> Settings:
        data_dir = self.data_dir.expanduser().resolve()
        derived: dict[str, Any] = {"data_dir": data_dir}
        if not self.prefect_api_url:
            derived["prefect_api_url"] = f"http://127.0.0.1:{self.prefect_port}/api"
        if not self.dask_scheduler_address:
            derived["dask_scheduler_address"] = f"tcp://127.0.0.1:{self.dask_scheduler_port}"
        if not self.catalog_url:
            derived["catalog_url"] = f"sqlite:///{data_dir / 'catalog.db'}"
        if not self.storage_root:
            derived["storage_root"] = (data_dir / "warehouse").as_uri()
        if not self.clickhouse_dsn:
            derived["clickhouse_dsn"] = f"chdb://{data_dir / 'clickhouse'}"
        if not self.load_roots.strip():
            derived["load_roots"] = str(data_dir)
        for name, value in derived.items():
            object.__setattr__(self, name, value)
        return self

    # --- derived paths: the one place that knows the layout of DATA_DIR ---------------------
    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "wal"

    @property
    def prefect_home(self) -> Path:
        return self.data_dir / "prefect"

    @property
    def dask_dir(self) -> Path:
        return self.data_dir / "dask"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        """What `lakehouse up` keeps of its children: their pids, their restarts."""
        return self.data_dir / "run"

    @property
    def load_root_list(self) -> tuple[str, ...]:
        return tuple(root.strip() for root in self.load_roots.split(",") if root.strip())

    @property
    def is_development(self) -> bool:
        return self.environment is Environment.DEVELOPMENT

    @property
    def is_deployed(self) -> bool:
        """Staging or production: where a bootstrap user must not stay usable."""
        return self.environment in (Environment.STAGING, Environment.PRODUCTION)

    def check_secrets(self) -> None:
        """Refuse to run outside development with a public or short JWT secret, and to serve
        development's public defaults (the JWT secret, the bootstrap admin's password) on any
        address but loopback."""
        if self.is_development:
            public = [name for name, value, default in (
                ("JWT_SECRET", self.jwt_secret, DEVELOPMENT_JWT_SECRET),
                ("BOOTSTRAP_ADMIN_PASSWORD", self.bootstrap_admin_password,
                 DEVELOPMENT_ADMIN_PASSWORD)) if value == default]
            if public and not is_loopback(self.bind_host):
                raise ConfigurationError(
                    f"ENVIRONMENT=development with the public {' and '.join(public)} serves "
                    f"on loopback only, and BIND_HOST is {self.bind_host!r}",
                    details={"fix": "set ENVIRONMENT=production and JWT_SECRET (create users "
                             "with `lakehouse users create`), or BIND_HOST=127.0.0.1",
                             "public_defaults": public})
            return
        if self.jwt_secret == DEVELOPMENT_JWT_SECRET:
            raise ConfigurationError(
                "JWT_SECRET is the public development default",
                details={"fix": "set JWT_SECRET to a random value of at least 32 bytes, "
                         "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"},
            )
        if len(self.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigurationError(
                f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes",
                details={"length": len(self.jwt_secret.encode())},
            )

    @classmethod
    def for_tests(cls, tmp: Path, **overrides: Any) -> Settings:
        """Settings for a test: all state under `tmp`, cheap password hashing, no `.env`."""
        values: dict[str, Any] = {
            "environment": Environment.TEST,
            "data_dir": tmp,
            "jwt_secret": "test-secret-" + "x" * 40,
            "argon2_memory_kib": 64,
            "argon2_time_cost": 1,
            "prefect_api_url": "http://127.0.0.1:9/api",
            "dask_scheduler_address": "tcp://127.0.0.1:9",
            # Generous: a loaded CI machine can take a while to hand the probe a thread.
            "health_timeout_s": 5.0,
            # Plans must not change shape with the machine's speed mid-test; the tests of
            # the learning turn it on.
            "optimizer_learn_split_threshold": False,
            # chDB holds one folder per process: the tests of a process share it, each
            # Settings with databases of its own.
            "clickhouse_dsn": tests_clickhouse_dsn(),
            "clickhouse_database_prefix": f"t{uuid.uuid4().hex[:10]}_",
        }
        values.update(overrides)
        return cls(_env_file=None, **values)  # type: ignore[call-arg]
