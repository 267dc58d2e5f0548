"""Long messages split once in the pipeline: a provider fake failing a later part, and the retry resending only the
parts not yet delivered; cost from the part record; a fallback starting its own parts from the first; LINE's
five-part requests resumed with the same retry key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from herald.fakes import create_fake_app
from herald.pipeline.worker import Worker
from herald.providers.fakebase import Behaviour, FakeState, Recorded
from herald.providers.line.send import retry_key
from herald.runtime import Runtime
from tests.conftest import make_agent, send_body

SEND = "/api/v1/messaging/proactive/send"
FAKE_ORIGIN = "http://providers.fake"
COST = 0.25


@dataclass(frozen=True)
class Case:
    platform: str
    credentials: dict[str, Any]
    recipient: str
    limit: int  # the provider's longest message
    text_of: Callable[[Recorded], str]  # the text one recorded request carried


def _graph_text(r: Recorded) -> str:
    return str(r.json["text"]["body"] if "messaging_product" in r.json else r.json["message"]["text"])


CASES = {
    "telegram": Case("telegram", {"bot_token": "123456:" + "A" * 35}, "987654321", 4096,
                     lambda r: str(r.json["text"])),
    "whatsapp_cloud": Case("whatsapp", {"access_token": "EAAG" + "x" * 20, "phone_number_id": "106540352242922"},
                           "15551234567", 4096, _graph_text),
    "discord_bot": Case("discord", {"bot_token": "discord." + "b" * 30}, "1234567890", 2000,
                        lambda r: str(r.json["content"])),
    "messenger": Case("messenger", {"page_access_token": "EAAG" + "y" * 20, "page_id": "1234567890"},
                      "6541237890123456", 2000, _graph_text),
    "line": Case("line", {"channel_access_token": "line-token-" + "z" * 20}, "U4af4980629a1b2c3d4e5f60718293a4b",
                 5000, lambda r: str(r.json["messages"])),
}  # fmt: skip


@pytest.fixture
def fake(rt: Runtime) -> FakeState:
    """Every provider fake behind the runtime's HTTP client."""
    state = FakeState()
    rt.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_app(state)))
    return state


@pytest.fixture
async def bot(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, "bot", "AUTONOMOUS")


async def make_channel(client: httpx.AsyncClient, auth: dict[str, str], provider: str) -> str:
    """The provider's channel on the fakes; per-recipient limits raised so a retry is not held back for seconds."""
    case = CASES[provider]
    response = await client.post("/api/v1/channels", json={
        "platform": case.platform, "provider": provider, "name": provider, "credentials": case.credentials,
        "base_url": FAKE_ORIGIN, "cost_per_message": COST, "is_default": True, "recipient_rate_per_second": 1000,
    }, headers=auth)  # fmt: skip
    assert response.status_code == 201, response.text
    channel_id: str = response.json()["id"]
    return channel_id


