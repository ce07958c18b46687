"""The one shared core every service app is built from: settings, catalog, auth, telemetry."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from lakehouse.auth.identity import Role
from lakehouse.auth.passwords import Passwords
from lakehouse.auth.service import AuthService
from lakehouse.auth.throttle import login_throttle
from lakehouse.auth.tokens import AccessTokens
from lakehouse.catalog.auth_store import SqlAuthStore
from lakehouse.catalog.declarations import SqlDeclarations, TableDeclarations
from lakehouse.catalog.engine import catalog_engine
from lakehouse.catalog.lake import Catalog
from lakehouse.catalog.lake_sql import SqlCatalog
from lakehouse.catalog.table_options import SqlTableOptions, TableOptionsStore
from lakehouse.config import Settings
from lakehouse.errors import ConfigurationError, NotServed
from lakehouse.executor.engine import QueryEngine
from lakehouse.executor.queries import QueryRegistry, ResultLimits
from lakehouse.executor.sandbox import set_memory_limit
from lakehouse.executor.service import QueryService
from lakehouse.executor.serving_route import read_limits
from lakehouse.fair_share import Slots
from lakehouse.ingest.admission import BacklogLimits
from lakehouse.ingest.flush import Flusher
from lakehouse.ingest.flush_trigger import FlushTrigger
from lakehouse.ingest.flushed_records import ParquetRecords
from lakehouse.ingest.keys import TableRef
from lakehouse.ingest.meter import WriteMeter
from lakehouse.ingest.reader import RecordReader
from lakehouse.ingest.service import IngestLimits, IngestService
from lakehouse.optimizer.cost_model import MIB, CostModel
from lakehouse.schema import FieldType
from lakehouse.serving.keeper import MirrorKeeper
from lakehouse.serving.store import ServingStore, open_store
from lakehouse.storage.location import StorageRoot
from lakehouse.telemetry.alerting import Alerting, load_rules
from lakehouse.telemetry.history import History
from lakehouse.telemetry.metrics import Metrics
from lakehouse.telemetry.probes import (
    Check,
    probe_catalog,
    probe_dask,
    probe_prefect,
    tolerating_slowness,
)
from lakehouse.telemetry.processes import restarts_check, restarts_collector

log = logging.getLogger(__name__)

HISTORY_S = 3600.0  # what the dashboard charts without an external Prometheus
HISTORY_POINTS = 720  # an hour at the default alert interval (5 s)
HEALTH_CACHE_S = 2.0  # a check this fresh is answered as it is …
HEALTH_STALE_S = 15.0  # … this old, at once while it is probed again (Core.checks)
ADDS_FILES = ("ingest", "load", "compaction")  # runs after which a mirror may lag
# How long the catalog may be slow to answer the probe before health calls it down.
CATALOG_SLOW_GRACE_S = 30.0


@dataclass
class Core:
    settings: Settings
    engine: Engine
    auth: AuthService
    # Writes in flight, shared fairly between tenants (api/middleware.py WriteAdmission); its
    # capacity follows the event loop's lag (api/loop_watch.py).
    write_slots: Slots
    declarations: TableDeclarations | None = None
    table_options: TableOptionsStore | None = None
    catalog: Catalog | None = None
    storage: StorageRoot | None = None
    ingest: IngestService | None = None
    flusher: Flusher | None = None
    flush_trigger: FlushTrigger | None = None  # once the server runs
    reader: RecordReader | None = None
    queries: QueryService | None = None
    metrics: Metrics = field(default_factory=Metrics)
    alerting: Alerting | None = None
    history: History = field(default_factory=lambda: History(HISTORY_POINTS))
    started_at: float = field(default_factory=time.time)
    stop_observing_runs: Callable[[], None] = field(default=lambda: None)
    mirror_keeper: MirrorKeeper | None = None  # in the process that flushes
    _serving: ServingStore | None = None
    _checks: dict[str, tuple[float, Check]] = field(default_factory=dict)
    _probing: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _catalog_answered_at: float | None = None  # never: a silent catalog is down at once

    async def checks(self, *, dask: bool, wal: bool = False) -> list[Check]:
        """The state of what the services depend on. A check probed within HEALTH_CACHE_S is
        answered as it is. One older, up to HEALTH_STALE_S, is answered at once while one
        probe refreshes it in the background: under load a probe (Prefect over HTTP, the
        catalog from a thread) can take seconds, and every health poll that fell due behind
        it waited as long (bench/resilience.py: health's p99 1.5 to 2.9 s under the flood).
        Older still, or never probed, the answer waits for the probe."""
        now = time.monotonic()
        wanted = ["catalog", "prefect"] + (["dask"] if dask else [])
        waiting = []
        for name in wanted:
            kept = self._checks.get(name)
            age = None if kept is None else now - kept[0]
            if age is not None and age <= HEALTH_CACHE_S:
                continue
            probing = self._refresh(name)
            if age is None or age > HEALTH_STALE_S:
                waiting.append(asyncio.shield(probing))  # a caller gone does not stop it
        if waiting:
            await asyncio.gather(*waiting)
        found = [self._checks[n][1] for n in wanted]
        if wal and self.ingest is not None:
            found.append(self._wal_check())  # read from memory: always as it is now
        supervised = restarts_check(self.settings.run_dir)  # under `lakehouse up` only
        return found if supervised is None else [*found, supervised]

    def _refresh(self, name: str) -> asyncio.Task[None]:
        """The probe of `name` under way on this loop, or a new one: one at a time."""
        loop = asyncio.get_running_loop()
        probing = self._probing.get(name)
        if probing is None or probing.done() or probing.get_loop() is not loop:
            probing = loop.create_task(self._probe_and_keep(name), name=f"health-{name}")
            self._probing[name] = probing
        return probing

    async def _probe_and_keep(self, name: str) -> None:
        check = await self._probe(name)
        self._checks[name] = (time.monotonic(), check)

    async def _probe(self, name: str) -> Check:
        timeout = self.settings.health_timeout_s
        if name == "catalog":
            check = await probe_catalog(self.engine, timeout)
            now = time.monotonic()
            if check.ok:
                self._catalog_answered_at = now
            return tolerating_slowness(check, self._catalog_answered_at, now,
                                       CATALOG_SLOW_GRACE_S)
        if name == "prefect":
            return await probe_prefect(self.settings.prefect_api_url, timeout)
        return await probe_dask(self.settings.dask_scheduler_address, timeout)

    def _wal_check(self) -> Check:
        if self.ingest is None:
            return Check("wal", False, False, 0.0, {"error": "not open in this process"})
        degraded = self.ingest.wal.degraded
        stats = self.ingest.committer.stats()
        backlog = self.ingest.backlog()
        detail: dict[str, object] = {
            "last_seq": self.ingest.wal.last_seq(), "group_commits": stats.commits,
            "mean_group": round(stats.mean_group, 2), "unflushed_bytes": backlog.unflushed_bytes,
        }
        if degraded is not None:
            detail["error"] = degraded
        return Check("wal", degraded is None, False, 0.0, detail)

    def dask_client(self) -> Any:
        """The Dask cluster's client (shared), or None when no scheduler answers."""
        from lakehouse.cluster import dask_client

        return dask_client(self.settings.dask_scheduler_address, self.settings.storage_root)

    def serving_store(self) -> ServingStore:
        """The ClickHouse serving store (CLICKHOUSE_DSN), opened on first use: most platforms
        serve no table. NotServed or Unavailable (503) when it cannot be opened here."""
        if self._serving is None:
            settings = self.settings
            try:
                self._serving = self._open_store(settings)
            except ConfigurationError as exc:  # a request's answer: 503, not a crash
                raise NotServed(f"the ClickHouse serving store cannot be used here: "
                                f"{exc.message}", code="clickhouse_unavailable") from exc
        return self._serving

    def _open_store(self, settings: Settings) -> ServingStore:
        return open_store(
            settings.clickhouse_dsn, settings.clickhouse_database_prefix, read_limits(
                timeout_s=settings.query_timeout_s,
                threads=self.queries.engine.threads if self.queries is not None else 2,
                memory_bytes=settings.query_memory_limit_mb * 1024 * 1024 or None))

    def require_ingest(self) -> tuple[IngestService, RecordReader]:
        if self.ingest is None or self.reader is None:
            raise NotServed("this process does not serve the Tenant Node's write path",
                              code="ingest_not_served")
        return self.ingest, self.reader

    def close(self) -> None:
        self.stop_observing_runs()
        if self.mirror_keeper is not None:
            self.mirror_keeper.stop()
        if self.ingest is not None:
            self.ingest.close()
            self.ingest.wal.close()
        self.engine.dispose()


def open_ingest(settings: Settings, declarations: TableDeclarations,
                meter: WriteMeter | None = None) -> IngestService:
    from lakehouse.wal.rocks import RocksWal

    wal = RocksWal.open(settings.wal_dir, sync=settings.wal_sync,
                        open_timeout_s=settings.wal_open_timeout_s)
    limits = IngestLimits(
        BacklogLimits(settings.ingest_max_unflushed_bytes, settings.ingest_max_unflushed_age_s),
        settings.tenant_write_rate, settings.tenant_write_burst)
    return IngestService(wal, limits, declarations=declarations, meter=meter,
                         tail_bytes=int(settings.query_unflushed_tail_mb * 1024 * 1024))


def _catalog_schema(catalog: Catalog) -> Callable[[TableRef], FieldType | None]:
    def lookup(ref: TableRef) -> FieldType | None:
        table = catalog.table(ref.tenant, ref.table)
        return FieldType.from_json(table.schema) if table is not None else None

    return lookup


def _disable_bootstrap_user(auth: AuthService, settings: Settings) -> None:
    """The bootstrap admin a development run created in this catalog (its name, still its
    bootstrap password) stops working once the platform runs deployed."""
    user = auth.store.get_user(settings.bootstrap_admin_user)
    if user is None or user.disabled:
        return
    if auth.passwords.verify(user.password_hash, settings.bootstrap_admin_password):
        auth.store.set_disabled(user.username, True)
        log.warning("disabled the development bootstrap user: it still had its bootstrap "
                    "password; create real users with `lakehouse users create`",
                    extra={"user": user.username})


def build_core(settings: Settings, *, ingest: bool = False) -> Core:
    """The shared core; `ingest` opens the WAL (one process per WAL directory may)."""
    settings.check_secrets()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = catalog_engine(settings.catalog_url)
    auth = AuthService(
        store=SqlAuthStore(engine),
        passwords=Passwords(settings.argon2_memory_kib, settings.argon2_time_cost),
        access=AccessTokens(settings.jwt_secret, settings.access_token_ttl_s),
        refresh_ttl_s=settings.refresh_token_ttl_s,
        throttle=login_throttle(
            user_failures=settings.login_user_free_failures,
            address_failures=settings.login_address_free_failures,
            window_s=settings.login_failure_window_s,
            max_backoff_s=settings.login_max_backoff_s),
    )
    if settings.is_development and auth.ensure_user(
        settings.bootstrap_admin_user, settings.bootstrap_admin_password,
        settings.bootstrap_admin_tenant, Role.ADMIN,
    ):
        log.warning("created the development bootstrap user; never use it outside development",
                    extra={"user": settings.bootstrap_admin_user,
                           "tenant": settings.bootstrap_admin_tenant})
    if settings.is_deployed:
        _disable_bootstrap_user(auth, settings)
    storage = StorageRoot.parse(settings.storage_root)
    if storage.is_local:
        storage.fs.create_dir(storage.base, recursive=True)
    catalog = SqlCatalog(engine)
    core = Core(settings=settings, engine=engine, auth=auth,
                write_slots=Slots(settings.ingest_max_inflight,
                                  least=settings.ingest_min_inflight),
                declarations=SqlDeclarations(engine), table_options=SqlTableOptions(engine),
                catalog=catalog, storage=storage)
    core.history = History(math.ceil(HISTORY_S / settings.alert_eval_interval_s))
    core.metrics.registry.register(restarts_collector(settings.run_dir))
    from flows.runs import observe_runs  # Prefect loads with it: only where services run

    core.stop_observing_runs = observe_runs(core.metrics.observe_run)
    core.alerting = Alerting(load_rules(Path(settings.alert_rules_file)
                                        if settings.alert_rules_file else None),
                             webhook_url=settings.alert_webhook_url)
    if ingest:
        core.ingest = open_ingest(settings, SqlDeclarations(engine), core.metrics)
        core.metrics.observe_tail(core.ingest.tail)
        flushed = ParquetRecords(catalog, storage)
        core.ingest.flushed_source = flushed
        core.ingest.catalog_schema = _catalog_schema(catalog)
        core.reader = RecordReader(core.ingest, flushed)
        core.flusher = Flusher(core.ingest, catalog, storage)
        # A crash between a flush's commit and its trim left flushed entries in the log.
        core.flusher.recover()
        core.mirror_keeper = _mirror_keeper(core)
    core.queries = _query_service(core)
    core.metrics.observe_plans(core.queries.engine.plans)
    return core


def _mirror_keeper(core: Core) -> MirrorKeeper:
    """The keeper of the served tables' mirrors, woken when a run of this process that adds
    files ends (started by `lakehouse serve` with the flush trigger)."""
    from flows.runs import observe_runs

    assert core.catalog and core.storage and core.table_options  # noqa: S101
    metrics = core.metrics
    keeper = MirrorKeeper(
        core.catalog, core.storage, core.table_options, core.serving_store,
        core.settings.serving_catch_up_interval_s,
        prune_after_s=core.settings.query_timeout_s + core.settings.serving_catch_up_interval_s,
        on_round=lambda done: metrics.observe_mirrors(
            len(done.caught_up) + len(done.failed), len(done.failed),
            sum(c.files for c in done.caught_up.values()),
            sum(c.rows for c in done.caught_up.values())))

    def woken(kind: str, outcome: str, _seconds: float) -> None:
        if kind in ADDS_FILES and outcome == "completed":
            keeper.wake()

    stop_metering, stop_waking = core.stop_observing_runs, observe_runs(woken)

    def stop() -> None:
        stop_metering()
        stop_waking()

    core.stop_observing_runs = stop
    return keeper


def cost_model_from(settings: Settings) -> CostModel:
    return CostModel(
        broadcast_threshold_bytes=int(settings.optimizer_broadcast_threshold_mb * MIB),
        target_fragment_bytes=int(settings.optimizer_target_fragment_mb * MIB),
        single_node_threshold_bytes=int(settings.optimizer_single_node_threshold_mb * MIB))


def _query_service(core: Core) -> QueryService:
    from flows.query import track_query

    assert core.catalog is not None and core.storage is not None  # noqa: S101
    assert core.table_options is not None  # noqa: S101
    settings = core.settings
    engine = QueryEngine(core.catalog, core.storage, core.table_options, core.ingest,
                         readable_s=settings.cleanup_grace_s,
                         duckdb_reads_files=settings.query_file_reader == "duckdb")
    registry = QueryRegistry(settings.query_max_concurrent_per_tenant, ResultLimits(
        settings.query_results_kept, settings.query_results_kept_per_tenant,
        int(settings.query_result_spill_mb * 1024 * 1024),
        settings.data_dir / "query-results"), settings.query_max_concurrent,
        least=settings.query_min_concurrent)
    set_memory_limit(settings.query_memory_limit_mb)
    return QueryService(engine, registry, cost_model_from(settings),
                        max_bytes_scanned=settings.query_max_bytes_scanned,
                        timeout_s=settings.query_timeout_s,
                        track_threshold_s=settings.query_track_threshold_s,
                        client=core.dask_client if settings.query_on_dask else None,
                        track=track_query,
                        learn_split=settings.optimizer_learn_split_threshold,
                        serving=core.serving_store,
                        on_end=lambda run: core.metrics.observe_query(
                            run.state, (run.plan or {}).get("distribution", {}).get("strategy"),
                            run.elapsed_s, run.progress.bytes_scanned))
