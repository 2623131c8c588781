"""The ``/metrics`` counters (Prometheus text format), one registry per application."""

from __future__ import annotations

from typing import Any


class Metrics:
    """Requests by model and status, their durations, backend calls by outcome, in flight."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests: Any = Counter(
            "llm_mux_requests", "Requests answered", ["model", "status"], registry=self.registry
        )
        self.duration: Any = Histogram(
            "llm_mux_request_duration_seconds",
            "Time to answer a request",
            ["model"],
            registry=self.registry,
        )
        self.backend_calls: Any = Counter(
            "llm_mux_backend_calls",
            "Backend calls by outcome",
            ["backend", "outcome"],
            registry=self.registry,
        )
        self.in_flight: Any = Gauge(
            "llm_mux_requests_in_flight", "Requests being answered", registry=self.registry
        )

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
