"""The SDK's typed answers and seed 003's compatibility layer, without a server (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from herald.client import BulkResult, DeliveryMetrics, Herald, Message, Page, QueueDepth, Record
from herald.compat.otp import IntelligentOTPAgent, MessageRequest, Priority

Handler = Callable[[httpx.Request], httpx.Response]


def answering(body: Any, status: int = 200) -> Handler:
    return lambda _: httpx.Response(status, json=body)


def client(handler: Handler) -> Herald:
    return Herald("http://herald.test", "hk_test", transport=httpx.MockTransport(handler))


def test_a_page_of_messages_is_typed_and_keeps_fields_it_does_not_declare() -> None:
    body = {"items": [{"id": "msg_1", "status": "queued", "added_later": {"x": 1}}], "next_cursor": None}
    with client(answering(body)) as herald:
        page = herald.list_messages()
    assert isinstance(page, Page)
    [message] = page.items
    assert isinstance(message, Message)
    assert (message.id, message.status) == ("msg_1", "queued")
    assert message["added_later"] == {"x": 1}
    assert page == body
    assert page.to_dict() == body
    assert json.loads(json.dumps(page.to_dict())) == body


def test_records_read_as_mappings_and_refuse_changes() -> None:
    record = QueueDepth({"queued": 2, "sending": 0, "pending_approval": 1})
    assert (record["queued"], record.get("sending"), record.get("nope", -1)) == (2, 0, -1)
    assert ("queued" in record, "nope" in record, len(record)) == (True, False, 3)
    assert dict(record) == {"queued": 2, "sending": 0, "pending_approval": 1}
    assert list(record) == ["queued", "sending", "pending_approval"]
    with pytest.raises(KeyError):
        record["nope"]
    with pytest.raises(AttributeError):
        record.queued = 3  # type: ignore[misc]
    assert record != {"queued": 2}
    with pytest.raises(TypeError):
        Record.from_json(["not", "an", "object"])


def test_optional_fields_absent_from_the_answer_read_as_none_but_are_not_items() -> None:
    result = BulkResult.from_json({"accepted": 0, "rejected": 1, "replayed": 0,
                                   "items": [{"index": 0, "error": {"status": 422, "field": "x", "detail": "d"}}]})  # fmt: skip
    [item] = result.items
    assert (item.id, item.status, item.error is not None) == (None, None, True)
    assert item.error is not None
    assert item.error.field == "x"
    assert "id" not in item
    metrics = DeliveryMetrics.from_json({"since": "t", "sent": 0, "failed": 0, "success_rate": None, "cost": 0,
                                         "channels": []})  # an older Herald: no queue  # fmt: skip
    assert metrics.queue is None


def test_seed_003_priorities_and_requests() -> None:
    assert [p.name for p in Priority] == ["CRITICAL", "HIGH", "MEDIUM", "LOW"]
    assert Priority["MEDIUM"] is Priority.MEDIUM
    request = MessageRequest(phone_number="+447700900123", message_type="alert", content="x")
    assert (request.priority, request.scheduled_for) == (Priority.MEDIUM, None)


def compat(handler: Handler, monkeypatch: pytest.MonkeyPatch) -> IntelligentOTPAgent:
    monkeypatch.setenv("HERALD_URL", "http://from-env.test")
    monkeypatch.setenv("HERALD_API_KEY", "hk_env")
    agent = IntelligentOTPAgent()
    agent.herald._http._transport = httpx.MockTransport(handler)
    return agent


def test_the_compat_agent_takes_its_connection_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"title": "Not Found", "status": 404, "detail": "no such message"})

    agent = compat(handler, monkeypatch)
    assert agent.get_delivery_report("msg_x") is None
    assert (seen[0].url.host, seen[0].headers["authorization"]) == ("from-env.test", "Bearer hk_env")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"valid": True, "status": "approved"}, (True, "OTP verified successfully")),
        (200, {"valid": False, "status": "pending"}, (False, "Invalid OTP code")),
        (
            200,
            {"valid": False, "status": "max_attempts_reached"},
            (False, "Too many attempts: request a new code"),
        ),
        (
            404,
            {"title": "Not Found", "detail": "no pending verification"},
            (False, "no pending verification"),
        ),
        (422, {"title": "Unprocessable", "detail": "code: digits only"}, (False, "code: digits only")),
    ],
)
def test_verify_otp_answers_a_pair(
    status: int, body: dict[str, Any], expected: tuple[bool, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert compat(answering(body, status), monkeypatch).verify_otp("+447700900123", "123456") == expected


def test_verify_otp_lets_a_server_error_rise(monkeypatch: pytest.MonkeyPatch) -> None:
    from herald.client import ServerError

    with pytest.raises(ServerError):
        compat(answering({"title": "boom"}, 500), monkeypatch).verify_otp("+447700900123", "123456")


def test_metrics_have_seed_003_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"since": "t", "sent": 3, "failed": 1, "success_rate": 0.75, "cost": 0.02, "channels": [],
            "queue": {"queued": 4, "sending": 1, "pending_approval": 2}}  # fmt: skip
    metrics = compat(answering(body), monkeypatch).get_metrics()
    assert metrics["database_stats"]["success_rate"] == 0.75
    assert metrics["database_stats"]["total_messages"] == 4
    assert metrics["queue_size"] == 5
    assert metrics["queue"] == {"queued": 4, "sending": 1, "pending_approval": 2}
