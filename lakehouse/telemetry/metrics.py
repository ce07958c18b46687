"""The platform's metrics, in registries of their own (Prometheus text).

`registry` is scraped without credentials (`GET /metrics`, as scrapers expect), so it names no
tenant: its series are platform totals. `tenant_registry` holds the per-tenant series, served to
admins only (`GET /metrics/tenants`, a bearer token in the scrape config).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from lakehouse.kept import Kept

# Per-tenant series stop naming new tenants past this many (the rest add to "_other"), so a
# platform with many tenants cannot grow a scrape without bound.
MAX_TENANT_LABELS = 500
OTHER_TENANTS = "_other"
MAX_KEPT_SERIES = 4096  # label sets whose series are kept at hand (lakehouse.kept)
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
_RUNS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class TailSize(Protocol):
    @property
    def bytes(self) -> int: ...

    @property
    def entries(self) -> int: ...

    hits: int
    misses: int


class PlanCounts(Protocol):
    reused: int
    planned: int


class CountsCollector(Collector):
    """A counter kept by its owner (the tail, the plan cache) rather than by the registry,
    read at scrape time: `read()` gives the count for each value of the one label."""

    def __init__(self, name: str, documentation: str, label: str,
                 read: Callable[[], Mapping[str, int]]) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._read = read

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._documentation, labels=[self._label])
        for value, count in self._read().items():
            family.add_metric([value], float(count))
        yield family


def _with_process_series(registry: CollectorRegistry) -> CollectorRegistry:
    """`registry` with the standard process_*, python_info and python_gc_* series."""
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


def _kept_series() -> Kept[tuple[object, ...], tuple[Any, Any]]:
    return Kept(MAX_KEPT_SERIES)


class Metrics:
    def __init__(self) -> None:
        self.registry = _with_process_series(CollectorRegistry())
        self.tenant_registry = CollectorRegistry()
        self._tenants: set[str] = set()
        self._tenants_lock = threading.Lock()
        # The series a request or a shed counts in, kept by their labels: prometheus_client's
        # `labels` takes a lock and checks every value on each call, a fifth of what a shed
        # request cost the event loop under a flood (docs/scaling.md, "Overload"). These
        # metrics are never cleared nor their series removed, so a kept series stays the one
        # `labels` would return (and racing threads that both make one get that same one).
        self._requests_kept, self._sheds_kept = _kept_series(), _kept_series()
        self.requests = Counter(
            "lakehouse_http_requests", "HTTP requests answered",
            ["service", "method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "lakehouse_http_request_duration_seconds", "Time to answer an HTTP request",
            ["service", "route"], registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.logins = Counter(
            "lakehouse_logins", "Login attempts by outcome", ["outcome"], registry=self.registry,
        )

        self.queries = Counter(
            "lakehouse_queries", "Queries by outcome and plan strategy", ["state", "strategy"],
            registry=self.registry)
        self.query_seconds = Histogram(
            "lakehouse_query_duration_seconds", "Time from a query's start to its answer",
            ["strategy"], registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.query_bytes = Counter(
            "lakehouse_query_scanned_bytes", "Bytes of data files queries read",
            registry=self.registry)

        # The write path (lakehouse/ingest): what was made durable, and how long that took.
        self.ingest_records = Counter(
            "lakehouse_ingest_records", "Records made durable in the write-ahead log",
            registry=self.registry)
        self.ingest_bytes = Counter(
            "lakehouse_ingest_bytes", "Bytes of records made durable in the write-ahead log",
            registry=self.registry)
        self.ingest_rejected = Counter(
            "lakehouse_ingest_rejected_records", "Records refused one by one (bad JSON, "
            "types that do not fit) and kept in the tenant's _rejects table",
            registry=self.registry)
        self.tenant_ingest_records = Counter(
            "lakehouse_ingest_records", "Records made durable, per tenant", ["tenant"],
            registry=self.tenant_registry)
        self.tenant_ingest_bytes = Counter(
            "lakehouse_ingest_bytes", "Bytes of records made durable, per tenant", ["tenant"],
            registry=self.tenant_registry)
        self.tenant_ingest_rejected = Counter(
            "lakehouse_ingest_rejected_records", "Records refused one by one, per tenant",
            ["tenant"], registry=self.tenant_registry)
        self.wal_sync = Histogram(
            "lakehouse_wal_sync_duration_seconds", "Time of one synced append to the "
            "write-ahead log (a group commit's write and fsync)", registry=self.registry,
            buckets=_FAST)
        self.group_commit = Histogram(
            "lakehouse_wal_group_commit_duration_seconds", "Time from the oldest request of "
            "a group commit being queued to the group being durable (what a write waits)",
            registry=self.registry, buckets=_FAST)
        self.group_requests = Histogram(
            "lakehouse_wal_group_commit_requests", "Write requests sharing one group commit",
            registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))

        # Runs of this process (flushes, loads, on-demand compaction: flows/runs.py) and the
        # maintenance runs Prefect reports, wherever they ran.
        self.run_seconds = Histogram(
            "lakehouse_run_duration_seconds", "Time of a run of this process, by kind "
            "(ingest: a flush; load; compaction) and outcome", ["kind", "outcome"],
            registry=self.registry, buckets=_RUNS)
        self.maintenance_seconds = Histogram(
            "lakehouse_maintenance_run_duration_seconds", "Time of a maintenance flow's run, "
            "as Prefect reports it once it ended", ["flow", "state"], registry=self.registry,
            buckets=_RUNS)
        self.maintenance_success = Gauge(
            "lakehouse_maintenance_last_success_timestamp_seconds",
            "When a maintenance flow's last completed run ended (kept while later runs fail)",
            ["flow"], registry=self.registry)
        self._maintenance_seen: dict[str, str] = {}  # flow → the last ended run observed

        # The ClickHouse serving store's mirrors, as the keeper's last round found them.
        self.mirror_tables = Gauge(
            "lakehouse_mirror_tables", "Tables marked for the ClickHouse serving store",
            registry=self.registry)
        self.mirror_failing = Gauge(
            "lakehouse_mirror_failing_tables",
            "Served tables whose mirror's last catch-up failed", registry=self.registry)
        self.mirror_files = Counter(
            "lakehouse_mirror_files_copied", "Data files copied into ClickHouse mirrors",
            registry=self.registry)
        self.mirror_rows = Counter(
            "lakehouse_mirror_rows_copied", "Rows copied into ClickHouse mirrors (a "
            "repeated copy included: ClickHouse drops it by its token)", registry=self.registry)

        # The Dask cluster, as the scheduler lists it (refreshed with the alert gauges).
        self.dask_threads = Gauge(
            "lakehouse_dask_threads", "Threads of the Dask workers", registry=self.registry)
        self.dask_memory = Gauge(
            "lakehouse_dask_memory_bytes", "Memory the Dask workers' processes use",
            registry=self.registry)
        self.dask_memory_limit = Gauge(
            "lakehouse_dask_memory_limit_bytes", "The Dask workers' memory limits, summed",
            registry=self.registry)
        self.dask_spilled = Gauge(
            "lakehouse_dask_spilled_bytes", "Bytes the Dask workers spilled to disk",
            registry=self.registry)
        self.dask_tasks = Gauge(
            "lakehouse_dask_tasks", "Tasks on the Dask workers by state (executing, ready, "
            "memory, …)", ["state"], registry=self.registry)

        self.backlog_files = Gauge(
            "lakehouse_compaction_backlog_files", "Small data files waiting for compaction",
            registry=self.registry)
        self.backlog_bytes = Gauge(
            "lakehouse_compaction_backlog_bytes", "Bytes of small data files waiting for "
            "compaction", registry=self.registry)
        self.tenant_backlog_files = Gauge(
            "lakehouse_compaction_backlog_files", "Small data files waiting for compaction",
            ["tenant"], registry=self.tenant_registry)
        self.tenant_backlog_bytes = Gauge(
            "lakehouse_compaction_backlog_bytes", "Bytes of small data files waiting for "
            "compaction", ["tenant"], registry=self.tenant_registry)
        self.shed = Counter(
            "lakehouse_shed_requests", "Requests shed under overload (lakehouse.fair_share), by "
            "pool (writes in flight, queries running) and reason (full: 503, over_share: 429)",
            ["pool", "reason"], registry=self.registry)
        self.tenant_shed = Counter(
            "lakehouse_shed_requests", "Requests shed under overload, per tenant",
            ["pool", "reason", "tenant"], registry=self.tenant_registry)
        self.maintenance_ended = Gauge(
            "lakehouse_maintenance_last_run_end_timestamp_seconds",
            "When the last run of a maintenance flow ended", ["flow", "state"],
            registry=self.registry)

        # What the alert rules watch (lakehouse/telemetry/alert_rules.yaml), refreshed before
        # each evaluation and each scrape of the Monitoring service.
        self.component_up = Gauge(
            "lakehouse_component_up", "1 when a dependency answers its health probe, else 0",
            ["component"], registry=self.registry)
        self.dask_workers = Gauge(
            "lakehouse_dask_workers", "Dask workers the scheduler lists", registry=self.registry)
        self.unflushed_bytes = Gauge(
            "lakehouse_unflushed_bytes", "Bytes acknowledged and not yet flushed to Parquet",
            registry=self.registry)
        self.unflushed_age = Gauge(
            "lakehouse_unflushed_oldest_age_seconds", "Age of the oldest acknowledged record "
            "not yet flushed (0 when none waits)", registry=self.registry)
        self._admission_gauges()
        self.unflushed_tail_bytes = Gauge(
            "lakehouse_unflushed_tail_bytes", "Memory of the unflushed log entries kept "
            "converted to Arrow for queries (at most QUERY_UNFLUSHED_TAIL_MB)",
            registry=self.registry)
        self.unflushed_tail_entries = Gauge(
            "lakehouse_unflushed_tail_entries", "Unflushed log entries kept converted to Arrow "
            "for queries", registry=self.registry)
        self.free_ratio = Gauge(
            "lakehouse_data_dir_free_ratio", "Free fraction of the disk holding DATA_DIR",
            registry=self.registry)
        self.maintenance_failed = Gauge(
            "lakehouse_maintenance_failed_runs", "1 when a maintenance flow's last run failed "
            "or crashed, else 0", ["flow"], registry=self.registry)
        self.alerts = Gauge(
            "lakehouse_alerts", "Alerts by state and severity", ["state", "severity"],
            registry=self.registry)

    def samples(self) -> dict[str, list[tuple[tuple[tuple[str, str], ...], float]]]:
        """The platform registry's series now: name → [(sorted labels, value)]."""
        found: dict[str, list[tuple[tuple[tuple[str, str], ...], float]]] = {}
        for family in self.registry.collect():
            for sample in family.samples:
                found.setdefault(sample.name, []).append(
                    (tuple(sorted(sample.labels.items())), float(sample.value)))
        return found

    def observe_query(self, state: str, strategy: str | None, seconds: float,
                      bytes_scanned: int) -> None:
        self.queries.labels(state, strategy or "none").inc()
        self.query_seconds.labels(strategy or "none").observe(seconds)
        self.query_bytes.inc(bytes_scanned)

    def observe_shed(self, pool: str, reason: str, tenant: str) -> None:
        total, own = self._sheds_kept.get((pool, reason, tenant), lambda: (
            self.shed.labels(pool, reason),
            self.tenant_shed.labels(pool, reason, self._tenant_label(tenant))))
        total.inc()
        own.inc()

    def _tenant_label(self, tenant: str) -> str:
        with self._tenants_lock:
            if tenant in self._tenants:
                return tenant
            if len(self._tenants) < MAX_TENANT_LABELS:
                self._tenants.add(tenant)
                return tenant
        return OTHER_TENANTS

    # The write path's meter (lakehouse/ingest/meter.py), called on the commit thread.
    def committed(self, synced_s: float, waited_s: float, requests: int) -> None:
        self.wal_sync.observe(synced_s)
        self.group_commit.observe(waited_s)
        self.group_requests.observe(requests)

    def written(self, tenant: str, records: int, bytes_: int, rejected: int) -> None:
        label = self._tenant_label(tenant)
        self.ingest_records.inc(records)
        self.ingest_bytes.inc(bytes_)
        self.tenant_ingest_records.labels(label).inc(records)
        self.tenant_ingest_bytes.labels(label).inc(bytes_)
        if rejected:
            self.ingest_rejected.inc(rejected)
            self.tenant_ingest_rejected.labels(label).inc(rejected)

    def observe_run(self, kind: str, outcome: str, seconds: float) -> None:
        if kind != "query":  # queries have their own series
            self.run_seconds.labels(kind, outcome).observe(seconds)

    def _admission_gauges(self) -> None:
        self.admission_limit = Gauge(
            "lakehouse_admission_limit", "Writes in flight or queries running admitted now "
            "(follows the event loop's lag, at most INGEST_MAX_INFLIGHT / QUERY_MAX_CONCURRENT)",
            ["pool"], registry=self.registry)
        self.loop_lag = Gauge(
            "lakehouse_event_loop_lag_seconds", "The event loop's worst lag in the last window "
            "(a timer's lateness)", registry=self.registry)

    def observe_admission(self, lag_s: float, writes: int, queries: int) -> None:
        self.loop_lag.set(lag_s)
        self.admission_limit.labels("writes").set(writes)
        self.admission_limit.labels("queries").set(queries)

    def observe_tail(self, tail: TailSize) -> None:
        """The unflushed log's Arrow tail (lakehouse/ingest/tail.py), read at each scrape."""
        self.unflushed_tail_bytes.set_function(lambda: tail.bytes)
        self.unflushed_tail_entries.set_function(lambda: tail.entries)
        self.registry.register(CountsCollector(
            "lakehouse_unflushed_tail_lookups", "Unflushed log entries a query found kept as "
            "Arrow (hit) or converted again from the log (miss)", "outcome",
            lambda: {"hit": tail.hits, "miss": tail.misses}))

    def observe_plans(self, plans: PlanCounts) -> None:
        """Queries whose text reused the plan made for it before, and those planned
        (lakehouse/executor/plan_cache.py), read at each scrape."""
        self.registry.register(CountsCollector(
            "lakehouse_query_plans", "Query plans reused for a text asked again, and made",
            "outcome", lambda: {"reused": plans.reused, "planned": plans.planned}))

    def observe_mirrors(self, tables: int, failing: int, files: int, rows: int) -> None:
        self.mirror_tables.set(tables)
        self.mirror_failing.set(failing)
        self.mirror_files.inc(files)
        self.mirror_rows.inc(rows)

    def observe_dask(self, detail: Mapping[str, Any]) -> None:
        self.dask_threads.set(float(detail.get("threads", 0)))
        self.dask_memory.set(float(detail.get("memory_bytes", 0)))
        self.dask_memory_limit.set(float(detail.get("memory_limit_bytes", 0)))
        self.dask_spilled.set(float(detail.get("spilled_bytes", 0)))
        self.dask_tasks.clear()
        for state, count in dict(detail.get("tasks", {})).items():
            self.dask_tasks.labels(state).set(float(count))

    def observe_maintenance(self, backlog: dict[str, dict[str, int]],
                            last_runs: dict[str, Any]) -> None:
        self.backlog_files.set(sum(w["small_files"] for w in backlog.values()))
        self.backlog_bytes.set(sum(w["small_bytes"] for w in backlog.values()))
        self.tenant_backlog_files.clear()
        self.tenant_backlog_bytes.clear()
        for tenant, waiting in backlog.items():
            self.tenant_backlog_files.labels(tenant).set(waiting["small_files"])
            self.tenant_backlog_bytes.labels(tenant).set(waiting["small_bytes"])
        self.maintenance_ended.clear()
        for flow, run in last_runs.items():
            if isinstance(run, dict) and run.get("ended_at") is not None:
                state = str(run["state"]).lower()  # label values are slugs
                self.maintenance_ended.labels(flow, state).set(run["ended_at"])
                if self._maintenance_seen.get(flow) != run["id"]:
                    self._maintenance_seen[flow] = run["id"]
                    if run.get("seconds") is not None:
                        self.maintenance_seconds.labels(flow, state).observe(
                            float(run["seconds"]))
            if isinstance(run, dict) and run.get("succeeded_at") is not None:
                self.maintenance_success.labels(flow).set(run["succeeded_at"])
            if run is None or isinstance(run, dict):  # not {"error": …}: Prefect unreachable
                failed = run is not None and str(run.get("state")) in ("FAILED", "CRASHED")
                self.maintenance_failed.labels(flow).set(1 if failed else 0)

    def observe_request(self, service: str, method: str, route: str, status: int,
                        seconds: float) -> None:
        count, latency = self._requests_kept.get((service, method, route, status), lambda: (
            self.requests.labels(service, method, route, str(status)),
            self.latency.labels(service, route)))
        count.inc()
        latency.observe(seconds)

    def exposition(self, per_tenant: bool = False) -> bytes:
        return generate_latest(self.tenant_registry if per_tenant else self.registry)
