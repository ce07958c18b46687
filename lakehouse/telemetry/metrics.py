"""The platform's metrics, in a registry of its own (Prometheus text on `GET /metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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

    def observe_request(self, service: str, method: str, route: str, status: int,
                        seconds: float) -> None:
        self.requests.labels(service, method, route, str(status)).inc()
        self.latency.labels(service, route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
