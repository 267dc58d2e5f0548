"""Herald's tools over MCP, driven by the official ``mcp`` client: Streamable HTTP against the real app served by
uvicorn on a free port, and stdio against ``herald mcp`` in a child process. Calls are governed by the agent's
maturity level and audited with ``via: "mcp"``; keys decide which agent a call may act as."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, types
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

import herald
from herald.admin.tenants import create_api_key, get_or_create_tenant
from herald.agents.tools.catalog import TOOLS
from herald.runtime import Runtime
from herald.web.api.app import create_app
from tests.conftest import SECRET, make_agent, served

SEND = {"platform": "slack", "recipient_id": "C12345", "content": "Deploy finished."}


@pytest.fixture
async def herald_url(rt: Runtime) -> AsyncIterator[str]:
    """Herald served on 127.0.0.1 and a free port (its lifespan starts the MCP session manager)."""
    app = create_app(rt.settings, runtime=rt, run_worker=False)
    async with served(app) as url:
        yield url


@pytest.fixture
async def keys(rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, str]:
    """Tenant acme's keys: ``admin``, ``plain`` (neither admin nor bound), and one bound to each agent: ``bot``
    (AUTONOMOUS), ``other`` (AUTONOMOUS) and ``pupil`` (STUDENT)."""
    for agent_id, level in (("bot", "AUTONOMOUS"), ("other", "AUTONOMOUS"), ("pupil", "STUDENT")):
        await make_agent(client, auth, agent_id, level)
    async with rt.sessions.begin() as session:
        tenant = await get_or_create_tenant(session, "acme")
        found = {n: await create_api_key(session, tenant, name=n, agent_id=n) for n in ("bot", "pupil")}
        found["plain"] = await create_api_key(session, tenant, name="plain", is_admin=False)
    return {"admin": auth["Authorization"].removeprefix("Bearer "), **found}


@asynccontextmanager
async def http_session(base: str, key: str) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session over Streamable HTTP with ``key`` as the bearer token."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http,
        streamable_http_client(f"{base}/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def structured(result: types.CallToolResult) -> dict[str, Any]:
    assert result.structuredContent is not None
    return result.structuredContent


def text(result: types.CallToolResult) -> str:
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def audit(client: httpx.AsyncClient, auth: dict[str, str], action: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/audit?action={action}", headers=auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_bound_key_lists_the_registry_and_sends_as_its_agent(
    herald_url: str, keys: dict[str, str], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    async with http_session(herald_url, keys["bot"]) as session:
        listed = (await session.list_tools()).tools
        assert [t.name for t in listed] == TOOLS.names()
        for spec in listed:  # exactly the registry's schemas: the key already names the agent
            tool = TOOLS.get(spec.name)
            assert tool is not None
            assert (spec.description, spec.inputSchema) == (tool.description, tool.parameters())

        result = await session.call_tool("send_message", SEND)

    assert not result.isError, text(result)
    sent = structured(result)
    assert sent["status"] in {"queued", "sent"}
    message = (await client.get(f"/api/v1/messages/{sent['message_id']}", headers=auth)).json()
    assert (message["agent_id"], message["recipient_id"]) == ("bot", "C12345")
    assert message["content"] == SEND["content"]
    calls = await audit(client, auth, "agent.tool_called")
    assert [(c["actor"], c["detail"]["tool"], c["detail"]["via"], c["detail"]["outcome"]) for c in calls] == [
        ("agent:bot", "send_message", "mcp", "ok")
    ]
    assert calls[0]["detail"]["message_id"] == sent["message_id"]


async def test_admin_key_names_the_agent_of_each_call(
    herald_url: str, keys: dict[str, str], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    async with http_session(herald_url, keys["admin"]) as session:
        for spec in (await session.list_tools()).tools:
            assert spec.inputSchema["required"][0] == "agent_id"
            assert spec.inputSchema["properties"]["agent_id"]["type"] == "string"

        missing = await session.call_tool("send_message", SEND)
        unknown = await session.call_tool("send_message", {"agent_id": "ghost", **SEND})
        result = await session.call_tool("send_message", {"agent_id": "other", **SEND})

    assert missing.isError
    assert "agent_id is required" in text(missing)
    assert unknown.isError
    assert "no agent 'ghost'" in text(unknown)
    assert not result.isError, text(result)
    message = (await client.get(f"/api/v1/messages/{structured(result)['message_id']}", headers=auth)).json()
    assert message["agent_id"] == "other"
    calls = await audit(client, auth, "agent.tool_called")
    assert [(c["actor"], c["detail"]["outcome"]) for c in calls] == [("agent:other", "ok")]


async def test_bound_key_cannot_act_as_another_agent(
    herald_url: str, keys: dict[str, str], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    async with http_session(herald_url, keys["bot"]) as session:
        result = await session.call_tool("send_message", {"agent_id": "other", **SEND})
        same = await session.call_tool("send_message", {"agent_id": "bot", **SEND})

    assert result.isError
    assert "speaks only as agent 'bot'" in text(result)
    assert not same.isError, text(same)  # naming its own agent is harmless
    messages = (await client.get("/api/v1/messaging/proactive/history", headers=auth)).json()["items"]
    assert [m["agent_id"] for m in messages] == ["bot"]
    calls = await audit(client, auth, "agent.tool_called")
    assert [c["actor"] for c in calls] == ["agent:bot"]


async def test_key_neither_admin_nor_bound_may_not_act(herald_url: str, keys: dict[str, str]) -> None:
    async with http_session(herald_url, keys["plain"]) as session:
        result = await session.call_tool("send_message", {"agent_id": "bot", **SEND})
    assert result.isError
    assert "neither an admin key nor bound to an agent" in text(result)


async def test_student_send_is_an_error_result_blocked_and_audited(
    herald_url: str, keys: dict[str, str], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    async with http_session(herald_url, keys["pupil"]) as session:
        result = await session.call_tool("send_message", SEND)

    assert result.isError
    assert "STUDENT" in text(result)
    assert structured(result)["refused"] is True
    blocked = await audit(client, auth, "message.blocked")
    assert [(b["object_id"], b["detail"]["maturity_level"]) for b in blocked] == [("pupil", "STUDENT")]
    calls = await audit(client, auth, "agent.tool_called")
    assert [(c["actor"], c["detail"]["via"], c["detail"]["outcome"]) for c in calls] == [
        ("agent:pupil", "mcp", "refused")
    ]


async def test_tool_errors_name_the_argument(herald_url: str, keys: dict[str, str]) -> None:
    async with http_session(herald_url, keys["bot"]) as session:
        result = await session.call_tool("send_message", {"platform": "slack", "recipient_id": "C1"})
        act = await session.call_tool("no_such_tool", {})
    assert result.isError
    assert "(argument: content)" in text(result)
    assert act.isError
    assert "unknown tool 'no_such_tool'" in text(act)


@pytest.mark.parametrize("header", [None, "Bearer not-a-key", "Basic abc"])
async def test_wrong_or_missing_key_is_refused_before_a_session(herald_url: str, header: str | None) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": types.LATEST_PROTOCOL_VERSION, "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"}}}  # fmt: skip
    headers = {"Accept": "application/json, text/event-stream"} | (
        {"Authorization": header} if header else {}
    )
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{herald_url}/mcp", json=initialize, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == 401


async def test_the_mcp_client_fails_with_a_wrong_key(herald_url: str) -> None:
    with pytest.raises(ExceptionGroup) as caught:  # the SDK's transport task group carries the HTTP error
        async with http_session(herald_url, "not-a-key"):
            pass
    assert caught.group_contains(httpx.HTTPStatusError, match="401 Unauthorized")


# --- stdio ------------------------------------------------------------------------------------------------------


def stdio_env(rt: Runtime, tmp_path: Path, key: str) -> dict[str, str]:
    """What ``herald mcp`` needs: this test's database, its settings, the key, and this checkout's code."""
    src = str(Path(herald.__file__).resolve().parents[1])
    return {
        "HERALD_DATABASE_URL": rt.settings.database_url,
        "HERALD_ENV": "development",
        "HERALD_SECRET_KEY": SECRET,
        "HERALD_DATA_DIR": str(tmp_path / "var"),
        "HERALD_API_KEY": key,
        "PYTHONPATH": os.pathsep.join([src, *filter(None, [os.environ.get("PYTHONPATH")])]),
    }


async def test_stdio_lists_and_sends_as_the_keys_agent(
    rt: Runtime, tmp_path: Path, keys: dict[str, str], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "herald", "mcp"], env=stdio_env(rt, tmp_path, keys["bot"])
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await asyncio.wait_for(session.initialize(), 60)
        listed = (await session.list_tools()).tools
        result = await session.call_tool("send_message", SEND)

    assert [t.name for t in listed] == TOOLS.names()
    assert not result.isError, text(result)
    message = (await client.get(f"/api/v1/messages/{structured(result)['message_id']}", headers=auth)).json()
    assert message["agent_id"] == "bot"
    calls = await audit(client, auth, "agent.tool_called")
    assert [(c["actor"], c["detail"]["via"], c["detail"]["outcome"]) for c in calls] == [
        ("agent:bot", "mcp", "ok")
    ]


@pytest.mark.parametrize("key", ["not-a-key", "plain"])
async def test_stdio_refuses_to_start_with_a_key_that_cannot_act(
    rt: Runtime, tmp_path: Path, keys: dict[str, str], key: str
) -> None:
    env = {**os.environ, **stdio_env(rt, tmp_path, keys.get(key, key))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "herald", "mcp", env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert stdout == b""  # stdout is the protocol's alone, even for a refusal
    expected = "unknown or revoked API key" if key == "not-a-key" else "neither an admin key nor bound"
    assert expected in stderr.decode()