def paragraphs(count: int, limit: int) -> list[str]:
    """``count`` paragraphs that each fill most of a provider message, so each is exactly one part."""
    return [f"part {n} " + "x" * (limit * 3 // 4) for n in range(count)]


async def send(client: httpx.AsyncClient, auth: dict[str, str], **fields: Any) -> str:
    response = await client.post(SEND, json=send_body("bot", **fields), headers=auth)
    assert response.status_code == 201, response.text
    message_id: str = response.json()["id"]
    return message_id


async def get(client: httpx.AsyncClient, auth: dict[str, str], path: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/messages/{path}", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.usefixtures("bot")
@pytest.mark.parametrize("provider", ["discord_bot", "messenger", "telegram", "whatsapp_cloud"])
async def test_a_retry_after_the_second_part_failed_resends_only_the_second_part(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, fake: FakeState, provider: str
) -> None:
    case = CASES[provider]
    await make_channel(client, auth, provider)
    first, second = paragraphs(2, case.limit)
    message_id = await send(
        client, auth, platform=case.platform, recipient_id=case.recipient, content=f"{first}\n{second}"
    )
    # The first sendMessage (or its provider's equivalent) succeeds, the second answers a retryable 5xx.
    fake.scripts[provider].extend([Behaviour(kind="ok"), Behaviour(kind="server_error", status=503)])

    await worker.drain()

    received = [case.text_of(r) for r in fake.requests if r.provider == provider]
    assert received == [first, second, second]  # part 1 once; part 2 failed, then once successfully
    sent = await get(client, auth, message_id)
    assert sent["status"] == "sent"
    assert [a["outcome"] for a in sent["attempt_log"]] == ["retry", "sent"]
    failed, succeeded = sent["attempt_log"]
    assert "503" in failed["error"]
    part_ids = sent["provider_message_id"].split(",")
    assert len(part_ids) == 2
    # Each attempt shows the part it delivered: the failed one had part 1 out before part 2 failed.
    assert (failed["provider_message_id"], succeeded["provider_message_id"]) == tuple(part_ids)
    assert sent["cost"] == pytest.approx(2 * COST)

    report = await get(client, auth, f"{message_id}/report")
    assert [(p["route_step"], p["index"], p["attempt"]) for p in report["parts"]] == [(0, 0, 1), (0, 1, 2)]
    assert [p["provider_message_id"] for p in report["parts"]] == part_ids
    assert {p["provider"] for p in report["parts"]} == {provider}


@pytest.mark.usefixtures("bot")
async def test_a_message_that_fits_in_one_provider_message_has_no_part_record(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, fake: FakeState
) -> None:
    await make_channel(client, auth, "telegram")
    message_id = await send(client, auth, platform="telegram", recipient_id="987654321", content="short")
    await worker.drain()
    sent = await get(client, auth, message_id)
    assert sent["status"] == "sent"
    assert sent["cost"] == pytest.approx(COST)
    assert (await get(client, auth, f"{message_id}/report"))["parts"] == []


@pytest.mark.usefixtures("bot")
async def test_a_fallback_starts_its_own_parts_from_the_first(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, fake: FakeState
) -> None:
    await make_channel(client, auth, "telegram")
    await make_channel(client, auth, "whatsapp_cloud")
    first, second = paragraphs(2, 4096)
    message_id = await send(
        client, auth, platform="telegram", recipient_id="987654321", content=f"{first}\n{second}",
        fallback=[{"platform": "whatsapp", "recipient_id": "15551234567"}],
    )  # fmt: skip
    # Telegram takes part 1, then the person blocks the bot: part 2 can never go there.
    fake.scripts["telegram"].extend([Behaviour(kind="ok"), Behaviour(kind="permanent")])

    await worker.drain()

    sent = await get(client, auth, message_id)
    assert sent["status"] == "sent"
    assert sent["platform"] == "whatsapp"
    assert [a["outcome"] for a in sent["attempt_log"]] == ["failed", "sent"]
    # WhatsApp never had part 1, so it gets both parts; the Telegram part stays recorded on its own step.
    whatsapp = [r.json["text"]["body"] for r in fake.requests if r.provider == "whatsapp_cloud"]
    assert whatsapp == [first, second]
    report = await get(client, auth, f"{message_id}/report")
    assert [(p["route_step"], p["index"], p["provider"]) for p in report["parts"]] == [
        (0, 0, "telegram"), (1, 0, "whatsapp_cloud"), (1, 1, "whatsapp_cloud"),
    ]  # fmt: skip
    assert sent["provider_message_id"].split(",") == [p["provider_message_id"] for p in report["parts"][1:]]
    assert sent["cost"] == pytest.approx(2 * COST)  # the parts the sending step delivered


@pytest.mark.usefixtures("bot")
async def test_line_resends_only_the_failed_request_of_five_parts_with_its_retry_key(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker, fake: FakeState
) -> None:
    await make_channel(client, auth, "line")
    texts = paragraphs(7, 5000)
    user = CASES["line"].recipient
    message_id = await send(client, auth, platform="line", recipient_id=user, content="\n".join(texts))
    fake.scripts["line"].extend([Behaviour(kind="ok"), Behaviour(kind="server_error", status=500)])

    await worker.drain()

    requests = [r for r in fake.requests if r.provider == "line"]
    assert [[m["text"] for m in r.json["messages"]] for r in requests] == [texts[:5], texts[5:], texts[5:]]
    keys = [r.headers["x-line-retry-key"] for r in requests]
    assert keys == [retry_key(message_id, 0), retry_key(message_id, 5), retry_key(message_id, 5)]
    sent = await get(client, auth, message_id)
    assert sent["status"] == "sent"
    assert len(sent["provider_message_id"].split(",")) == 7
    assert sent["cost"] == pytest.approx(7 * COST)
    report = await get(client, auth, f"{message_id}/report")
    assert [p["attempt"] for p in report["parts"]] == [1] * 5 + [2] * 2


async def test_the_channel_test_endpoint_splits_as_the_pipeline_does(
    client: httpx.AsyncClient, auth: dict[str, str], fake: FakeState
) -> None:
    channel_id = await make_channel(client, auth, "telegram")
    first, second = paragraphs(2, 4096)
    response = await client.post(
        f"/api/v1/channels/{channel_id}/test",
        json={"recipient_id": "987654321", "content": f"{first}\n{second}"}, headers=auth,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["ok"] is True, answer
    assert len(answer["provider_message_id"].split(",")) == 2
    assert [r.json["text"] for r in fake.requests if r.provider == "telegram"] == [first, second]
