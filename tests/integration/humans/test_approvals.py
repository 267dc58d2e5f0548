"""An INTERN's held message taken to its approver on each channel, in that platform's own form, and decided
there the way that platform sends a decision: the message is then sent (or never is), and every copy that
can be changed shows the outcome."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from herald.fakes.inbound import (
    discord_component,
    message,
    slack_block_action,
    telegram_callback_query,
    whatsapp_button_reply,
)
from herald.runtime import Runtime
from herald.storage.models import AuditEntry
from tests.integration.humans.conftest import (
    CHANNELS,
    LINK,
    World,
    agent,
    approver,
    channel,
    hold,
    only_request,
    policy,
    post_inbound,
    status_of,
)
from tests.integration.test_dashboard import sign_in


def press(
    provider: str, request_id: str, choice: str, code: str, *, sender: str | None = None, **extra: Any
) -> Any:
    """The decision as ``provider`` sends it: a signed button press, or for SMS a coded reply."""
    platform, creds, address, _ = CHANNELS[provider]
    who = sender or address.get("user_id") or address["recipient_id"]
    value = f"hl:{request_id}:{choice}"
    label = "Approve" if choice == "a" else "Reject"
    if provider == "slack":
        return slack_block_action(creds, value=value, label=label, user_id=who, channel_id="D0ADA00001",
                                  message_ts=extra.get("ts", "1733390000.000100"))  # fmt: skip
    if provider == "telegram":
        return telegram_callback_query(
            creds, data=value, sender_id=who, chat_id=who, message_id=42, button_text=label
        )
    if provider == "discord_bot":
        return discord_component(creds, custom_id=value, user_id=who, channel_id=address["recipient_id"],
                                 message_id="1100000000000000001", label=label)  # fmt: skip
    if provider == "whatsapp_cloud":
        return whatsapp_button_reply(creds, button_id=value, title=label, sender=who,
                                     context_id="wamid.HBgLMTU1NTAwMDExMTEVAgARGBI")  # fmt: skip
    assert provider == "twilio"
    word = "YES" if choice == "a" else "NO"
    return message("twilio", creds, url=f"http://herald.test/api/v1/interfaces/{extra['channel_id']}/webhook",
                   text=f"{word} {code} {extra.get('reason', '')}".strip(), sender_id=who)  # fmt: skip


def request_shape(world: World, provider: str) -> Any:
    """The approval request as the provider received it."""
    sent = [r for r in world.sent(provider) if r.method == "POST"]
    assert sent, [r.path for r in world.fake.requests]
    return sent[0]


def assert_buttons(provider: str, recorded: Any, request_id: str) -> None:
    approve, reject = f"hl:{request_id}:a", f"hl:{request_id}:r"
    body = recorded.json if recorded.json is not None else {}
    if provider == "slack":
        [actions] = [b for b in body["blocks"] if b["type"] == "actions"]
        assert [(e["value"], e["text"]["text"], e.get("style")) for e in actions["elements"]] == [
            (approve, "Approve", "primary"), (reject, "Reject", "danger")]  # fmt: skip
    elif provider == "telegram":
        buttons = [b for row in body["reply_markup"]["inline_keyboard"] for b in row]
        assert [(b["callback_data"], b["text"]) for b in buttons] == [
            (approve, "Approve"),
            (reject, "Reject"),
        ]
    elif provider == "discord_bot":
        buttons = [c for row in body["components"] for c in row["components"]]
        assert [(b["custom_id"], b["label"]) for b in buttons] == [(approve, "Approve"), (reject, "Reject")]
    elif provider == "whatsapp_cloud":
        assert body["type"] == "interactive"
        assert body["interactive"]["type"] == "button"
        assert [b["reply"]["id"] for b in body["interactive"]["action"]["buttons"]] == [approve, reject]
    elif provider == "twilio":
        assert "Reply YES" in recorded.form["Body"][0]
    else:
        assert LINK.search(recorded.body)


@pytest.mark.parametrize("provider", ["slack", "telegram", "discord_bot", "whatsapp_cloud", "twilio"])
async def test_an_approval_decided_on_the_approvers_channel_sends_the_message(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, provider: str
) -> None:
    platform, _, address, customer = CHANNELS[provider]
    interface = await channel(client, auth, provider)
    await agent(client, auth)
    ada = await approver(client, auth, "Ada", address)
    await policy(client, auth, [ada])
    message_id = await hold(client, auth, platform, customer)
    await world.settle()
    request = await only_request(client, auth)
    assert request["message_id"] == message_id
    assert request["status"] == "pending"
    [copy] = request["deliveries"]
    assert (copy["approver_id"], copy["platform"], copy["message_status"]) == (ada, platform, "sent")
    recorded = request_shape(world, provider)
    assert_buttons(provider, recorded, request["id"])
    shown = json.dumps(recorded.json) if recorded.json is not None else recorded.body
    assert "Your refund of $40 is on its way." in shown or "refund" in json.dumps(recorded.form)
    before = len(world.fake.requests)

    decision = press(provider, request["id"], "a", request["code"], channel_id=interface["id"])
    response = await post_inbound(client, interface["id"], decision)
    assert response.status_code == 200, response.text
    if provider == "discord_bot":
        assert response.json() == {"type": 6}  # the press is acknowledged as an update, not a new message
    # A press is decided in the webhook, before it is answered; a coded SMS reply waits for inbound routing.
    assert await status_of(client, auth, message_id) == (
        "pending_approval" if provider == "twilio" else "queued"
    )
    assert await world.take_inbound() == (1 if provider == "twilio" else 0)
    assert await status_of(client, auth, message_id) == "queued"
    await world.settle()
    detail = (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()
    assert detail["status"] == "sent", json.dumps(detail)
    settled = await only_request(client, auth)
    assert settled["status"] == "approved"
    assert settled["decided_by"] == ada
    assert settled["votes"][0]["via"] == platform
    after = [(r.method, r.path) for r in world.fake.requests[before:]]
    edits = {"slack": "/api/chat.update", "telegram": "/editMessageText", "discord_bot": "/messages/"}
    if provider in edits:
        assert any(edits[provider] in path for _, path in after), after
    if provider == "telegram":
        assert any(path.endswith("/answerCallbackQuery") for _, path in after), after


@pytest.mark.parametrize("provider", ["slack", "twilio"])
async def test_a_rejection_with_its_reason_means_the_message_is_never_sent(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, provider: str
) -> None:
    platform, _, address, customer = CHANNELS[provider]
    interface = await channel(client, auth, provider)
    await agent(client, auth)
    await policy(client, auth, [await approver(client, auth, "Ada", address)])
    message_id = await hold(client, auth, platform, customer)
    await world.settle()
    request = await only_request(client, auth)
    decision = press(
        provider, request["id"], "r", request["code"], channel_id=interface["id"], reason="wrong tone"
    )
    assert (await post_inbound(client, interface["id"], decision)).status_code == 200
    await world.take_inbound()
    assert await status_of(client, auth, message_id) == "rejected"
    detail = (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()
    if provider == "twilio":
        assert detail["last_error"] == "wrong tone"
    assert (await only_request(client, auth))["status"] == "rejected"


async def test_an_approval_by_email_link_decides_only_on_post_and_only_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    platform, _, address, customer = CHANNELS["resend"]
    await channel(client, auth, "resend")
    await agent(client, auth)
    await policy(client, auth, [await approver(client, auth, "Ada", address)])
    message_id = await hold(client, auth, platform, customer)
    await world.settle()
    recorded = request_shape(world, "resend")
    assert recorded.json["to"] == ["ada@example.com"] or recorded.json["to"] == "ada@example.com"
    found = LINK.search(recorded.json.get("text") or recorded.body)
    assert found, recorded.body
    path = "/" + found.group(0).split("/", 3)[3]
    page = await client.get(path)  # what a mail scanner does
    assert page.status_code == 200
    assert "Approve" in page.text
    assert "refund" in page.text
    assert await status_of(client, auth, message_id) == "pending_approval"
    forged = await client.post(path[:-3] + "AAA", data={"decision": "approve"})
    assert forged.status_code == 401
    assert await status_of(client, auth, message_id) == "pending_approval"
    decided = await client.post(path, data={"decision": "approve"})
    assert decided.status_code == 200, decided.text
    assert await status_of(client, auth, message_id) == "queued"
    replayed = await client.post(path, data={"decision": "reject"})
    assert replayed.status_code == 409
    assert await status_of(client, auth, message_id) == "queued"
    assert (await client.get(path)).status_code == 409


async def test_a_quorum_of_two_needs_both_approvers(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    interface = await channel(client, auth, "slack")
    await agent(client, auth)
    ada = await approver(client, auth, "Ada", {"platform": "slack", "recipient_id": "U0ADA00001"})
    bob = await approver(client, auth, "Bob", {"platform": "slack", "recipient_id": "U0BOB00002"})
    await policy(client, auth, [ada, bob], quorum=2)
    message_id = await hold(client, auth, "slack", "C0CUSTOMER")
    await world.settle()
    request = await only_request(client, auth)
    assert len(request["deliveries"]) == 2
    await post_inbound(client, interface["id"], press("slack", request["id"], "a", request["code"]))
    await world.take_inbound()
    assert await status_of(client, auth, message_id) == "pending_approval"
    assert (await only_request(client, auth))["status"] == "pending"
    # Ada pressing again (a new press, not a replay) does not count twice.
    await post_inbound(client, interface["id"], press("slack", request["id"], "a", request["code"]))
    await world.take_inbound()
    assert await status_of(client, auth, message_id) == "pending_approval"
    await post_inbound(
        client, interface["id"], press("slack", request["id"], "a", request["code"], sender="U0BOB00002")
    )
    await world.take_inbound()
    assert await status_of(client, auth, message_id) == "queued"
    settled = await only_request(client, auth)
    assert settled["status"] == "approved"
    assert {v["voter"] for v in settled["votes"]} == {ada, bob}


async def test_a_non_approver_and_a_forged_or_replayed_press_decide_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    interface = await channel(client, auth, "slack")
    await agent(client, auth)
    ada = await approver(client, auth, "Ada", {"platform": "slack", "recipient_id": "U0ADA00001"})
    await policy(client, auth, [ada], quorum=1)
    message_id = await hold(client, auth, "slack", "C0CUSTOMER")
    await world.settle()
    request = await only_request(client, auth)
    eve = press("slack", request["id"], "a", request["code"], sender="U0EVE00666")
    assert (await post_inbound(client, interface["id"], eve)).status_code == 200
    await world.take_inbound()
    assert await status_of(client, auth, message_id) == "pending_approval"
    async with rt.sessions() as session:
        refused = (
            await session.execute(select(AuditEntry).where(AuditEntry.action == "approval.refused"))
        ).scalars()
        [entry] = list(refused)
    assert entry.detail["sender_id"] == "U0EVE00666"
    forged = press("slack", request["id"], "a", request["code"])
    forged = forged._replace(headers={**forged.headers, "x-slack-signature": "v0=" + "0" * 64})
    assert (await post_inbound(client, interface["id"], forged)).status_code == 401
    assert await status_of(client, auth, message_id) == "pending_approval"
    # Ada rejects; the very same request posted again (a replay) is stored once and changes nothing more.
    reject = press("slack", request["id"], "r", request["code"])
    for _ in range(2):
        assert (await post_inbound(client, interface["id"], reject)).status_code == 200
    await world.take_inbound()
    assert await status_of(client, auth, message_id) == "rejected"
    late = press("slack", request["id"], "a", request["code"])
    await post_inbound(client, interface["id"], late)
    await world.take_inbound()
    assert await status_of(client, auth, message_id) == "rejected"


async def test_without_a_policy_a_held_message_waits_for_the_api_as_before(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    await channel(client, auth, "slack")
    await agent(client, auth)
    message_id = await hold(client, auth, "slack", "C0CUSTOMER")
    await world.settle()
    request = await only_request(client, auth)
    assert request["deliveries"] == []
    assert request["policy_id"] is None
    assert list(world.sent("slack")) == []
    response = await client.post(f"/api/v1/messaging/proactive/approve/{message_id}", headers=auth, json={})
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert (await only_request(client, auth))["status"] == "approved"


async def test_the_dashboard_shows_where_a_request_went_and_who_answered(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    interface = await channel(client, auth, "slack")
    await agent(client, auth)
    ada = await approver(client, auth, "Ada", CHANNELS["slack"][2])
    bob = await approver(client, auth, "Bob", {"platform": "slack", "recipient_id": "U0BOB00002"})
    await policy(client, auth, [ada, bob], quorum=2)
    await hold(client, auth, "slack", "C0CUSTOMER")
    await world.settle()
    request = await only_request(client, auth)
    await post_inbound(client, interface["id"], press("slack", request["id"], "a", request["code"]))
    await world.take_inbound()
    await sign_in(client, auth, "/approvals")
    page = await client.get("/approvals")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert f"Request <strong>{request['code']}</strong> · 1 of 2 approvals" in text
    assert "Ada on slack (U0ADA00001): sent · <strong>answered</strong>" in text
    assert "Bob on slack (U0BOB00002): sent</li>" in text


async def test_two_approvers_pressing_at_once_meet_the_quorum(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World
) -> None:
    interface = await channel(client, auth, "slack")
    await agent(client, auth)
    ada = await approver(client, auth, "Ada", {"platform": "slack", "recipient_id": "U0ADA00001"})
    bob = await approver(client, auth, "Bob", {"platform": "slack", "recipient_id": "U0BOB00002"})
    await policy(client, auth, [ada, bob], quorum=2)
    message_id = await hold(client, auth, "slack", "C0CUSTOMER")
    await world.settle()
    request = await only_request(client, auth)
    presses = [
        press("slack", request["id"], "a", request["code"], sender=who)
        for who in ("U0ADA00001", "U0BOB00002")
    ]
    answers = await asyncio.gather(*(post_inbound(client, interface["id"], p) for p in presses))
    assert [a.status_code for a in answers] == [200, 200]
    await world.take_inbound()
    assert await status_of(client, auth, message_id) == "queued"
    assert (await only_request(client, auth))["status"] == "approved"
