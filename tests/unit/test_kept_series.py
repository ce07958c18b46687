"""The series requests and sheds count in are kept by their labels (lakehouse/telemetry/
metrics.py, through lakehouse/kept.py): what is counted through them is what the exposition
shows, and past the bound values are still made, only not kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lakehouse.kept import Kept
from lakehouse.telemetry.metrics import Metrics


def _value(found: Metrics, name: str, labels: dict[str, str], tenants: bool = False) -> float:
    registry = found.tenant_registry if tenants else found.registry
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_requests_and_sheds_count_in_their_series() -> None:
    found = Metrics()
    for status in (200, 200, 429):
        found.observe_request("Tenant Node", "POST", "/data", status, 0.002)
    for _ in range(3):
        found.observe_shed("writes", "over_share", "acme")
    found.observe_shed("writes", "full", "globex")
    labels = {"service": "Tenant Node", "method": "POST", "route": "/data"}
    assert _value(found, "lakehouse_http_requests_total", labels | {"status": "200"}) == 2
    assert _value(found, "lakehouse_http_requests_total", labels | {"status": "429"}) == 1
    assert _value(found, "lakehouse_http_request_duration_seconds_count",
                  {"service": "Tenant Node", "route": "/data"}) == 3
    assert _value(found, "lakehouse_shed_requests_total",
                  {"pool": "writes", "reason": "over_share"}) == 3
    assert _value(found, "lakehouse_shed_requests_total",
                  {"pool": "writes", "reason": "over_share", "tenant": "acme"}, True) == 3
    assert _value(found, "lakehouse_shed_requests_total",
                  {"pool": "writes", "reason": "full", "tenant": "globex"}, True) == 1


def test_two_metrics_keep_their_own_series() -> None:
    first, second = Metrics(), Metrics()
    first.observe_shed("queries", "full", "acme")
    assert _value(second, "lakehouse_shed_requests_total",
                  {"pool": "queries", "reason": "full"}) == 0


def test_past_the_bound_values_are_made_each_time() -> None:
    kept: Kept[tuple[str], tuple[Any, Any]] = Kept(2)
    made: list[str] = []

    def make(name: str) -> Callable[[], tuple[Any, Any]]:
        def series() -> tuple[Any, Any]:
            made.append(name)
            return name, name
        return series

    for name in ("a", "b", "c", "a", "b", "c"):
        assert kept.get((name,), make(name)) == (name, name)
    assert made == ["a", "b", "c", "c"] and len(kept) == 2
