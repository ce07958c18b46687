"""The built-in alert rules and dashboard for operators who run their own Prometheus and
Grafana: the same rules as a Prometheus rules file, the dashboard's charts as a Grafana
dashboard. Pure: rules in, documents out. `tools/deploy_files.py` writes them under `deploy/`,
and a test keeps what is committed equal to what this makes of the shipped rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lakehouse.telemetry.alerts import Rule

GROUP = "lakehouse"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

# The dashboard's charts (api/static/dashboard.js, lakehouse/telemetry/history.py) in PromQL:
# title, unit, [(legend, expression)].
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Ingest (records/s)", "short", [
        ("records/s", "sum(rate(lakehouse_ingest_records_total[1m]))"),
        ("rejected/s", "sum(rate(lakehouse_ingest_rejected_records_total[1m]))")]),
    ("Unflushed backlog", "bytes", [
        ("unflushed", "sum(lakehouse_unflushed_bytes)")]),
    ("Oldest unflushed record", "s", [
        ("age", "max(lakehouse_unflushed_oldest_age_seconds)")]),
    ("Queries (per s)", "short", [
        ("queries/s", "sum(rate(lakehouse_queries_total[1m]))")]),
    ("Query latency", "s", [
        ("p50", "histogram_quantile(0.5, sum by (le) "
                "(rate(lakehouse_query_duration_seconds_bucket[5m])))"),
        ("p95", "histogram_quantile(0.95, sum by (le) "
                "(rate(lakehouse_query_duration_seconds_bucket[5m])))")]),
    ("Errors and shed requests (per s)", "short", [
        ("failed queries/s", 'sum(rate(lakehouse_queries_total{state="failed"}[1m]))'),
        ("HTTP 5xx/s", 'sum(rate(lakehouse_http_requests_total{status=~"5.."}[1m]))'),
        ("shed/s", "sum(rate(lakehouse_shed_requests_total[1m]))")]),
    ("Write-ahead log", "s", [
        ("group commit p95", "histogram_quantile(0.95, sum by (le) "
                             "(rate(lakehouse_wal_group_commit_duration_seconds_bucket[5m])))"),
        ("sync p99", "histogram_quantile(0.99, sum by (le) "
                     "(rate(lakehouse_wal_sync_duration_seconds_bucket[5m])))")]),
    ("Dask memory", "bytes", [
        ("memory", "sum(lakehouse_dask_memory_bytes)"),
        ("limit", "sum(lakehouse_dask_memory_limit_bytes)")]),
    ("Dask workers and tasks", "short", [
        ("workers", "sum(lakehouse_dask_workers)"),
        ("{{state}} tasks", "sum by (state) (lakehouse_dask_tasks)")]),
    ("Runs (per hour)", "short", [
        ("{{kind}} {{outcome}}", "sum by (kind, outcome) "
                                 "(increase(lakehouse_run_duration_seconds_count[1h]))")]),
    ("Since each maintenance flow last succeeded", "s", [
        ("{{flow}}", "time() - lakehouse_maintenance_last_success_timestamp_seconds")]),
    ("Compaction backlog", "short", [
        ("small files", "sum(lakehouse_compaction_backlog_files)")]),
]


def duration(seconds: float) -> str:
    """A `for` as Prometheus writes it."""
    whole = int(seconds)
    if whole != seconds:
        return f"{int(seconds * 1000)}ms"
    if whole and whole % 3600 == 0:
        return f"{whole // 3600}h"
    if whole and whole % 60 == 0:
        return f"{whole // 60}m"
    return f"{whole}s"


def prometheus_rules(rules: Sequence[Rule]) -> dict[str, Any]:
    return {"groups": [{"name": GROUP, "rules": [{
        "alert": rule.name, "expr": rule.text, "for": duration(rule.for_s),
        "labels": {"severity": rule.severity, **dict(rule.labels)},
        "annotations": {"summary": rule.summary}} for rule in rules]}]}


def grafana_dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = [{
        "id": 1, "type": "alertlist", "title": "Firing and pending alerts",
        "gridPos": {"h": 6, "w": 24, "x": 0, "y": 0},
        "options": {"alertName": "", "dashboardAlerts": False, "maxItems": 20,
                    "sortOrder": 1, "stateFilter": {"firing": True, "pending": True},
                    "viewMode": "list", "groupMode": "default",
                    "alertInstanceLabelFilter": ""}}]
    for n, (title, unit, targets) in enumerate(PANELS):
        panels.append({
            "id": n + 2, "type": "timeseries", "title": title, "datasource": DATASOURCE,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (n % 2), "y": 6 + 8 * (n // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr,
                         "legendFormat": legend} for i, (legend, expr) in enumerate(targets)]})
    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
                      "pluginId": "prometheus", "pluginName": "Prometheus"}],
        "title": "Storage Control Plane", "uid": "lakehouse-platform", "schemaVersion": 39,
        "tags": ["lakehouse"], "timezone": "", "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"}, "editable": True, "panels": panels,
        "templating": {"list": []}, "annotations": {"list": []}}
