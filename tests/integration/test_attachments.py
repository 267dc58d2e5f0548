"""Email attachments end to end: accepted base64 with their checks (422 naming the field), sealed while the
message waits (answers show filename, type and size only), delivered by the pipeline to the dev inbox and to a
provider in its own format, and dropped once the message is finished, whichever way it finishes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from herald.client import AsyncHerald
from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from herald.storage.models import Message
from herald.web.api.app import create_app
from tests.conftest import make_agent, send_body, served, use_transport, webhook_channel
from tests.integration.test_dashboard import sign_in

SEND = "/api/v1/messaging/proactive/send"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
RECEIPT = {
    "filename": "receipt.pdf",
    "content_type": "application/pdf",
    "content": base64.b64encode(PDF).decode(),
}
RECEIPT_INFO = {"filename": "receipt.pdf", "content_type": "application/pdf", "size": len(PDF)}


def email_body(agent_id: str = "bot", **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "platform": "email", "recipient_id": "ada@example.org", "subject": "Your receipt",
        "content": "Thank you for your purchase.", "attachments": [RECEIPT], **overrides,
    }  # fmt: skip
    return send_body(agent_id, **fields)


async def sent(client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(SEND, json=body, headers=auth)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def sealed(rt: Runtime, message_id: str) -> bytes | None:
    async with rt.sessions() as session:
        query = select(Message.sealed_content).where(Message.id == message_id)
        value: bytes | None = (await session.execute(query)).scalar_one()
        return value


def problem_fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]


async def test_dev_inbox_keeps_the_file_and_answers_show_only_its_description(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    message = await sent(client, auth, email_body())
    assert message["attachments"] == [RECEIPT_INFO]
    stored = await sealed(rt, message["id"])
    assert stored is not None
    assert PDF not in stored  # sealed, not readable in the row
    assert RECEIPT["content"].encode() not in stored
    detail = (await client.get(f"/api/v1/messages/{message['id']}", headers=auth)).json()
    assert detail["attachments"] == [RECEIPT_INFO]
    history = (await client.get("/api/v1/messaging/proactive/history", headers=auth)).json()
    assert RECEIPT["content"] not in json.dumps(history)

    assert await worker.drain() == 1
    (received,) = (await client.get("/api/v1/devinbox?platform=email", headers=auth)).json()["items"]
    assert received["attachments"] == [{**RECEIPT_INFO, "content": RECEIPT["content"]}]
    assert received["subject"] == "Your receipt"
    done = (await client.get(f"/api/v1/messages/{message['id']}", headers=auth)).json()
    assert done["status"] == "sent"
    assert done["attachments"] == [RECEIPT_INFO]  # the description stays; the content is gone
    assert await sealed(rt, message["id"]) is None


async def test_a_message_without_attachments_answers_an_empty_list(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    message = await sent(client, auth, send_body("bot"))
    assert message["attachments"] == []
    assert await sealed(rt, message["id"]) is None


async def sendgrid_channel(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    body = {
        "platform": "email", "provider": "sendgrid", "name": "mail", "is_default": True,
        "credentials": {"api_key": "SG.test-key-123.abc", "from_email": "shop@example.com"},
    }  # fmt: skip
    response = await client.post("/api/v1/channels", json=body, headers=auth)
    assert response.status_code == 201, response.text


async def test_sendgrid_gets_the_file_through_the_pipeline(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    seen = use_transport(rt, lambda r: httpx.Response(202, headers={"X-Message-Id": "sg-1"}))
    await sendgrid_channel(client, auth)
    message = await sent(client, auth, email_body())
    assert await worker.drain() == 1
    (request,) = seen
    assert json.loads(request.content)["attachments"] == [
        {"content": RECEIPT["content"], "filename": "receipt.pdf", "type": "application/pdf",
         "disposition": "attachment"}
    ]  # fmt: skip
    assert await sealed(rt, message["id"]) is None


async def test_a_message_failed_for_good_drops_its_files(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    use_transport(rt, lambda r: httpx.Response(400, json={"errors": [{"message": "bad", "field": None}]}))
    await sendgrid_channel(client, auth)
    message = await sent(client, auth, email_body())
    await worker.drain()
    failed = (await client.get(f"/api/v1/messages/{message['id']}", headers=auth)).json()
    assert failed["status"] == "failed"
    assert await sealed(rt, message["id"]) is None


async def test_a_held_message_keeps_its_files_until_approved_and_sent(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, worker: Worker
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    message = await sent(client, auth, email_body("intern"))
    assert message["status"] == "pending_approval"
    await worker.drain()
    assert await sealed(rt, message["id"]) is not None
    approved = await client.post(f"/api/v1/messaging/proactive/approve/{message['id']}", headers=auth)
    assert approved.status_code == 200, approved.text
    assert await sealed(rt, message["id"]) is not None
    assert await worker.drain() == 1
    (received,) = (await client.get("/api/v1/devinbox", headers=auth)).json()["items"]
    assert received["attachments"][0]["content"] == RECEIPT["content"]
    assert await sealed(rt, message["id"]) is None


async def _reject(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, message_id: str) -> None:
    response = await client.post(f"/api/v1/messaging/proactive/reject/{message_id}", headers=auth)
    assert response.status_code == 200, response.text


async def _cancel(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, message_id: str) -> None:
    response = await client.post(f"/api/v1/messages/{message_id}/cancel", headers=auth)
    assert response.status_code == 200, response.text


async def _expire(client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, message_id: str) -> None:
    async with rt.sessions.begin() as session:
        await session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(expires_at=datetime.now(UTC) - timedelta(1))
        )
    await Worker(rt, worker_id="expiry").drain()


@pytest.mark.parametrize(
    ("finish", "status"), [(_reject, "rejected"), (_cancel, "cancelled"), (_expire, "expired")]
)
async def test_a_held_message_finished_unsent_drops_its_files(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, finish: Any, status: str
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    message = await sent(client, auth, email_body("intern"))
    assert await sealed(rt, message["id"]) is not None
    await finish(client, auth, rt, message["id"])
    detail = (await client.get(f"/api/v1/messages/{message['id']}", headers=auth)).json()
    assert detail["status"] == status
    assert detail["attachments"] == [RECEIPT_INFO]
    assert await sealed(rt, message["id"]) is None


def _with(**changes: Any) -> list[dict[str, Any]]:
    return [{**RECEIPT, **changes}]


@pytest.mark.parametrize(
    ("attachments", "field"),
    [
        (_with(content="not base64 at all!"), "attachments.0.content"),
        (_with(content="QUJD="), "attachments.0.content"),  # wrong padding
        (_with(filename="../etc/passwd"), "attachments.0.filename"),
        (_with(filename="dir\\receipt.pdf"), "attachments.0.filename"),
        (_with(filename="receipt\r\n.pdf"), "attachments.0.filename"),
        (_with(filename=".."), "attachments.0.filename"),
        (_with(content_type="pdf"), "attachments.0.content_type"),
        (_with(content_type="application/pdf; name=x"), "attachments.0.content_type"),
        ([{"filename": "a.pdf", "content": RECEIPT["content"]}], "attachments.0.content_type"),
    ],
)
async def test_bad_attachments_are_422_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], attachments: list[dict[str, Any]], field: str
) -> None:
    response = await client.post(SEND, json=email_body(attachments=attachments), headers=auth)
    assert field in problem_fields(response)


async def test_attachments_on_a_chat_platform_are_422(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = send_body("bot", attachments=[RECEIPT])  # slack
    assert problem_fields(await client.post(SEND, json=body, headers=auth)) == ["attachments"]


async def test_attachments_with_a_chat_fallback_are_422(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = email_body(fallback=[{"platform": "sms", "recipient_id": "+14155550100"}])
    assert problem_fields(await client.post(SEND, json=body, headers=auth)) == ["attachments"]


@pytest.mark.parametrize("settings_overrides", [{"attachments_max_bytes": 100, "attachments_max_count": 2}])
async def test_size_and_count_limits_are_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    small = {**RECEIPT, "content": base64.b64encode(b"x" * 40).decode()}
    assert (
        await client.post(SEND, json=email_body(attachments=[small, small]), headers=auth)
    ).status_code == 201
    too_big = email_body(attachments=[small, {**small, "content": base64.b64encode(b"x" * 61).decode()}])
    response = await client.post(SEND, json=too_big, headers=auth)
    assert problem_fields(response) == ["attachments"]
    assert "101 bytes" in response.json()["detail"]
    assert problem_fields(
        await client.post(SEND, json=email_body(attachments=[small] * 3), headers=auth)
    ) == ["attachments"]


async def test_bulk_items_carry_attachments(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    items = [email_body(), email_body(attachments=_with(filename="a/b.pdf"))]
    response = await client.post("/api/v1/messages/bulk", json={"messages": items}, headers=auth)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 1
    assert answer["items"][1]["error"]["field"] == "attachments.0.filename"
    assert await worker.drain() == 1
    (received,) = (await client.get("/api/v1/devinbox", headers=auth)).json()["items"]
    assert received["attachments"] == [{**RECEIPT_INFO, "content": RECEIPT["content"]}]


async def test_the_sdk_sends_bytes_as_base64(
    rt: Runtime, auth: dict[str, str], client: httpx.AsyncClient, worker: Worker
) -> None:
    key = auth["Authorization"].removeprefix("Bearer ")
    app = create_app(rt.settings, runtime=rt, run_worker=False)
    async with served(app) as url, AsyncHerald(url, key, agent_id="bot") as herald:
        message = await herald.send_message(
            content="Your receipt.", platform="email", recipient_id="ada@example.org",
            attachments=[{"filename": "receipt.pdf", "content_type": "application/pdf", "content": PDF}],
        )  # fmt: skip
    (info,) = message.attachments
    assert (info.filename, info.content_type, info.size) == ("receipt.pdf", "application/pdf", len(PDF))
    assert await worker.drain() == 1
    (received,) = (await client.get("/api/v1/devinbox", headers=auth)).json()["items"]
    assert base64.b64decode(received["attachments"][0]["content"]) == PDF


async def test_the_dashboard_dev_inbox_lists_and_downloads_the_file(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    await sent(client, auth, email_body())
    await worker.drain()
    await sign_in(client, auth, "/devinbox")
    page = await client.get("/devinbox")
    assert "receipt.pdf" in page.text
    (row,) = (await client.get("/api/v1/devinbox", headers=auth)).json()["items"]
    download = await client.get(f"/devinbox/{row['id']}/attachments/0")
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/octet-stream"  # never rendered in the dashboard
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''receipt.pdf"
    assert (await client.get(f"/devinbox/{row['id']}/attachments/1")).status_code == 404


async def test_an_email_channel_whose_provider_cannot_attach_is_422(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await webhook_channel(client, auth, platform="email")  # the generic webhook provider drops files
    response = await client.post(SEND, json=email_body(), headers=auth)
    assert problem_fields(response) == ["attachments"]
    assert "webhook" in response.json()["detail"]
