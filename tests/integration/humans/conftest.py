"""Approvals and questions end to end: each channel's provider fake behind the runtime's HTTP client, requests
sent by the real worker, decisions arriving signed on the real webhook endpoint."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from herald.fakes import FakeLLMState, FakeState, create_fake_app
from herald.fakes.inbound import DISCORD_TEST_PUBLIC_KEY
from herald.humans import decisions, outreach
from herald.pipeline.worker import Worker
from herald.producers.conversations.processor import Processor
from herald.runtime import Runtime

FAKE_ORIGIN = "http://providers.fake"
AGENT_URL = "https://agent.example/hook"

# provider -> (platform, credentials, the approver's address on it, the held message's recipient)
CHANNELS: dict[str, tuple[str, dict[str, Any], dict[str, str], str]] = {
    "slack": ("slack", {"bot_token": "xoxb-" + "1" * 20, "signing_secret": "8f742231b10e8888abcd99yyyzzz85a5"},
              {"platform": "slack", "recipient_id": "U0ADA00001"}, "C0CUSTOMER"),
    "telegram": ("telegram", {"bot_token": "123456:" + "A" * 35, "secret_token": "tg-secret-token"},
                 {"platform": "telegram", "recipient_id": "5550001"}, "7770001"),
    "discord_bot": ("discord", {"bot_token": "discord." + "b" * 30, "public_key": DISCORD_TEST_PUBLIC_KEY},
                    {"platform": "discord", "recipient_id": "123456789012345678", "user_id": "80351110224678912"},
                    "223456789012345678"),
    "whatsapp_cloud": ("whatsapp", {"access_token": "EAAG" + "x" * 20, "phone_number_id": "106540352242922",
                                    "app_secret": "meta-app-secret", "verify_token": "verify-me"},
                       {"platform": "whatsapp", "recipient_id": "15550001111"}, "15550009999"),
    "twilio": ("sms", {"account_sid": "AC" + "0" * 32, "auth_token": "twilio-auth-token",
                       "from_number": "+15017122661"}, {"platform": "sms", "recipient_id": "+15550001111"},
               "+15550009999"),
    "resend": ("email", {"api_key": "re_" + "k" * 20, "from_email": "approvals@example.com"},
               {"platform": "email", "recipient_id": "ada@example.com"}, "customer@example.com"),
}  # fmt: skip


class World:
    """Provider and LLM fakes, and the external agent's callback, behind the runtime's HTTP client."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.fake = FakeState()
        self.llm = FakeLLMState()
        self.callbacks: list[dict[str, Any]] = []
        app = httpx.ASGITransport(app=create_fake_app(self.fake, llm_state=self.llm))

        async def handle(request: httpx.Request) -> httpx.Response:
            if request.url.host == "agent.example":
                self.callbacks.append(json.loads(request.content))
                return httpx.Response(200, json={})
            return await app.handle_async_request(request)

        rt.http = httpx.AsyncClient(transport=httpx.MockTransport(handle))

    def sent(self, provider: str) -> list[Any]:
        return [r for r in self.fake.requests if r.provider == provider]

    async def settle(self) -> None:
        """What the loops would do next: open requests for held messages, send what is queued."""
        await outreach.open_pass(self.rt)
        await Worker(self.rt, worker_id="w").drain()

    async def take_inbound(self) -> int:
        """Route stored inbound messages (coded replies, threaded answers), then let the follow-ups of every
        decision taken (presses decided in the webhook included) finish."""
        routed = await Processor(self.rt).run_once()
        await decisions.humans(self.rt).idle()
        return routed

    async def notify(self) -> int:
        return await decisions.notify_pass(self.rt)


@pytest.fixture
def world(rt: Runtime) -> World:
    return World(rt)


async def channel(client: httpx.AsyncClient, auth: dict[str, str], provider: str) -> dict[str, Any]:
    platform, credentials, _, _ = CHANNELS[provider]
    body = {"platform": platform, "provider": provider, "name": provider, "credentials": credentials,
            "base_url": FAKE_ORIGIN, "is_default": True,
            "rate_per_second": 100}  # the request and then the approved message, without a second's wait  # fmt: skip
    response = await client.post("/api/v1/channels", json=body, headers=auth)
    assert response.status_code == 201, response.text
    out: dict[str, Any] = response.json()
    return out


async def approver(
    client: httpx.AsyncClient, auth: dict[str, str], name: str, *addresses: dict[str, str]
) -> str:
    response = await client.post(
        "/api/v1/approvers", json={"name": name, "addresses": list(addresses)}, headers=auth
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def policy(
    client: httpx.AsyncClient, auth: dict[str, str], approver_ids: list[str], **rules: Any
) -> str:
    body = {"name": "interns", "approver_ids": approver_ids, **rules}
    response = await client.post("/api/v1/approval-policies", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def agent(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    agent_id: str = "writer",
    level: str = "INTERN",
    **extra: Any,
) -> None:
    body = {"id": agent_id, "maturity_level": level, **extra}
    response = await client.post("/api/v1/agents", json=body, headers=auth)
    assert response.status_code == 201, response.text


async def hold(
    client: httpx.AsyncClient, auth: dict[str, str], platform: str, recipient_id: str, **extra: Any
) -> str:
    body = {"agent_id": "writer", "platform": platform, "recipient_id": recipient_id,
            "content": "Your refund of $40 is on its way.", "governance_metadata": {"confidence": 0.72}, **extra}  # fmt: skip
    response = await client.post("/api/v1/messaging/proactive/send", json=body, headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending_approval"
    return str(response.json()["id"])


async def only_request(
    client: httpx.AsyncClient, auth: dict[str, str], kind: str = "approval"
) -> dict[str, Any]:
    response = await client.get("/api/v1/approval-requests", params={"kind": kind}, headers=auth)
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    out: dict[str, Any] = item
    return out


async def status_of(client: httpx.AsyncClient, auth: dict[str, str], message_id: str) -> str:
    response = await client.get(f"/api/v1/messages/{message_id}", headers=auth)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def hook(channel_id: str) -> str:
    return f"/api/v1/interfaces/{channel_id}/webhook"


async def post_inbound(client: httpx.AsyncClient, channel_id: str, request: Any) -> httpx.Response:
    return await client.post(hook(channel_id), content=request.body, headers=request.headers)


LINK = re.compile(r"https?://\S+/approvals/links/[\w.\-]+")
