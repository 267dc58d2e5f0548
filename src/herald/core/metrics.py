"""Prometheus metrics. Counters and histograms are per process (Prometheus sums them); queue depth is read
from the database at scrape time, so any process reports the shared truth."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Request latency buckets: most answers take milliseconds; the tail (bulk sends, a cold database) takes seconds.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def herald_version() -> str:
    """The installed package's version (pyproject.toml), or "unknown" when run from an uninstalled tree."""
    try:
        return metadata.version("herald")
    except metadata.PackageNotFoundError:
        return "unknown"


class _Children:
    """A labelled metric's children, kept by their labels. ``labels()`` turns every value into a string, takes a
    lock and looks the child up on each call, a few microseconds that every delivered message paid twice; the
    label sets are small (statuses, platforms, providers, route templates), so they are kept for good."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        return child


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "herald_messages",
            "Messages by the status they reached, per platform.",
            ["status", "platform"],
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "herald_attempt_duration_seconds",
            "Time one delivery attempt took, per provider and outcome.",
            ["provider", "outcome"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "herald_queue_depth",
            "Messages waiting in the outbox, by status (read from the database at scrape time).",
            ["status"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "herald_http_requests",
            "HTTP requests answered, by method, route template (not path) and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_seconds = Histogram(
            "herald_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by method and route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.build_info = Gauge(
            "herald_build_info",
            "Always 1; the labels say which Herald and which Python this process runs.",
            ["version", "python"],
            registry=self.registry,
        )
        self.build_info.labels(herald_version(), platform.python_version()).set(1)
        self._messages = _Children(self.messages)
        self._attempt_seconds = _Children(self.attempt_seconds)
        self._http_requests = _Children(self.http_requests)
        self._http_seconds = _Children(self.http_seconds)

    def count_message(self, status: str, platform: str) -> None:
        """Count one message reaching ``status``."""
        self._messages(status, platform).inc()

    def observe_attempt(self, provider: str, outcome: str, seconds: float) -> None:
        """Record one delivery attempt's duration."""
        self._attempt_seconds(provider, outcome).observe(seconds)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request and its latency (``route`` is a template, to bound the label set)."""
        self._http_requests(method, route, str(status)).inc()
        self._http_seconds(method, route).observe(seconds)
