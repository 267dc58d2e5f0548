"""The SDK without a server (httpx.MockTransport): typed errors per status, request shapes (OTP's contract),
the two clients' parity, and seed 003's file format."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from herald.client import (
    APIError,
    AsyncHerald,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    Herald,
    HeraldError,
    MessageFileError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDenied,
    RateLimitError,
    ServerError,
    ValidationError,
    read_messages_file,
    to_send_request,
)

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **kwargs: Any) -> Herald:
    return Herald("http://herald.test", "hk_test", transport=httpx.MockTransport(handler), **kwargs)


def problem(status: int, field: str | None = None, **headers: str) -> Handler:
    body: dict[str, Any] = {"type": "about:blank", "title": "T", "status": status, "detail": f"d{status}"}
    if field:
        body["errors"] = [{"field": field, "message": "bad"}]
    return lambda _: httpx.Response(
        status, json=body, headers={"content-type": "application/problem+json", **headers}
    )


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDenied),
        (404, NotFoundError),
        (409, ConflictError),
        (413, PayloadTooLargeError),
        (422, ValidationError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (418, APIError),
    ],
)
def test_each_status_raises_its_own_error_with_the_problem_details(status: int, kind: type[APIError]) -> None:
    with pytest.raises(kind) as caught, client(problem(status, field="recipient_id")) as herald:
        herald.get_message("msg_1")
    error = caught.value
    assert type(error) is kind
    assert isinstance(error, HeraldError)
    assert (error.status, error.title, error.detail, error.field) == (
        status,
        "T",
        f"d{status}",
        "recipient_id",
    )
    assert error.errors == [{"field": "recipient_id", "message": "bad"}]
    assert str(error) == f"{status} T: d{status}"


def test_rate_limit_error_carries_retry_after_in_seconds_or_as_a_date() -> None:
    with pytest.raises(RateLimitError) as caught, client(problem(429, **{"retry-after": "7"})) as herald:
        herald.get_metrics()
    assert caught.value.retry_after == 7.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    with pytest.raises(RateLimitError) as dated, client(problem(429, **{"retry-after": later})) as herald:
        herald.get_metrics()
    assert dated.value.retry_after is not None
    assert 50 < dated.value.retry_after <= 60
    with pytest.raises(RateLimitError) as bare, client(problem(429)) as herald:
        herald.get_metrics()
    assert bare.value.retry_after is None


def test_an_error_that_is_not_problem_details_still_says_what_happened() -> None:
    def gateway(_: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    with pytest.raises(ServerError) as caught, client(gateway) as herald:
        herald.health()
    assert caught.value.status == 502
    assert "Bad Gateway" in caught.value.detail
    assert caught.value.field is None


def test_otp_calls_follow_the_contract() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "pending"})

    with client(handler) as herald:
        assert herald.send_otp("+447700900123", channel="sms", code_length=6, idempotency_key="otp-1") == {
            "status": "pending"
        }
        herald.send_otp("ada@example.com")
        herald.verify_otp("+447700900123", "123456")
    first, second, third = seen
    assert (first.method, first.url.path) == ("POST", "/api/v1/otp/send")
    assert json.loads(first.content) == {"recipient": "+447700900123", "channel": "sms", "code_length": 6}
    assert first.headers["idempotency-key"] == "otp-1"
    assert first.headers["authorization"] == "Bearer hk_test"
    assert json.loads(second.content) == {"recipient": "ada@example.com"}
    assert "idempotency-key" not in second.headers
    assert (third.url.path, json.loads(third.content)) == (
        "/api/v1/otp/verify",
        {"recipient": "+447700900123", "code": "123456"},
    )


async def test_async_client_sends_the_same_requests() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/cancel"):
            return httpx.Response(409, json={"title": "Conflict", "detail": "message is sent"})
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    transport = httpx.MockTransport(handler)
    async with AsyncHerald("http://herald.test", "hk_test", transport=transport) as herald:
        assert await herald.list_messages(status="sent", limit=5) == {"items": [], "next_cursor": None}
        with pytest.raises(ConflictError):
            await herald.cancel_message("msg/1")
    assert str(seen[0].url) == "http://herald.test/api/v1/messaging/proactive/history?status=sent&limit=5"
    assert seen[1].url.raw_path == b"/api/v1/messages/msg%2F1/cancel"


def test_both_clients_have_the_same_methods_with_the_same_parameters() -> None:
    def methods(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(getattr(cls, name)).parameters)
            for name in dir(cls)
            if not name.startswith("_") and name not in ("close", "aclose") and callable(getattr(cls, name))
        }

    sync, asynchronous = methods(Herald), methods(AsyncHerald)
    assert sync == asynchronous
    seed_003 = {"send_otp", "verify_otp", "send_message", "send_bulk_messages", "load_messages_from_json",
                "get_metrics", "get_delivery_report"}  # fmt: skip
    assert seed_003 <= sync.keys()
    assert all(inspect.iscoroutinefunction(getattr(AsyncHerald, name)) for name in asynchronous)


def test_default_agent_fills_calls_that_name_none() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(201, json={"id": "msg_1"})

    with client(handler, agent_id="agent_123") as herald:
        herald.send_message(
            platform="slack", recipient_id="C1", content="hi", scheduled_for=datetime(2030, 1, 1, tzinfo=UTC)
        )
        herald.send_message(agent_id="other", platform="slack", recipient_id="C1", content="hi")
    assert bodies[0] == {"agent_id": "agent_123", "platform": "slack", "recipient_id": "C1", "content": "hi",
                         "scheduled_for": "2030-01-01T00:00:00+00:00"}  # fmt: skip
    assert bodies[1]["agent_id"] == "other"


def test_bulk_chunk_size_is_checked_before_anything_is_sent() -> None:
    with client(lambda _: httpx.Response(500)) as herald, pytest.raises(ValueError, match="chunk_size"):
        herald.send_bulk_messages([{}], chunk_size=10_001)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (
            {"phone_number": "+447700900123", "message_type": "alert", "content": "Security alert!", "priority": "CRITICAL"},
            {"recipient_id": "+447700900123", "platform": "sms", "content": "Security alert!", "priority": "CRITICAL",
             "governance_metadata": {"message_type": "alert"}, "agent_id": "a"},
        ),
        (
            {"phone_number": "447700900123", "message_type": "WhatsApp", "content": "x", "scheduled_for": "2030-01-01T09:00:00Z"},
            {"recipient_id": "447700900123", "platform": "whatsapp", "content": "x", "scheduled_for": "2030-01-01T09:00:00Z",
             "governance_metadata": {"message_type": "WhatsApp"}, "agent_id": "a"},
        ),
        (
            {"phone_number": "+447700900123", "message_type": "call", "content": "x", "governance_metadata": {"k": 1}},
            {"recipient_id": "+447700900123", "platform": "voice", "content": "x",
             "governance_metadata": {"message_type": "call", "k": 1}, "agent_id": "a"},
        ),
        (
            {"agent_id": "b", "contact_id": "con_1", "content": "x", "priority": "LOW"},
            {"agent_id": "b", "contact_id": "con_1", "content": "x", "priority": "LOW"},
        ),
        ({"platform": "slack", "recipient_id": "C1", "content": "x", "colour": "red"},
         {"platform": "slack", "recipient_id": "C1", "content": "x", "colour": "red", "agent_id": "a"}),
        ("not a dict", "not a dict"),
    ],
)  # fmt: skip
def test_seed_003_messages_become_send_requests(item: Any, expected: Any) -> None:
    assert to_send_request(item, agent_id="a") == expected


def test_message_files(tmp_path: Path) -> None:
    listed = tmp_path / "list.json"
    listed.write_text(
        json.dumps(
            [{"phone_number": "+447700900123", "content": "a"}, {"content": "b", "idempotency_key": "mine"}]
        )
    )
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"messages": [{"phone_number": "+447700900123", "content": "a"}]}))
    items = read_messages_file(listed, agent_id="bot", idempotent=True)
    assert items[0]["idempotency_key"].startswith("file-")
    assert items[0]["idempotency_key"].endswith("-0")
    assert items[1]["idempotency_key"] == "mine"
    assert (
        read_messages_file(listed, agent_id="bot", idempotent=True) == items
    )  # the same file, the same keys
    assert "idempotency_key" not in read_messages_file(listed)[0]
    assert read_messages_file(wrapped, platform="email")[0]["platform"] == "email"
    for bad, reason in (("{not json", "not JSON"), ('{"a": 1}', "list of messages")):
        path = tmp_path / "bad.json"
        path.write_text(bad)
        with pytest.raises(MessageFileError, match=reason):
            read_messages_file(path)
