"""Prometheus series of contract §4.4, in a registry of the hub's own.

A registry per application (rather than the global one) keeps several apps in one
process independent, and keeps the exposition to the series the contract names plus
the few this hub adds.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

#: The exposition format the contract asks for.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
DEPENDENCIES = ("database", "event_bus")

# ``*_created`` series double the output and no consumer of the contract reads them.
disable_created_metrics()


class Metrics:
    """The hub's metrics; ``hub`` is bound here so callers pass only their labels."""

    def __init__(self, hub: str, version: str, schema_version: int) -> None:
        self.hub = hub
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "tradehub_http_requests_total",
            "HTTP requests served, by route template",
            ["hub", "method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "tradehub_http_request_duration_seconds",
            "Time from request to the end of the response",
            ["hub", "method", "route"],
            registry=self.registry,
        )
        self.dependency_up = Gauge(
            "tradehub_dependency_up",
            "1 when the last check of the dependency passed, else 0",
            ["hub", "dependency"],
            registry=self.registry,
        )
        self.license_days_left = Gauge(
            "tradehub_license_days_left",
            "Whole days until the license expires (negative inside grace)",
            ["hub"],
            registry=self.registry,
        )
        self.events_published = Counter(
            "tradehub_events_published_total",
            "Events written to the hub's stream",
            ["hub", "type"],
            registry=self.registry,
        )
        self.event_publish_failures = Counter(
            "tradehub_event_publish_failures_total",
            "Events that could not be written to the hub's stream",
            ["hub", "type"],
            registry=self.registry,
        )
        build_info = Gauge(
            "tradehub_build_info",
            "The artifact that runs",
            ["hub", "version", "schema_version"],
            registry=self.registry,
        )
        build_info.labels(hub, version, str(schema_version)).set(1)
        for dependency in DEPENDENCIES:
            self.dependency_up.labels(hub, dependency).set(0)

    def observe_request(
        self, method: str, route: str, status: int, seconds: float
    ) -> None:
        method = method if method in KNOWN_METHODS else "other"
        self.requests.labels(self.hub, method, route, str(status)).inc()
        self.duration.labels(self.hub, method, route).observe(seconds)

    def set_dependency(self, dependency: str, up: bool) -> None:
        self.dependency_up.labels(self.hub, dependency).set(1 if up else 0)

    def set_license_days_left(self, days: int | None) -> None:
        """Set the gauge, or remove the series when no license verifies."""
        if days is None:
            self.license_days_left.clear()
        else:
            self.license_days_left.labels(self.hub).set(days)

    def event_published(self, event_type: str) -> None:
        self.events_published.labels(self.hub, event_type).inc()

    def event_failed(self, event_type: str) -> None:
        self.event_publish_failures.labels(self.hub, event_type).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
