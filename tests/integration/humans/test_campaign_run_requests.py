"""An INTERN's held campaign run taken to its approvers like a held message: one request for the whole run,
its copies showing the run's preview, decided by a press, a coded reply, an email link or the API, with the
same quorum, refusals and expiry; the approved run then creates its messages, a rejected one never does."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

from herald.humans import outreach, runs
from herald.runtime import Runtime
from herald.storage.models import AuditEntry, CampaignRun, HumanRequest, Message
from herald.storage.types import utcnow
from tests.conftest import make_agent
from tests.integration.humans.conftest import (
    CHANNELS,
    LINK,
    World,
    approver,
    channel,
    only_request,
    policy,
    post_inbound,
)
from tests.integration.humans.test_approvals import assert_buttons, press, request_shape
from tests.integration.test_campaigns import CAMPAIGNS, body, create, data_source, run, tenant_db

ADA = {"platform": "slack", "recipient_id": "U0ADA00001"}
BOB = {"platform": "slack", "recipient_id": "U0BOB00002"}


async def held_run(
    client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path, *, agent: bool = True
) -> tuple[str, dict[str, Any]]:
    """An INTERN's campaign over the dealer's customers, run once: (campaign id, the held run)."""
    if agent:
        await make_agent(client, auth, "dealer-agent", "INTERN")
    source = await data_source(client, auth, tenant_db(tmp_path / "dealer.db"))
    campaign = await create(client, auth, body(source))
    held = await run(client, auth, campaign["id"])
    assert held["status"] == "pending_approval"
    return str(campaign["id"]), held


async def run_of(
    client: httpx.AsyncClient, auth: dict[str, str], campaign_id: str, run_id: str
) -> dict[str, Any]:
    response = await client.get(f"{CAMPAIGNS}/{campaign_id}/runs/{run_id}", headers=auth)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def campaign_messages(rt: Runtime) -> list[Message]:
    """The run's messages (the approvers' copies are messages too, and not counted here)."""
    async with rt.sessions() as session:
        rows = (await session.execute(select(Message).order_by(Message.recipient_id))).scalars()
        return [m for m in rows if (m.governance_metadata or {}).get("campaign_run_id")]


def slack_text(recorded: Any) -> str:
    return json.dumps(recorded.json, ensure_ascii=False)


async def test_a_held_run_reaches_its_approver_on_slack_with_its_preview_and_approve_sends_it(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, tmp_path: Path
) -> None:
    interface = await channel(client, auth, "slack")
    ada = await approver(client, auth, "Ada", ADA)
    await make_agent(client, auth, "dealer-agent", "INTERN")
    await policy(client, auth, [ada], agent_ids=["dealer-agent"])  # the policy for the campaign's agent
    campaign_id, held = await held_run(client, auth, tmp_path, agent=False)
    await world.settle()
    assert await outreach.open_pass(rt) == 0  # one request per run, however often the loop passes
    request = await only_request(client, auth)
    assert (request["campaign_run_id"], request["message_id"], request["status"]) == (
        held["id"],
        None,
        "pending",
    )
    [copy] = request["deliveries"]
    assert (copy["approver_id"], copy["platform"], copy["message_status"]) == (ada, "slack", "sent")
    recorded = request_shape(world, "slack")
    assert_buttons("slack", recorded, request["id"])
    shown = recorded.json["text"]
    assert "Campaign: Spring reminder" in shown
    assert "Agent: dealer-agent (INTERN)" in shown
    assert "Audience: 4 · to send: 3" in shown
    assert "cannot be sent: 1" in shown
    samples = held["preview"]["sample"]
    assert len(samples) == 3
    for sample in samples:  # each sample shown, a long one (the email) clipped to fit a chat message
        assert f"To {sample['platform']} {sample['recipient_id']}:" in shown
        assert sample["content"][: runs.SAMPLE_CHARS - 1] in shown
    assert len(shown) <= runs.TEXT_LIMIT
    assert await campaign_messages(rt) == []

    before = len(world.fake.requests)
    pressed = await post_inbound(client, interface["id"], press("slack", request["id"], "a", request["code"]))
    assert pressed.status_code == 200, pressed.text
    await world.take_inbound()
    done = await run_of(client, auth, campaign_id, held["id"])
    assert (done["status"], done["created"], done["approved_by"]) == ("completed", 3, ada)
    sent = await campaign_messages(rt)
    assert len(sent) == 3
    assert all(m.status == "queued" and m.approved_by == ada for m in sent)
    settled = await only_request(client, auth)
    assert (settled["status"], settled["decided_by"]) == ("approved", ada)
    assert [v["via"] for v in settled["votes"]] == ["slack"]
    assert any("/api/chat.update" in r.path for r in world.fake.requests[before:])
    async with rt.sessions() as session:
        approval = (await session.execute(
            select(AuditEntry).where(AuditEntry.action == "campaign.run.approved"))).scalar_one()  # fmt: skip
    assert (approval.actor, approval.detail["approver"]) == (f"approver:{ada}", ada)


async def test_a_quorum_of_two_needs_both_approvers_before_anything_is_created(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, tmp_path: Path
) -> None:
    interface = await channel(client, auth, "slack")
    ada = await approver(client, auth, "Ada", ADA)
    bob = await approver(client, auth, "Bob", BOB)
    await policy(client, auth, [ada, bob], quorum=2)
    campaign_id, held = await held_run(client, auth, tmp_path)
    await world.settle()
    request = await only_request(client, auth)
    assert len(request["deliveries"]) == 2
    assert "Needs 2 approvals" in slack_text(request_shape(world, "slack"))
    await post_inbound(client, interface["id"], press("slack", request["id"], "a", request["code"]))
    await world.take_inbound()
    assert (await run_of(client, auth, campaign_id, held["id"]))["status"] == "pending_approval"
    assert await campaign_messages(rt) == []
    bobs = press("slack", request["id"], "a", request["code"], sender=BOB["recipient_id"])
    await post_inbound(client, interface["id"], bobs)
    await world.take_inbound()
    done = await run_of(client, auth, campaign_id, held["id"])
    assert (done["status"], done["created"], done["approved_by"]) == ("completed", 3, f"{ada}, {bob}")
    assert len(await campaign_messages(rt)) == 3
    assert (await only_request(client, auth))["status"] == "approved"


async def test_a_rejected_run_sends_nothing_and_a_coded_sms_reply_carries_the_reason(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, tmp_path: Path
) -> None:
    _, _, address, _ = CHANNELS["twilio"]
    interface = await channel(client, auth, "twilio")
    await policy(client, auth, [await approver(client, auth, "Ada", address)])
    campaign_id, held = await held_run(client, auth, tmp_path)
    await world.settle()
    request = await only_request(client, auth)
    [sms] = [r for r in world.sent("twilio") if r.method == "POST"]
    text = sms.form["Body"][0]
    assert f"Reply YES {request['code']}" in text
    assert "Campaign: Spring reminder" in text
    reply = press(
        "twilio", request["id"], "r", request["code"], channel_id=interface["id"], reason="wrong season"
    )
    assert (await post_inbound(client, interface["id"], reply)).status_code == 200
    await world.take_inbound()
    done = await run_of(client, auth, campaign_id, held["id"])
    assert (done["status"], done["reason"], done["created"]) == ("rejected", "wrong season", 0)
    await world.settle()
    assert await campaign_messages(rt) == []
    assert (await only_request(client, auth))["status"] == "rejected"


async def test_deciding_through_the_api_is_a_vote_and_settles_the_copies(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, tmp_path: Path
) -> None:
    await channel(client, auth, "slack")
    await policy(client, auth, [await approver(client, auth, "Ada", ADA)])
    campaign_id, held = await held_run(client, auth, tmp_path)
    await world.settle()
    request = await only_request(client, auth)
    before = len(world.fake.requests)
    decided = await client.post(f"{CAMPAIGNS}/{campaign_id}/runs/{held['id']}/approve",
                                json={"approver_user_id": "manager@dealer"}, headers=auth)  # fmt: skip
    assert decided.status_code == 200, decided.text
    assert (decided.json()["status"], decided.json()["created"]) == ("completed", 3)
    settled = await only_request(client, auth)
    assert (settled["id"], settled["status"], settled["decided_by"]) == (
        request["id"],
        "approved",
        "manager@dealer",
    )
    assert [(v["voter"], v["via"]) for v in settled["votes"]] == [("manager@dealer", "api")]
    updates = [r for r in world.fake.requests[before:] if "/api/chat.update" in r.path]
    assert len(updates) == 1
    assert "Approved by manager@dealer." in slack_text(updates[0])
    assert (await only_request(client, auth))["deliveries"][0]["status"] == "settled"
    # The approver's press, now late, decides nothing more.
    again = await client.post(f"{CAMPAIGNS}/{campaign_id}/runs/{held['id']}/reject", headers=auth)
    assert again.status_code == 409
    assert len(await campaign_messages(rt)) == 3


async def test_a_strangers_press_is_refused_and_audited(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, tmp_path: Path
) -> None:
    interface = await channel(client, auth, "slack")
    await policy(client, auth, [await approver(client, auth, "Ada", ADA)])
    campaign_id, held = await held_run(client, auth, tmp_path)
    await world.settle()
    request = await only_request(client, auth)
    eve = press("slack", request["id"], "a", request["code"], sender="U0EVE00666")
    assert (await post_inbound(client, interface["id"], eve)).status_code == 200
    await world.take_inbound()
    assert (await run_of(client, auth, campaign_id, held["id"]))["status"] == "pending_approval"
    assert await campaign_messages(rt) == []
    assert (await only_request(client, auth))["status"] == "pending"
    async with rt.sessions() as session:
        [refused] = (await session.execute(
            select(AuditEntry).where(AuditEntry.action == "approval.refused"))).scalars().all()  # fmt: skip
    assert (refused.object_id, refused.detail["sender_id"]) == (request["id"], "U0EVE00666")


async def test_an_undecided_request_expires_and_the_run_ends_rejected(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, tmp_path: Path
) -> None:
    interface = await channel(client, auth, "slack")
    await policy(client, auth, [await approver(client, auth, "Ada", ADA)], expires_after_seconds=3600)
    campaign_id, held = await held_run(client, auth, tmp_path)
    await world.settle()
    request = await only_request(client, auth)
    async with rt.sessions() as session:
        opened = await session.get(HumanRequest, request["id"])
        stored = await session.get(CampaignRun, held["id"])
        assert opened is not None
        assert stored is not None
        assert stored.started_at is not None
        assert opened.expires_at == stored.started_at + timedelta(seconds=3600)
    async with rt.sessions.begin() as session:
        past = utcnow() - timedelta(seconds=1)
        await session.execute(
            update(HumanRequest)
            .where(HumanRequest.id == request["id"])
            .values(expires_at=past, next_check_at=past)
        )
    assert await outreach.escalate_pass(rt) == 1
    done = await run_of(client, auth, campaign_id, held["id"])
    assert (done["status"], done["approved_by"], done["created"]) == ("rejected", None, 0)
    assert done["reason"].startswith("expired: nobody decided by")
    assert (await only_request(client, auth))["status"] == "expired"
    late = await post_inbound(client, interface["id"], press("slack", request["id"], "a", request["code"]))
    assert late.status_code == 200
    await world.take_inbound()
    await world.settle()
    assert await campaign_messages(rt) == []
    async with rt.sessions() as session:
        actions = set((await session.execute(select(AuditEntry.action))).scalars())
    assert {"campaign.run.expired", "approval.expired"} <= actions


async def test_email_copies_carry_the_fuller_preview_and_the_link_decides(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, tmp_path: Path
) -> None:
    _, _, address, _ = CHANNELS["resend"]
    await channel(client, auth, "resend")
    await policy(client, auth, [await approver(client, auth, "Ada", address)])
    campaign_id, held = await held_run(client, auth, tmp_path)
    await world.settle()
    recorded = request_shape(world, "resend")
    assert recorded.json["subject"].startswith("Approval needed: campaign Spring reminder (")
    text = recorded.json.get("text") or recorded.body
    assert "Subject: Get your your mower ready for spring" in text  # the email sample's own subject
    assert "Rows that cannot be sent:" in text
    found = LINK.search(text)
    assert found, text
    path = "/" + found.group(0).split("/", 3)[3]
    page = await client.get(path)
    assert page.status_code == 200
    assert "Campaign: Spring reminder" in page.text
    assert await campaign_messages(rt) == []
    decided = await client.post(path, data={"decision": "approve"})
    assert decided.status_code == 200, decided.text
    assert (await run_of(client, auth, campaign_id, held["id"]))["status"] == "completed"
    assert len(await campaign_messages(rt)) == 3


async def test_two_outreach_passes_at_once_open_one_request(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, tmp_path: Path
) -> None:
    await channel(client, auth, "slack")
    await policy(client, auth, [await approver(client, auth, "Ada", ADA)])
    await held_run(client, auth, tmp_path)
    opened = await asyncio.gather(outreach.open_pass(rt), outreach.open_pass(rt))
    assert sum(opened) == 1
    async with rt.sessions() as session:
        assert len((await session.execute(select(HumanRequest))).scalars().all()) == 1


async def test_an_undecided_run_escalates_to_the_approvers_next_address_with_its_preview(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, world: World, tmp_path: Path
) -> None:
    await channel(client, auth, "slack")
    await channel(client, auth, "twilio")
    ada = await approver(client, auth, "Ada", ADA, CHANNELS["twilio"][2])
    await policy(client, auth, [ada], escalate_after_seconds=600)
    await held_run(client, auth, tmp_path)
    await world.settle()
    assert [r for r in world.sent("twilio") if r.method == "POST"] == []
    request = await only_request(client, auth)
    async with rt.sessions.begin() as session:
        past = utcnow() - timedelta(seconds=1)
        await session.execute(
            update(HumanRequest).where(HumanRequest.id == request["id"]).values(next_check_at=past)
        )
    assert await outreach.escalate_pass(rt) == 1
    await world.settle()
    [sms] = [r for r in world.sent("twilio") if r.method == "POST"]
    assert "Campaign: Spring reminder" in sms.form["Body"][0]
    escalated = await only_request(client, auth)
    assert (escalated["level"], [d["platform"] for d in escalated["deliveries"]]) == (1, ["slack", "sms"])
