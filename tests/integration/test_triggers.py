"""Triggers and signed inbound webhooks (seed 002): signatures accepted and refused, replays, secret
regeneration, GitHub deliveries whose payload fields fill the task, and agents invoked by callback whose answer
is governed."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from herald.core.security import standard_webhook_signature
from herald.producers.triggers.verification import github_signature
from herald.runtime import Runtime
from tests.conftest import in_production, use_transport

PR = {"action": "opened", "number": 42, "pull_request": {"number": 42, "title": "Fix the flux capacitor", "user": {"login": "ada"}},
      "repository": {"full_name": "owner/repo"}}  # fmt: skip


async def agent(client: httpx.AsyncClient, auth: dict[str, str], level: str = "AUTONOMOUS") -> str:
    response = await client.post("/api/v1/agents", json={"id": "code-review-agent", "maturity_level": level,
                                                         "callback_url": "https://agent.example/hook"}, headers=auth)  # fmt: skip
    assert response.status_code == 201, response.text
    secret: str = response.json()["callback_secret"]
    return secret


async def trigger(client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    body = {"name": "GitHub PR Trigger", "workspace_id": "ws-456", "trigger_type": "github",
            "config": {"repository": "owner/repo", "event": "pull_request"}, "agent_id": "code-review-agent",
            "task_template": "Review PR #{pr_number}: {pr_title}"}  # fmt: skip
    body.update(overrides)
    response = await client.post("/api/proactive/triggers", json=body, headers=auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def webhook(client: httpx.AsyncClient, auth: dict[str, str], trigger_id: str) -> dict[str, Any]:
    response = await client.post("/api/proactive/webhooks", json={"workspace_id": "ws-456", "name": "Deploy Webhook",
                                                                  "trigger_id": trigger_id}, headers=auth)  # fmt: skip
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def standard_headers(
    secret: str, body: bytes, msg_id: str = "msg_1", stamp: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp),
            "webhook-signature": standard_webhook_signature(secret, msg_id, stamp, body), "content-type": "application/json"}  # fmt: skip


async def firings(client: httpx.AsyncClient, auth: dict[str, str], trigger_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await client.get(f"/api/proactive/triggers/{trigger_id}/history", headers=auth)
    ).json()["items"]
    return items


async def test_github_delivery_fires_the_trigger_and_calls_the_agent_signed(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    seen = use_transport(rt, lambda _: httpx.Response(200, json={}))
    await agent(client, auth)
    created = await trigger(client, auth)
    hook = await webhook(client, auth, created["id"])
    assert set(hook) >= {"id", "url_path", "secret", "webhook_url"}
    assert hook["webhook_url"].endswith(f"/api/hooks/{hook['url_path']}")
    assert "secret" not in (await client.get("/api/proactive/webhooks", headers=auth)).json()["items"][0]
    body = json.dumps(PR).encode()
    headers = {
        "x-github-event": "pull_request",
        "x-github-delivery": "d-1",
        "x-hub-signature-256": github_signature(hook["secret"], body),
    }
    response = await client.post(f"/api/hooks/{hook['url_path']}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] is True
    (call,) = seen
    sent = json.loads(call.content)
    assert (sent["type"], sent["data"]["task"]) == ("trigger.fired", "Review PR #42: Fix the flux capacitor")
    assert sent["data"]["payload"]["pull_request"]["user"]["login"] == "ada"
    (firing,) = await firings(client, auth, created["id"])
    assert (firing["source"], firing["outcome"]) == ("github", "completed")
    other = await client.post(f"/api/hooks/{hook['url_path']}", content=body, headers={**headers, "x-github-event": "push",
                                                                                       "x-github-delivery": "d-2"})  # fmt: skip
    assert other.json()["accepted"] is False
    replay = await client.post(f"/api/hooks/{hook['url_path']}", content=body, headers=headers)
    assert replay.status_code == 409


async def test_a_github_trigger_fires_only_for_its_repository_compared_case_insensitively(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    seen = use_transport(rt, lambda _: httpx.Response(200, json={}))
    await agent(client, auth)
    created = await trigger(client, auth, config={"repository": "Owner/Repo", "event": "pull_request"})
    hook = await webhook(client, auth, created["id"])

    async def deliver(full_name: str, delivery: str) -> httpx.Response:
        body = json.dumps({**PR, "repository": {"full_name": full_name}}).encode()
        headers = {"x-github-event": "pull_request", "x-github-delivery": delivery,
                   "x-hub-signature-256": github_signature(hook["secret"], body)}  # fmt: skip
        return await client.post(f"/api/hooks/{hook['url_path']}", content=body, headers=headers)

    other = await deliver("owner/other-repo", "d-1")
    assert other.status_code == 200, other.text
    assert other.json() == {"accepted": False, "reason": "repository 'owner/other-repo' is not 'Owner/Repo'"}
    assert (await deliver("someone-else/repo", "d-2")).json()["accepted"] is False
    assert seen == []
    assert await firings(client, auth, created["id"]) == []
    ours = await deliver("owner/repo", "d-3")
    assert ours.json()["accepted"] is True
    assert len(seen) == 1
    assert len(await firings(client, auth, created["id"])) == 1


@pytest.mark.parametrize("repository", ["repo", "owner/", "/repo", "a/b/c", "owner/my repo", 42])
async def test_a_github_trigger_repository_must_be_owner_slash_name(
    client: httpx.AsyncClient, auth: dict[str, str], repository: Any
) -> None:
    await agent(client, auth)
    body = {"name": "t", "trigger_type": "github", "config": {"repository": repository},
            "agent_id": "code-review-agent", "task_template": "Review"}  # fmt: skip
    response = await client.post("/api/proactive/triggers", json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["config.repository"]


async def test_standard_webhook_signatures_refused_in_every_bad_case(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    use_transport(rt, lambda _: httpx.Response(200, json={}))
    await agent(client, auth)
    created = await trigger(
        client, auth, trigger_type="webhook", config={}, task_template="Deploy {{version}}"
    )
    hook = await webhook(client, auth, created["id"])
    url = f"/api/hooks/{hook['url_path']}"
    body = json.dumps({"event": "deployment", "version": "v1.2.3"}).encode()
    wrong = "whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ=="
    assert (await client.post(url, content=body)).status_code == 401  # unsigned
    assert (await client.post(url, content=body, headers=standard_headers(wrong, body))).status_code == 401
    old = standard_headers(hook["secret"], body, stamp=int(time.time()) - 600)
    assert (await client.post(url, content=body, headers=old)).status_code == 401
    tampered = standard_headers(hook["secret"], body)
    assert (
        await client.post(url, content=body.replace(b"v1.2.3", b"v6.6.6"), headers=tampered)
    ).status_code == 401
    assert await firings(client, auth, created["id"]) == []  # nothing kept from refused requests
    ok = await client.post(url, content=body, headers=standard_headers(hook["secret"], body, "msg_ok"))
    assert ok.status_code == 200, ok.text
    assert (
        await client.post(url, content=body, headers=standard_headers(hook["secret"], body, "msg_ok"))
    ).status_code == 409
    regenerated = (
        await client.post(f"/api/proactive/webhooks/{hook['id']}/regenerate-secret", headers=auth)
    ).json()
    assert regenerated["secret"] != hook["secret"]
    stale = await client.post(url, content=body, headers=standard_headers(hook["secret"], body, "msg_3"))
    assert stale.status_code == 401
    fresh = await client.post(
        url, content=body, headers=standard_headers(regenerated["secret"], body, "msg_4")
    )
    assert fresh.status_code == 200
    (latest, first) = await firings(client, auth, created["id"])
    assert first["task"] == "Deploy v1.2.3"
    big = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    assert (
        await client.post(url, content=big, headers=standard_headers(regenerated["secret"], big, "msg_5"))
    ).status_code == 413


async def test_missing_payload_field_is_a_clear_error_on_the_firing(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    use_transport(rt, lambda _: httpx.Response(200, json={}))
    await agent(client, auth)
    created = await trigger(
        client,
        auth,
        trigger_type="manual",
        config={},
        task_template="Review {pull_request.title} by {author}",
    )
    fired = (await client.post(f"/api/proactive/triggers/{created['id']}/fire", json={"payload": {"pull_request": {"title": "X"}}},
                               headers=auth)).json()  # fmt: skip
    assert fired["outcome"] == "failed"
    assert "author" in fired["error"]
    ok = (await client.post(f"/api/proactive/triggers/{created['id']}/fire",
                            json={"payload": {"pull_request": {"title": "X"}, "author": "ada"}}, headers=auth)).json()  # fmt: skip
    assert (ok["outcome"], ok["task"]) == ("completed", "Review X by ada")


async def test_agent_answer_is_governed_intern_waits_for_approval(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    use_transport(rt, lambda _: httpx.Response(200, json={"reply": "LGTM, one nit on line 3"}))
    await agent(client, auth, level="INTERN")
    created = await trigger(client, auth, trigger_type="manual", config={}, task_template="Review {title}",
                            action={"type": "agent", "platform": "slack", "recipient_id": "C12345"})  # fmt: skip
    fired = (
        await client.post(
            f"/api/proactive/triggers/{created['id']}/fire", json={"payload": {"title": "t"}}, headers=auth
        )
    ).json()
    assert fired["outcome"] == "pending_approval"
    message = (await client.get(f"/api/v1/messages/{fired['message_id']}", headers=auth)).json()
    assert (message["status"], message["content"]) == ("pending_approval", "LGTM, one nit on line 3")


async def test_message_action_sends_the_rendered_task(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await client.post(
        "/api/v1/agents", json={"id": "code-review-agent", "maturity_level": "AUTONOMOUS"}, headers=auth
    )
    created = await trigger(client, auth, trigger_type="manual", config={}, task_template="Deployed {{version}}",
                            action={"type": "message", "platform": "slack", "recipient_id": "C12345"})  # fmt: skip
    fired = (
        await client.post(
            f"/api/proactive/triggers/{created['id']}/fire", json={"payload": {"version": "v2"}}, headers=auth
        )
    ).json()
    assert fired["outcome"] == "queued"
    listed = (await client.get("/api/proactive/triggers", headers=auth)).json()["items"]
    assert listed[0]["fire_count"] == 1
    assert (await client.delete(f"/api/proactive/triggers/{created['id']}", headers=auth)).status_code == 204
    assert (await client.get("/api/proactive/triggers", headers=auth)).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"trigger_type": "telepathy"}, "trigger_type"),
        ({"agent_id": "ghost"}, "agent_id"),
        ({"action": {"type": "message", "platform": "sms", "recipient_id": "123"}}, "action.recipient_id"),
    ],
)
async def test_bad_trigger_input_is_422(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, body: dict[str, Any], field: str
) -> None:
    if field == "agent_id":
        in_production(rt)  # development registers "ghost" (tests/integration/test_enrolment.py)
    await client.post(
        "/api/v1/agents", json={"id": "code-review-agent", "maturity_level": "AUTONOMOUS"}, headers=auth
    )
    base = {"name": "t", "trigger_type": "manual", "agent_id": "code-review-agent", "task_template": "x"}
    response = await client.post("/api/proactive/triggers", json={**base, **body}, headers=auth)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_an_agent_call_left_owed_by_a_dead_process_is_made_once_by_another(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select, update

    from herald.producers.triggers import service
    from herald.storage.models import TriggerFiring

    seen = use_transport(rt, lambda _: httpx.Response(200, json={"reply": "On it"}))
    await agent(client, auth)
    created = await trigger(client, auth, trigger_type="manual", config={}, task_template="Deploy {version}",
                            action={"platform": "slack", "recipient_id": "C12345"})  # fmt: skip

    async def dies(*_: Any) -> None:  # the process is killed after the firing committed, before the call
        return None

    monkeypatch.setattr(service, "_call_agent", dies)
    fired = await client.post(f"/api/proactive/triggers/{created['id']}/fire", json={"payload": {"version": "1.2"}},
                              headers=auth)  # fmt: skip
    assert fired.status_code in (200, 201, 202), fired.text
    monkeypatch.undo()
    use_transport(rt, lambda _: httpx.Response(200, json={"reply": "On it"}))
    assert await service.recover(rt) == 0  # the first process's lease still holds
    async with rt.sessions.begin() as session:
        await session.execute(
            update(TriggerFiring).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await service.recover(rt) == 1
    assert await service.recover(rt) == 0
    [firing] = await firings(client, auth, created["id"])
    assert (firing["outcome"], firing["task"]) == ("queued", "Deploy 1.2")
    async with rt.sessions() as session:
        row = (await session.execute(select(TriggerFiring))).scalar_one()
    assert row.payload is None  # nothing of the payload is kept once settled
    assert row.next_attempt_at is None
    assert not seen
