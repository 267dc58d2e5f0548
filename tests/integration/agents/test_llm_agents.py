"""Built-in LLM agents: the tool loop against the fake OpenAI-compatible server, governed, audited, durable."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from herald.agents import runs
from herald.runtime import Runtime
from herald.storage.models import AgentRun, Message
from herald.storage.types import utcnow
from tests.conftest import webhook_channel
from tests.integration.agents.conftest import Fakes, call, llm_agent, register

TELEGRAM_CHAT = "123456789"


async def start(client: httpx.AsyncClient, auth: dict[str, str], agent_id: str, task: str) -> str:
    response = await client.post(f"/api/v1/agents/{agent_id}/runs", json={"task": task}, headers=auth)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    return str(response.json()["id"])


async def finished(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, agent_id: str, run_id: str
) -> Any:
    """Work due runs as a worker would, then answer the run with its steps."""
    await runs.run_due(rt)
    response = await client.get(f"/api/v1/agents/{agent_id}/runs/{run_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def agent_messages(rt: Runtime, agent_id: str) -> list[Message]:
    async with rt.sessions() as session:
        return list((await session.execute(select(Message).where(Message.agent_id == agent_id))).scalars())


async def audit(client: httpx.AsyncClient, auth: dict[str, str], action: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.get(f"/api/v1/audit?action={action}", headers=auth)).json()[
        "items"
    ]
    return items


async def test_a_run_calls_two_tools_and_answers(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await webhook_channel(client, auth, "telegram")
    contact = (await client.post("/api/v1/contacts", json={"name": "Dana Reyes",
                                                            "addresses": {"telegram": TELEGRAM_CHAT}, "channel_order": ["telegram"]},
                                 headers=auth)).json()  # fmt: skip
    await register(client, auth, llm_agent("concierge"))
    fakes.llm.script([
        {"kind": "tool_calls", "tool_calls": [call("lookup_contact", query="dana")], "prompt_tokens": 50},
        {"kind": "tool_calls", "tool_calls": [call("send_message", contact_id=contact["id"], content="Hi Dana!")]},
        {"kind": "reply", "content": "I greeted Dana."},
    ])  # fmt: skip
    run_id = await start(client, auth, "concierge", "Say hello to Dana")
    run = await finished(client, auth, rt, "concierge", run_id)

    assert run["status"] == "completed", run
    assert run["answer"] == "I greeted Dana."
    assert [s["kind"] for s in run["step_log"]] == ["model", "tool", "model", "tool", "model"]
    found = run["step_log"][1]["payload"]["result"]["contacts"]
    assert [c["id"] for c in found] == [contact["id"]]
    sent = run["step_log"][3]["payload"]["result"]
    assert sent["status"] == "queued"
    assert run["sent_messages"] == [sent["message_id"]]
    assert run["prompt_tokens"] >= 50
    assert run["total_tokens"] > run["prompt_tokens"]
    [message] = await agent_messages(rt, "concierge")
    assert (message.id, message.content, message.recipient_id) == (
        sent["message_id"],
        "Hi Dana!",
        TELEGRAM_CHAT,
    )
    assert message.governance_metadata["agent_run"] == run_id

    # What the model saw: the persona, the task, every tool's schema, and each tool result answering its call.
    first, second, third = fakes.model_requests()
    assert first["model"] == "fake-model"
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][1] == {"role": "user", "content": "Say hello to Dana"}
    assert {t["function"]["name"] for t in first["tools"]} >= {
        "send_message",
        "lookup_contact",
        "fire_trigger",
    }
    send_schema = next(t for t in first["tools"] if t["function"]["name"] == "send_message")["function"]
    assert send_schema["parameters"]["required"] == ["content"]
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool"
    assert json.loads(tool_message["content"])["contacts"][0]["name"] == "Dana Reyes"
    assert third["messages"][-1]["role"] == "tool"
    assert fakes.llm.requests[0].headers["authorization"] == "Bearer sk-test-123"

    entries = await audit(client, auth, "agent.tool_called")
    assert sorted((e["detail"]["tool"], e["detail"]["step"], e["detail"]["outcome"]) for e in entries) == [
        ("lookup_contact", 2, "ok"), ("send_message", 4, "ok"),
    ]  # fmt: skip
    assert {e["object_id"] for e in entries} == {run_id}
    listed = (await client.get("/api/v1/agents/concierge/runs", headers=auth)).json()["items"]
    assert [r["id"] for r in listed] == [run_id]


async def test_the_api_key_is_write_only(
    client: httpx.AsyncClient, auth: dict[str, str], fakes: Fakes
) -> None:
    created = await register(client, auth, llm_agent("quiet"))
    fetched = (await client.get("/api/v1/agents/quiet", headers=auth)).json()
    for body in (created, fetched):
        assert body["kind"] == "llm"
        assert body["has_api_key"] is True
        assert "sk-test-123" not in json.dumps(body)
        assert body["llm"]["model"] == "fake-model"
        assert body["llm"]["max_steps"] == 8


async def test_an_llm_agent_needs_its_settings_and_known_tools(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post("/api/v1/agents", json={"id": "a", "maturity_level": "INTERN", "kind": "llm"},
                                 headers=auth)  # fmt: skip
    assert response.status_code == 422
    assert "llm" in response.text
    response = await client.post("/api/v1/agents", json=llm_agent("b", tools=["send_message", "teleport"]),
                                 headers=auth)  # fmt: skip
    assert response.status_code == 422
    assert "teleport" in response.text


async def test_a_student_agent_tool_send_is_refused_and_audited(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await webhook_channel(client, auth, "slack")
    await register(client, auth, llm_agent("pupil", "STUDENT"))
    fakes.llm.script([
        {"kind": "tool_calls", "tool_calls": [call("send_message", platform="slack", recipient_id="C12345", content="hi")]},
        {"kind": "reply", "content": "I may not send."},
    ])  # fmt: skip
    run = await finished(client, auth, rt, "pupil", await start(client, auth, "pupil", "Greet the channel"))

    assert run["status"] == "completed"
    result = run["step_log"][1]["payload"]["result"]
    assert result["refused"] is True
    assert "STUDENT" in result["error"]
    assert await agent_messages(rt, "pupil") == []
    [blocked] = await audit(client, auth, "message.blocked")
    assert blocked["object_id"] == "pupil"
    assert blocked["detail"]["producer"] == "agent"
    [called] = await audit(client, auth, "agent.tool_called")
    assert called["detail"]["outcome"] == "refused"
    # The model saw the refusal as the tool's result.
    assert "STUDENT" in fakes.model_requests()[1]["messages"][-1]["content"]


async def test_an_intern_agent_tool_send_waits_for_approval(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await webhook_channel(client, auth, "slack")
    await register(client, auth, llm_agent("junior", "INTERN"))
    fakes.llm.script([
        {"kind": "tool_calls", "tool_calls": [call("send_message", platform="slack", recipient_id="C12345", content="hi")]},
        {"kind": "reply", "content": "Sent for approval."},
    ])  # fmt: skip
    run = await finished(client, auth, rt, "junior", await start(client, auth, "junior", "Greet"))
    assert run["step_log"][1]["payload"]["result"]["status"] == "pending_approval"
    [message] = await agent_messages(rt, "junior")
    assert message.status == "pending_approval"


async def test_configuration_tools_need_a_supervised_agent(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("watcher", "INTERN"))
    fakes.llm.script([
        {"kind": "tool_calls", "tool_calls": [call("create_monitor", name="cpu", condition="CPU usage > 80%")]},
        {"kind": "reply", "content": "Could not."},
    ])  # fmt: skip
    run = await finished(client, auth, rt, "watcher", await start(client, auth, "watcher", "Watch the CPU"))
    assert run["step_log"][1]["payload"]["result"]["refused"] is True
    assert (await client.get("/api/proactive/monitors", headers=auth)).json()["items"] == []

    await client.patch("/api/v1/agents/watcher", json={"maturity_level": "SUPERVISED"}, headers=auth)
    fakes.llm.script([
        {"kind": "tool_calls", "tool_calls": [call("create_monitor", name="cpu", condition="CPU usage > 80%")]},
        {"kind": "reply", "content": "Watching."},
    ])  # fmt: skip
    run = await finished(client, auth, rt, "watcher", await start(client, auth, "watcher", "Watch the CPU"))
    assert run["step_log"][1]["payload"]["outcome"] == "ok"
    [monitor] = (await client.get("/api/proactive/monitors", headers=auth)).json()["items"]
    assert monitor["agent_id"] == "watcher"
    assert monitor["condition"] == "CPU usage > 80%"
    flagged = [e for e in await audit(client, auth, "agent.tool_called") if e["needs_review"]]
    assert [e["detail"]["tool"] for e in flagged] == ["create_monitor"]


async def test_the_step_limit_ends_the_run(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("looper", max_steps=2))
    fakes.llm.script([{"kind": "tool_calls", "tool_calls": [call("list_pending_approvals")], "times": 5}])
    run = await finished(client, auth, rt, "looper", await start(client, auth, "looper", "Loop"))
    assert run["status"] == "step_limit"
    assert "2 model steps" in run["error"]
    assert len(fakes.llm.requests) == 2


async def test_the_token_budget_ends_the_run(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("spender", max_tokens=1000))
    fakes.llm.script(
        [{"kind": "tool_calls", "tool_calls": [call("list_pending_approvals")], "prompt_tokens": 1200}]
    )
    run = await finished(client, auth, rt, "spender", await start(client, auth, "spender", "Spend"))
    assert run["status"] == "token_limit"
    assert "budget is 1000" in run["error"]
    assert run["prompt_tokens"] == 1200


async def test_the_time_limit_ends_the_run(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("slow", timeout_seconds=0.5))
    fakes.llm.script([{"kind": "timeout", "delay": 5}])
    run = await finished(client, auth, rt, "slow", await start(client, auth, "slow", "Think hard"))
    assert run["status"] == "timed_out"
    assert "0.5 s" in run["error"]


async def test_a_rate_limited_model_is_retried(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("patient"))
    fakes.llm.script([{"kind": "rate_limited", "retry_after": 0}, {"kind": "server_error", "status": 502},
                      {"kind": "reply", "content": "Done at last."}])  # fmt: skip
    run = await finished(client, auth, rt, "patient", await start(client, auth, "patient", "Try"))
    assert (run["status"], run["answer"]) == ("completed", "Done at last.")
    assert len(fakes.llm.requests) == 3


async def test_a_permanent_model_error_fails_the_run_with_the_reason(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("locked"))
    fakes.llm.script([{"kind": "permanent", "status": 401, "message": "Incorrect API key provided"}])
    run = await finished(client, auth, rt, "locked", await start(client, auth, "locked", "Try"))
    assert run["status"] == "failed"
    assert "HTTP 401" in run["error"]
    assert "Incorrect API key provided" in run["error"]
    assert len(fakes.llm.requests) == 1


async def test_a_malformed_tool_call_is_answered_with_an_error_the_model_sees(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await register(client, auth, llm_agent("clumsy"))
    fakes.llm.script([
        {"kind": "tool_calls", "tool_calls": [{"name": "send_message", "arguments": "{\"content\": "}]},
        {"kind": "tool_calls", "tool_calls": [call("send_message", content="x", priority="urgent!")]},
        {"kind": "tool_calls", "tool_calls": [call("teleport")]},
        {"kind": "reply", "content": "Gave up."},
    ])  # fmt: skip
    run = await finished(client, auth, rt, "clumsy", await start(client, auth, "clumsy", "Try"))
    assert run["status"] == "completed"
    results = [s["payload"]["result"] for s in run["step_log"] if s["kind"] == "tool"]
    assert "not valid JSON" in results[0]["error"]
    assert results[1]["field"] == "priority"
    assert "unknown tool 'teleport'" in results[2]["error"]
    seen = [m for m in fakes.model_requests()[-1]["messages"] if m["role"] == "tool"]
    assert len(seen) == 3
    assert "not valid JSON" in seen[0]["content"]


async def test_a_run_killed_mid_way_resumes_without_repeating_a_committed_tool_call(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    await webhook_channel(client, auth, "slack")
    await register(client, auth, llm_agent("phoenix"))
    fakes.llm.script([
        {"kind": "tool_calls", "tool_calls": [call("send_message", platform="slack", recipient_id="C12345", content="once")]},
        {"kind": "timeout", "delay": 60},  # the process dies while the model thinks
    ])  # fmt: skip
    run_id = await start(client, auth, "phoenix", "Send once")
    worker = asyncio.create_task(runs.run_due(rt))
    for _ in range(200):
        if len(await runs.steps_of(rt, run_id)) == 2 and len(fakes.llm.requests) == 2:
            break
        await asyncio.sleep(0.02)
    worker.cancel()  # like kill -9: nothing more is written by that process
    await asyncio.gather(worker, return_exceptions=True)
    async with rt.sessions.begin() as session:  # its lease runs out
        await session.execute(update(AgentRun).where(AgentRun.id == run_id)
                              .values(lease_until=utcnow() - timedelta(seconds=1)))  # fmt: skip

    fakes.llm.script([{"kind": "reply", "content": "Sent it."}])
    run = await finished(client, auth, rt, "phoenix", run_id)
    assert (run["status"], run["answer"]) == ("completed", "Sent it.")
    assert [s["kind"] for s in run["step_log"]] == ["model", "tool", "model"]
    assert [m.content for m in await agent_messages(rt, "phoenix")] == ["once"]
    # The resumed run showed the model the committed tool result, not a second call.
    assert fakes.model_requests()[-1]["messages"][-1]["role"] == "tool"


async def test_runs_are_the_tenants_own(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, fakes: Fakes
) -> None:
    from tests.conftest import new_tenant

    await register(client, auth, llm_agent("mine"))
    run_id = await start(client, auth, "mine", "Hello")
    other = await new_tenant(rt, "globex")
    assert (await client.get(f"/api/v1/agents/mine/runs/{run_id}", headers=other)).status_code == 404
    assert (
        await client.post("/api/v1/agents/mine/runs", json={"task": "x"}, headers=other)
    ).status_code == 404
