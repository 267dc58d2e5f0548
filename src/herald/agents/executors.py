"""What working a run means for each kind of agent: the LLM tool loop, an external agent's callback, or (in
development, for an agent with neither) the echo agent."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from herald.agents import runs
from herald.agents.loop import run_llm
from herald.producers import callbacks
from herald.storage.models import Agent, AgentRun, AgentRunStep
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

LLM, EXTERNAL = "llm", "external"


def simulated_answer(agent: Agent, task: str) -> str:
    return f"[simulated] {agent.name} received: {task}"


async def execute(rt: Runtime, run: AgentRun, agent: Agent | None, owner: str) -> None:
    if agent is None:
        await runs.finish(
            rt, run, runs.FAILED, owner=owner, error=f"agent {run.agent_id!r} is not registered"
        )
    elif agent.kind == LLM:
        await run_llm(rt, run, agent, owner)
    elif agent.callback_url:
        await _callback(rt, run, agent, owner)
    elif rt.settings.is_development:
        await _echo(rt, run, agent, owner)
    else:
        await runs.finish(rt, run, runs.FAILED, owner=owner, error=(
            f"agent {agent.id!r} has no callback_url and no model: set a callback_url, or make it kind llm"
        ))  # fmt: skip


async def _callback(rt: Runtime, run: AgentRun, agent: Agent, owner: str) -> None:
    """One step: the signed POST to the agent and what it answered, recorded with the run's end."""
    event = str(run.context.get("event") or "agent.task")
    data = run.context.get("data")
    body: dict[str, Any] = data if isinstance(data, dict) else {"run_id": run.id, "task": run.task}
    message_id = str(run.context.get("message_id") or run.id)
    started = time.perf_counter()
    try:
        answer = await callbacks.call_agent(rt, agent, event, body, message_id=message_id)
    except callbacks.CallbackFailed as exc:
        step = _step(run, "callback", {"event": event, "error": str(exc)}, started)
        await runs.finish(rt, run, runs.FAILED, owner=owner, error=str(exc), step=step)
        return
    step = _step(run, "callback", {"event": event, "answer": answer}, started)
    text = callbacks.message_in(answer)
    if text is None and answer:
        text = json.dumps(answer, separators=(",", ":"), default=str)
    await runs.finish(rt, run, runs.COMPLETED, owner=owner, answer=text, step=step)


async def _echo(rt: Runtime, run: AgentRun, agent: Agent, owner: str) -> None:
    """Development's stand-in: answers every task by echoing it, marked simulated so nobody mistakes it."""
    started = time.perf_counter()
    answer = simulated_answer(agent, run.task)
    step = _step(run, "echo", {"answer": answer}, started)
    await runs.finish(rt, run, runs.COMPLETED, owner=owner, answer=answer, simulated=True, step=step)


def _step(run: AgentRun, kind: str, payload: dict[str, Any], started: float) -> AgentRunStep:
    """The run's next step row, written by :func:`runs.finish` with the run's end."""
    return AgentRunStep(run_id=run.id, seq=run.steps + 1, tenant_id=run.tenant_id, kind=kind, payload=payload,
                        prompt_tokens=0, completion_tokens=0,
                        duration_ms=(time.perf_counter() - started) * 1000, created_at=utcnow())  # fmt: skip
