"""Prometheus metrics. Counters and histograms are per process (Prometheus sums them); queue depth is read
from the database at scrape time, so any process reports the shared truth."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
