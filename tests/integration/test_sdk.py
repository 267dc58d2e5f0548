"""The Python SDK against a running Herald: uvicorn on a free port serving the real app (with its worker), the
blocking client in a thread and the asyncio client in the test's loop, typed errors carrying problem details."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from herald.client import (
    APIConnectionError,
    ApprovalPolicy,
    Approver,
    AsyncHerald,
    AuthenticationError,
    Campaign,
    CampaignRun,
    ConflictError,
    DeliveryReport,
    Herald,
    HumanRequest,
    Message,
    NotFoundError,
    Page,
    PermissionDenied,
    ReportChannel,
    Schedule,
    ValidationError,
)
from herald.humans import outreach
from herald.runtime import Runtime
from herald.web.api.app import create_app
from tests.conftest import served
from tests.integration.test_campaigns import tenant_db


@pytest.fixture
async def herald_url(rt: Runtime) -> AsyncIterator[str]:
    """Herald served on 127.0.0.1 and a free port, worker included; yields its base URL."""
    app = create_app(rt.settings, runtime=rt, run_worker=True)
    async with served(app) as url:
        yield url


@pytest.fixture
def api_key(auth: dict[str, str]) -> str:
    return auth["Authorization"].removeprefix("Bearer ")


def blocking_session(base: str, key: str, tmp_path: Path) -> None:
    """Messages, approvals, bulk, files, reports, metrics and every typed error, with the blocking client."""
    with Herald(base, key, agent_id="bot") as herald:
        assert herald.create_agent("bot", "AUTONOMOUS")["maturity_level"] == "AUTONOMOUS"
        herald.create_agent("intern", "INTERN")
        herald.create_agent("pupil", "STUDENT")
        assert {a["id"] for a in herald.list_agents()["items"]} == {"bot", "intern", "pupil"}

        message = herald.send_message(platform="sms", recipient_id="+447700900123", content="Hello {{name}}",
                                      template_variables={"name": "Ada"}, priority="HIGH")  # fmt: skip
        assert isinstance(message, Message)
        assert (message.content, message.priority, message.agent_id) == ("Hello Ada", "HIGH", "bot")
        deadline = time.monotonic() + 15
        while (report := herald.get_delivery_report(message.id)).status != "sent":
            assert time.monotonic() < deadline, report
            time.sleep(0.05)
        # Typed answers: attributes all the way down, records inside records.
        assert isinstance(report, DeliveryReport)
        assert isinstance(report.channel, ReportChannel)
        assert (report.channel.platform, report.attempt_count) == ("sms", 1)
        assert [a.outcome for a in report.attempts] == ["sent"]
        assert report.timestamps.sent_at is not None
        # ...and still readable as the dicts the SDK answered before, for existing callers.
        assert report["channel"]["platform"] == "sms"
        assert [a["outcome"] for a in report["attempts"]] == ["sent"]
        assert report.get("no_such_field", "absent") == "absent"
        assert "status" in report
        as_json = json.loads(json.dumps(report.to_dict()))
        assert as_json["channel"] == report.channel
        assert report == as_json
        assert dict(report)["message_id"] == message.id
        with pytest.raises(AttributeError):
            report.status = "read"  # type: ignore[misc]
        detail = herald.get_message(message.id)
        assert (detail.attempt_log[0].outcome, detail.attempt_log[0].provider) == (
            "sent",
            report.attempts[0].provider,
        )
        page = herald.list_messages(status="sent")
        assert message.id in [m.id for m in page.items]
        assert all(isinstance(m, Message) for m in page.items)
        metrics = herald.get_metrics(hours=1)
        assert metrics.sent >= 1
        assert metrics["sent"] == metrics.sent
        assert metrics.channels[0].platform == "sms"
        assert metrics.queue is not None
        assert (metrics.queue.queued, metrics.queue.pending_approval) == (0, 0)

        # Idempotency keys: a retry answers the first message; another body with the same key is a conflict.
        first = herald.send_message(
            platform="sms", recipient_id="+447700900124", content="once", idempotency_key="k1"
        )
        again = herald.send_message(
            platform="sms", recipient_id="+447700900124", content="once", idempotency_key="k1"
        )
        assert again.id == first.id
        with pytest.raises(ConflictError) as conflict:
            herald.send_message(
                platform="sms", recipient_id="+447700900124", content="twice", idempotency_key="k1"
            )
        assert (conflict.value.status, conflict.value.field) == (409, "Idempotency-Key")

        # Typed errors carry the problem details.
        with pytest.raises(ValidationError) as invalid:
            herald.send_message(platform="sms", recipient_id="+1", content="x")
        assert (invalid.value.status, invalid.value.field) == (422, "recipient_id")
        assert "E.164" in invalid.value.detail
        assert invalid.value.problem["errors"][0]["field"] == "recipient_id"
        with pytest.raises(PermissionDenied) as refused:
            herald.send_message(agent_id="pupil", platform="sms", recipient_id="+447700900123", content="x")
        assert refused.value.field == "agent_id"
        with pytest.raises(NotFoundError) as missing:
            herald.get_delivery_report("msg_nope")
        assert missing.value.instance == "/api/v1/messages/msg_nope/report"
        with pytest.raises(AuthenticationError), Herald(base, "hk_not-a-key") as stranger:
            stranger.get_metrics()

        # Approvals.
        held = herald.send_message(
            agent_id="intern", platform="sms", recipient_id="+447700900125", content="ok?"
        )
        doomed = herald.send_message(
            agent_id="intern", platform="sms", recipient_id="+447700900125", content="no"
        )
        dropped = herald.send_message(
            agent_id="intern", platform="sms", recipient_id="+447700900125", content="-"
        )
        pending = {m.id for m in herald.list_pending_approvals(agent_id="intern").items}
        assert pending == {held.id, doomed.id, dropped.id}
        waiting = herald.get_metrics(hours=1).queue
        assert waiting is not None
        assert waiting.pending_approval == 3
        assert herald.approve_message(held.id, approver_user_id="user_456").approved_by == "user_456"
        assert herald.reject_message(doomed.id, reason="tone").status == "rejected"
        assert herald.cancel_message(dropped.id).status == "cancelled"
        with pytest.raises(ConflictError):
            herald.cancel_message(dropped.id)

        # Bulk, in chunks: items come back in the order given, with each chunk's indices shifted.
        calls: list[tuple[int, int]] = []
        seed = [{"phone_number": f"+4477009001{i:02d}", "message_type": "alert", "content": f"Alert {i}",
                 "priority": "CRITICAL" if i % 2 else "low"} for i in range(25)]  # fmt: skip
        seed[7]["phone_number"] = "12"
        seed[18]["priority"] = "URGENT"
        result = herald.send_bulk_messages(
            seed, chunk_size=10, progress=lambda done, total: calls.append((done, total))
        )
        assert (result.accepted, result.rejected) == (23, 2)
        assert calls == [(10, 25), (20, 25), (25, 25)]
        assert [i.index for i in result.items] == list(range(25))
        errors = {i.index: i.error.field for i in result.items if i.error is not None}
        assert errors == {7: "recipient_id", 18: "priority"}
        assert {i["index"] for i in result["items"] if "error" in i} == {
            7,
            18,
        }  # the dict reading still holds
        assert (result.items[7].id, result.items[8].status) == (None, "queued")
        stored = herald.get_message(str(result.items[0].id))
        assert (stored.platform, stored.governance_metadata) == ("sms", {"message_type": "alert"})

        # Seed 003's file, sent twice with derived keys: the second time everything is a replay.
        path = tmp_path / "messages.json"
        path.write_text(json.dumps([{"phone_number": "+447700900200", "message_type": "whatsapp", "content": "hi",
                                     "priority": "MEDIUM"}, {"phone_number": "+447700900201", "message_type": "otp",
                                     "content": "Your code is 123456", "priority": "HIGH"}]))  # fmt: skip
        loaded = herald.load_messages_from_json(path, idempotent=True)
        assert (loaded.accepted, loaded.rejected, loaded.replayed) == (2, 0, 0)
        assert herald.get_message(str(loaded.items[0].id)).platform == "whatsapp"
        reloaded = herald.load_messages_from_json(path, idempotent=True)
        assert reloaded.replayed == 2
        assert [i.id for i in reloaded.items] == [i.id for i in loaded.items]

    with pytest.raises(APIConnectionError), Herald("http://127.0.0.1:9", key, timeout=2) as nowhere:
        nowhere.health()


async def test_blocking_client_against_a_running_herald(
    herald_url: str, api_key: str, tmp_path: Path
) -> None:
    await asyncio.to_thread(blocking_session, herald_url, api_key, tmp_path)


async def test_async_client_schedules_monitors_triggers(herald_url: str, api_key: str) -> None:
    async with AsyncHerald(herald_url, api_key, agent_id="agent_123") as herald:
        await herald.create_agent("agent_123", "AUTONOMOUS")

        schedule = await herald.create_schedule(
            template="Daily report for {{date}}", platform="telegram", recipient_id="123456789",
            cron_expression="0 9 * * *", timezone="America/New_York", idempotency_key="sched-1",
        )  # fmt: skip
        assert isinstance(schedule, Schedule)
        assert schedule.schedule_type == "recurring"
        assert len(schedule["next_runs"]) == 5
        assert (await herald.get_schedule(schedule["id"]))["id"] == schedule["id"]
        assert [s["id"] for s in (await herald.list_schedules(active=True))["items"]] == [schedule["id"]]
        assert (await herald.pause_schedule(schedule["id"]))["status"] == "paused"
        assert (await herald.list_schedules(active=True))["items"] == []
        assert (await herald.resume_schedule(schedule["id"]))["status"] == "active"
        assert (await herald.schedule_executions(schedule_id=schedule["id"]))["items"] == []
        assert (await herald.delete_schedule(schedule["id"]))["status"] == "cancelled"
        parsed = await herald.parse_schedule("every weekday at 8:30am", timezone="Europe/London")
        assert parsed["cron_expression"] == "30 8 * * 1-5"
        with pytest.raises(ValidationError) as bad_cron:
            await herald.create_schedule(
                template="x", platform="slack", recipient_id="C12345", cron_expression="nope"
            )
        assert bad_cron.value.field == "cron_expression"

        monitor = await herald.create_monitor(
            name="High Inbox Alert", condition_type="inbox_volume",
            threshold_config={"metric": "unread_count", "operator": ">", "value": 100},
            platforms=[{"platform": "slack", "recipient_id": "C12345"}], check_interval_seconds=300,
            alert_template="High inbox volume: {{value}} unread", options={"for_seconds": 0},
        )  # fmt: skip
        assert monitor["condition_type"] == "inbox_volume"
        assert [m["id"] for m in (await herald.list_monitors())["items"]] == [monitor["id"]]
        assert (await herald.pause_monitor(monitor["id"]))["status"] == "paused"
        assert (await herald.resume_monitor(monitor["id"]))["status"] == "active"
        assert await herald.push_metric("unread_count", 150) == {"accepted": 1}
        assert isinstance(await herald.test_monitor(monitor["id"]), dict)
        assert isinstance((await herald.list_alerts(monitor_id=monitor["id"]))["items"], list)

        trigger = await herald.create_trigger(
            name="Deploys", trigger_type="manual", task_template="Deployed {{version}}",
            action={"type": "message", "platform": "slack", "recipient_id": "C12345"},
        )  # fmt: skip
        assert [t["id"] for t in (await herald.list_triggers())["items"]] == [trigger["id"]]
        fired = await herald.fire_trigger(trigger["id"], {"version": "v2"})
        assert fired["outcome"] == "queued"
        assert (await herald.get_message(str(fired["message_id"])))["content"] == "Deployed v2"
        assert [f["id"] for f in (await herald.trigger_history(trigger["id"]))["items"]] == [fired["id"]]
        assert await herald.delete_trigger(trigger["id"]) is None
        with pytest.raises(NotFoundError):
            await herald.fire_trigger(trigger["id"])

        result = await herald.send_bulk_messages(
            [{"platform": "slack", "recipient_id": "C12345", "content": f"n{i}"} for i in range(3)]
        )
        assert result["accepted"] == 3
        assert (await herald.health())["status"]


async def test_async_client_runs_an_agent(herald_url: str, api_key: str) -> None:
    """An agent with no callback and no model, in development: the echo agent answers, to the default recipient."""
    async with AsyncHerald(herald_url, api_key, agent_id="helper") as herald:
        agent = await herald.create_agent("helper", "AUTONOMOUS",
                                          default_recipient={"platform": "slack", "recipient_id": "C12345"})  # fmt: skip
        assert (agent["kind"], agent["has_api_key"]) == ("external", False)
        run = await herald.start_run("helper", "Summarise the week", context={"week": 49})
        assert run["status"] == "queued"
        for _ in range(200):
            run = await herald.get_run("helper", run["id"])
            if run["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.05)
        assert (run["status"], run["simulated"]) == ("completed", True)
        assert run["answer"] == "[simulated] helper received: Summarise the week"
        assert [s["kind"] for s in run["step_log"]] == ["echo"]
        [message_id] = run["sent_messages"]
        assert (await herald.get_message(message_id))["content"] == run["answer"]
        assert [r["id"] for r in (await herald.list_runs("helper"))["items"]] == [run["id"]]


async def test_async_client_humans_in_the_loop(rt: Runtime, herald_url: str, api_key: str) -> None:
    """Approvers, approval policies, approval requests decided through the SDK, and a question asked and read."""
    async with AsyncHerald(herald_url, api_key, agent_id="writer") as herald:
        await herald.create_agent("writer", "INTERN")
        ada = await herald.create_approver("Ada", [{"platform": "slack", "recipient_id": "U0ADA00001"}])
        assert isinstance(ada, Approver)
        assert ada.addresses == [{"platform": "slack", "recipient_id": "U0ADA00001"}]
        renamed = await herald.update_approver(ada.id, name="Ada L.")
        assert (renamed.name, (await herald.get_approver(ada.id)).name) == ("Ada L.", "Ada L.")
        assert [a.id for a in (await herald.list_approvers()).items] == [ada.id]
        with pytest.raises(ValidationError) as bad_address:
            await herald.create_approver("Bob", [{"platform": "sms", "recipient_id": "12"}])
        assert bad_address.value.field is not None
        assert "recipient_id" in bad_address.value.field

        policy = await herald.create_approval_policy("interns", [ada.id], agent_ids=["writer"], quorum=1)
        assert isinstance(policy, ApprovalPolicy)
        assert (policy.approver_ids, policy.agent_ids) == ([ada.id], ["writer"])
        changed = await herald.update_approval_policy(policy.id, escalate_after_seconds=600)
        assert changed.escalate_after_seconds == 600
        assert (await herald.get_approval_policy(policy.id)).escalate_after_seconds == 600
        assert [p.id for p in (await herald.list_approval_policies()).items] == [policy.id]

        kept = await herald.send_message(platform="sms", recipient_id="+447700900300", content="Refund sent")
        dropped = await herald.send_message(
            platform="sms", recipient_id="+447700900301", content="Refund lost"
        )
        assert (kept.status, dropped.status) == ("pending_approval", "pending_approval")
        await outreach.open_pass(rt)  # what the approvals loop does next: open a request per held message
        listed = await herald.list_approval_requests(kind="approval")
        assert isinstance(listed, Page)
        by_message = {r.message_id: r for r in listed.items}
        assert set(by_message) == {kept.id, dropped.id}
        request = by_message[kept.id]
        assert isinstance(request, HumanRequest)
        assert (request.kind, request.status, request.deliveries[0].approver_id) == (
            "approval",
            "pending",
            ada.id,
        )
        assert (await herald.get_approval_request(request.id)).id == request.id

        approved = await herald.approve_request(request.id, approver_user_id="ada")
        assert (approved.id, approved.status, approved.decided_by) == (request.id, "approved", "ada")
        assert (await herald.get_message(kept.id)).status in ("queued", "sending", "sent")
        rejected = await herald.reject_request(by_message[dropped.id].id, reason="wrong amount")
        assert rejected.status == "rejected"
        assert (await herald.get_message(dropped.id)).status == "rejected"
        with pytest.raises(ConflictError):
            await herald.approve_request(request.id)

        question = await herald.ask("Ship v2 today?", options=["yes", "no"], approver_ids=[ada.id],
                                    timeout_seconds=600)  # fmt: skip
        assert (question.kind, question.status, question.options) == ("question", "pending", ["yes", "no"])
        assert (await herald.get_question(question.id)).text == "Ship v2 today?"
        assert [q.id for q in (await herald.list_questions()).items] == [question.id]
        with pytest.raises(ValueError, match="not an approval request"):
            await herald.approve_request(question.id)

        assert await herald.delete_approval_policy(policy.id) is None
        with pytest.raises(NotFoundError):
            await herald.get_approval_policy(policy.id)


async def test_async_client_campaigns(herald_url: str, api_key: str, tmp_path: Path) -> None:
    url = tenant_db(tmp_path / "dealer.db")
    async with AsyncHerald(herald_url, api_key, agent_id="dealer-agent") as herald:
        await herald.create_agent("dealer-agent", "INTERN")
        async with httpx.AsyncClient(
            base_url=herald_url, headers={"Authorization": f"Bearer {api_key}"}
        ) as http:
            source = (await http.post("/api/v1/data-sources", json={"name": "db", "url": url})).json()["id"]
        campaign = await herald.create_campaign(
            name="Spring", data_source_id=source, schedule="every day at 9am", event_type="spring_reminder",
            channels=[{"platform": "email", "address_column": "email"}],
            audience_query="SELECT customer_id, first_name, email FROM customers WHERE email IS NOT NULL",
            dedupe_key=["customer_id"], idempotency_key="sdk-campaign",
            variables={"dealership_name": "R", "dealership_phone": "1", "equipment_model": "m", "booking_url": "u"},
        )  # fmt: skip
        assert isinstance(campaign, Campaign)
        assert (await herald.get_campaign(campaign.id)).cron_expression == "0 9 * * *"
        assert [c.id for c in (await herald.list_campaigns())["items"]] == [campaign.id]
        assert (await herald.update_campaign(campaign.id, dedupe_period="year")).dedupe_period == "year"
        assert (await herald.preview_campaign(campaign.id, sample=1))["audience"] == 2
        assert (await herald.pause_campaign(campaign.id)).status == "paused"
        assert (await herald.resume_campaign(campaign.id)).status == "active"
        held = await herald.run_campaign(campaign.id)
        assert isinstance(held, CampaignRun)
        assert held.status == "pending_approval"
        assert (await herald.campaign_runs(campaign.id))["items"][0].id == held.id
        done = await herald.approve_campaign_run(campaign.id, held.id, approver_user_id="boss")
        for _ in range(100):  # the campaigns loop may have taken the approved run first: it finishes it there
            if done.status != "running":
                break
            await asyncio.sleep(0.1)
            done = await herald.get_campaign_run(campaign.id, held.id)
        assert (done.status, done.created) == ("completed", 2)
        assert (await herald.get_campaign_run(campaign.id, held.id)).approved_by == "boss"
        second = await herald.run_campaign(campaign.id)
        assert (await herald.reject_campaign_run(campaign.id, second.id, reason="no")).status == "rejected"
        await herald.delete_campaign(campaign.id)
