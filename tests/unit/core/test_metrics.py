"""Counting through kept children gives the same samples as ``labels()`` each time, enum labels included."""

from __future__ import annotations

import pytest

from herald.core.metrics import Metrics
from herald.core.status import Status


def _value(metrics: Metrics, name: str, labels: dict[str, str]) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_messages_are_counted_per_status_and_platform() -> None:
    metrics = Metrics()
    metrics.count_message(Status.SENT, "sms")
    metrics.count_message("sent", "sms")  # the enum and its value are one label
    metrics.count_message(Status.FAILED, "sms")
    assert _value(metrics, "herald_messages_total", {"status": "sent", "platform": "sms"}) == 2
    assert _value(metrics, "herald_messages_total", {"status": "failed", "platform": "sms"}) == 1


def test_attempts_and_requests_are_observed() -> None:
    metrics = Metrics()
    metrics.observe_attempt("twilio", "sent", 0.02)
    metrics.observe_attempt("twilio", "sent", 0.03)
    metrics.observe_request("POST", "/api/v1/messages/bulk", 200, 0.5)
    labels = {"provider": "twilio", "outcome": "sent"}
    assert _value(metrics, "herald_attempt_duration_seconds_count", labels) == 2
    assert _value(metrics, "herald_attempt_duration_seconds_sum", labels) == pytest.approx(0.05)
    request = {"method": "POST", "route": "/api/v1/messages/bulk", "status": "200"}
    assert _value(metrics, "herald_http_requests_total", request) == 1


def test_two_processes_worth_of_metrics_do_not_share_children() -> None:
    one, other = Metrics(), Metrics()
    one.count_message("sent", "sms")
    assert _value(other, "herald_messages_total", {"status": "sent", "platform": "sms"}) is None
