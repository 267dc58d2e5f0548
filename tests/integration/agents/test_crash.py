"""A worker process killed (SIGKILL) in the middle of a run: another process resumes it from its last committed
step, and the tool call that committed before the kill is not made again."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

from herald.agents import runs
from herald.runtime import Runtime
from herald.storage.models import AgentRun, Message
from herald.storage.types import utcnow
from tests.conftest import SECRET, webhook_channel
from tests.integration.agents.conftest import Fakes, llm_agent, register

# The doomed worker: the model asks for one send, then never answers again (the process dies waiting).
CHILD = """
import asyncio, httpx
from herald.agents import runs
from herald.core.config import load_settings
from herald.fakes import FakeLLMState, create_fake_app
from herald.runtime import Runtime

async def main():
    rt = Runtime(load_settings())
    llm = FakeLLMState()
    llm.script([{"kind": "tool_calls", "tool_calls": [{"name": "send_message", "arguments": {
        "platform": "slack", "recipient_id": "C12345", "content": "exactly once"}}]},
                {"kind": "timeout", "delay": 600}])
    rt.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_fake_app(llm_state=llm)))
    await runs.run_due(rt)

asyncio.run(main())
"""


async def test_a_killed_worker_leaves_a_run_another_process_finishes(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    rt: Runtime,
    fakes: Fakes,
    database_url: str,
    tmp_path: Path,
) -> None:
    await webhook_channel(client, auth, "slack")
    await register(client, auth, llm_agent("phoenix"))
    response = await client.post("/api/v1/agents/phoenix/runs", json={"task": "Send it once"}, headers=auth)
    run_id = response.json()["id"]
    env = {**os.environ, "HERALD_DATABASE_URL": database_url, "HERALD_SECRET_KEY": SECRET, "HERALD_ENV": "development",
           "HERALD_DATA_DIR": str(tmp_path / "child"), "PYTHONPATH": str(Path(__file__).resolve().parents[3] / "src")}  # fmt: skip
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, env=env)
    try:
        for _ in range(300):  # until the send and its step are committed
            if len(await runs.steps_of(rt, run_id)) == 2:
                break
            assert child.returncode is None, "the worker died before the send"
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the worker never committed its tool call")
        await asyncio.sleep(0.2)  # it is now waiting on the model
    finally:
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), timeout=10)
    run = await runs.get(rt, run_id)
    assert run is not None
    assert (run.status, run.lease_owner is not None) == ("running", True)

    async with rt.sessions.begin() as session:  # the dead worker's lease runs out
        await session.execute(update(AgentRun).where(AgentRun.id == run_id)
                              .values(lease_until=utcnow() - timedelta(seconds=1)))  # fmt: skip
    fakes.llm.script([{"kind": "reply", "content": "Sent."}])
    assert await runs.run_due(rt) == 1

    detail = (await client.get(f"/api/v1/agents/phoenix/runs/{run_id}", headers=auth)).json()
    assert (detail["status"], detail["answer"]) == ("completed", "Sent.")
    assert [s["kind"] for s in detail["step_log"]] == ["model", "tool", "model"]
    async with rt.sessions() as session:
        sent = list(
            (await session.execute(select(Message.content).where(Message.agent_id == "phoenix"))).scalars()
        )
    assert sent == ["exactly once"]
    # The resuming process asked the model once, with the dead worker's tool result already in the conversation.
    [request] = fakes.model_requests()
    assert [m["role"] for m in request["messages"]] == ["system", "user", "assistant", "tool"]
