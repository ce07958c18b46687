"""The platform's metrics, in registries of their own (Prometheus text).

`registry` is scraped without credentials (`GET /metrics`, as scrapers expect), so it names no
tenant: its series are platform totals. `tenant_registry` holds the per-tenant series, served to
admins only (`GET /metrics/tenants`, a bearer token in the scrape config).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tenant_registry = CollectorRegistry()
        self.requests = Counter(
            "lakehouse_http_requests", "HTTP requests answered",
            ["service", "method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "lakehouse_http_request_seconds", "Time to answer an HTTP request",
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
            "lakehouse_query_seconds", "Time from a query's start to its answer", ["strategy"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.query_bytes = Counter(
            "lakehouse_query_scanned_bytes", "Bytes of data files queries read",
            registry=self.registry)
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
        self.shed.labels(pool, reason).inc()
        self.tenant_shed.labels(pool, reason, tenant).inc()

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
                self.maintenance_ended.labels(flow, str(run["state"])).set(run["ended_at"])
            if run is None or isinstance(run, dict):  # not {"error": …}: Prefect unreachable
                failed = run is not None and str(run.get("state")) in ("FAILED", "CRASHED")
                self.maintenance_failed.labels(flow).set(1 if failed else 0)

    def observe_request(self, service: str, method: str, route: str, status: int,
                        seconds: float) -> None:
        self.requests.labels(service, method, route, str(status)).inc()
        self.latency.labels(service, route).observe(seconds)

    def exposition(self, per_tenant: bool = False) -> bytes:
        return generate_latest(self.tenant_registry if per_tenant else self.registry)
