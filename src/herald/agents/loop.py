"""The LLM agent's loop (seed 004's ReAct: think, act with tools, observe), one committed step at a time.

Each model answer is a step; each tool call is a step written in the same transaction as the tool's effects
and the lease renewal. The conversation sent to the model is rebuilt from the committed steps, so resuming a run
after a crash is the same code as going on: tool calls the last model answer asked for and that have no step
yet are made; everything on record is not made again.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from herald.agents import llm, runs
from herald.agents.settings import LLMSettings, load
from herald.agents.tools import TOOLS, Effect, Tool, ToolContext
from herald.agents.tools.invoke import insert_audit, invoke
from herald.core.maturity import MaturityLevel
from herald.storage.models import Agent, AgentRun, AgentRunStep
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

MODEL, TOOL = "model", "tool"


async def run_llm(rt: Runtime, run: AgentRun, agent: Agent, owner: str) -> None:
    settings = load(agent.llm)
    if settings is None:
        await runs.finish(
            rt, run, runs.FAILED, owner=owner, error="the agent is kind llm but has no llm settings"
        )
        return
    api_key = str(rt.credentials.open(agent.llm_api_key).get("api_key", "")) if agent.llm_api_key else ""
    tools = {t.name: t for t in TOOLS.select(settings.tools)}
    specs = [t.openai_spec() for t in tools.values()]
    loop = asyncio.get_running_loop()
    spent = (utcnow() - run.started_at).total_seconds() - runs.waited_seconds(run) if run.started_at else 0.0
    deadline = loop.time() + max(0.0, settings.timeout_seconds - spent)
    steps = await runs.steps_of(rt, run.id)
    while True:
        for call in _unanswered(steps):
            step = await _call_tool(rt, run, agent, tools, call, owner)
            if step is None:
                return  # waiting for a person: their answer queues the run again
            steps.append(step)
        last = _last_model(steps)
        if last is not None and not last.payload.get("tool_calls"):
            await runs.finish(rt, run, runs.COMPLETED, owner=owner, answer=last.payload.get("content") or "")
            return
        limit = _limit(run, settings, steps, deadline - loop.time())
        if limit is not None:
            await runs.finish(rt, run, limit[0], owner=owner, error=limit[1], answer=_last_text(steps))
            return
        started = time.perf_counter()
        try:
            turn = await llm.complete(rt.http, settings, api_key, _messages(run, agent, settings, steps), specs,
                                      deadline=deadline)  # fmt: skip
        except TimeoutError:
            await runs.finish(rt, run, runs.TIMED_OUT, owner=owner, answer=_last_text(steps),
                              error=f"the run took longer than {settings.timeout_seconds:g} s")  # fmt: skip
            return
        except llm.LLMFailed as exc:
            await runs.finish(
                rt, run, runs.FAILED, owner=owner, error=f"the model endpoint failed: {exc.reason}"
            )
            return
        steps.append(await _record_turn(rt, run, turn, owner, started))


def _limit(
    run: AgentRun, settings: LLMSettings, steps: list[AgentRunStep], left: float
) -> tuple[str, str] | None:
    """The limit that forbids another model call, if any."""
    if left <= 0:
        return runs.TIMED_OUT, f"the run took longer than {settings.timeout_seconds:g} s"
    if sum(1 for s in steps if s.kind == MODEL) >= settings.max_steps:
        return runs.STEP_LIMIT, f"the run reached its limit of {settings.max_steps} model steps"
    used = run.prompt_tokens + run.completion_tokens
    if used >= settings.max_tokens:
        return runs.TOKEN_LIMIT, f"the run used {used} tokens, its budget is {settings.max_tokens}"
    return None


def _last_model(steps: list[AgentRunStep]) -> AgentRunStep | None:
    return next((s for s in reversed(steps) if s.kind == MODEL), None)


def _last_text(steps: list[AgentRunStep]) -> str | None:
    return next((str(s.payload["content"]) for s in reversed(steps) if s.kind == MODEL and s.payload.get("content")),
                None)  # fmt: skip


def _unanswered(steps: list[AgentRunStep]) -> list[dict[str, Any]]:
    """The tool calls of the last model step that have no committed result yet."""
    last = _last_model(steps)
    if last is None:
        return []
    answered = {s.payload.get("call_id") for s in steps if s.kind == TOOL and s.seq > last.seq}
    return [c for c in last.payload.get("tool_calls") or [] if c["id"] not in answered]


def _messages(
    run: AgentRun, agent: Agent, settings: LLMSettings, steps: list[AgentRunStep]
) -> list[dict[str, Any]]:
    """The conversation as the model sees it, rebuilt from the committed steps."""
    system = (f"{settings.persona}\n\nYou are agent {agent.id!r} at maturity level {agent.maturity_level}; every "
              "message you send is governed at that level (it may be refused or held for a human's approval).")  # fmt: skip
    task = run.task
    if run.context.get("data"):
        task += "\n\nContext (JSON):\n" + json.dumps(run.context["data"], default=str)[:20_000]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": task},
    ]
    for step in steps:
        if step.kind == MODEL:
            message: dict[str, Any] = {"role": "assistant", "content": step.payload.get("content")}
            calls = step.payload.get("tool_calls") or []
            if calls:
                message["tool_calls"] = [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for c in calls
                ]
            messages.append(message)
        elif step.kind == TOOL:
            messages.append({"role": "tool", "tool_call_id": step.payload["call_id"],
                             "content": json.dumps(step.payload.get("result"), default=str)})  # fmt: skip
    return messages


async def _record_turn(
    rt: Runtime, run: AgentRun, turn: llm.Turn, owner: str, started: float
) -> AgentRunStep:
    seq = run.steps + 1
    step = AgentRunStep(run_id=run.id, seq=seq, tenant_id=run.tenant_id, kind=MODEL, payload=turn.as_step(),
                        prompt_tokens=turn.prompt_tokens, completion_tokens=turn.completion_tokens,
                        duration_ms=(time.perf_counter() - started) * 1000, created_at=utcnow())  # fmt: skip
    async with rt.sessions.begin() as session:
        await runs.renew(session, run.id, owner, steps=seq, prompt_tokens=run.prompt_tokens + turn.prompt_tokens,
                         completion_tokens=run.completion_tokens + turn.completion_tokens)  # fmt: skip
        session.add(step)
    run.steps = seq
    run.prompt_tokens += turn.prompt_tokens
    run.completion_tokens += turn.completion_tokens
    return step


async def _call_tool(
    rt: Runtime, run: AgentRun, agent: Agent, tools: dict[str, Tool], call: dict[str, Any], owner: str
) -> AgentRunStep | None:
    """Make one tool call and record it, its effects, its audit entry and the lease renewal in one transaction.

    A question to a person (``ask_human`` answering ``wait``) records no step: the run waits, in the same
    transaction as the question, and the answer becomes the call's result. None then."""
    seq = run.steps + 1
    started = time.perf_counter()
    async with rt.sessions.begin() as session:
        fresh = await session.get(
            Agent, (agent.tenant_id, agent.id)
        )  # a level lowered mid-run applies at once
        level = MaturityLevel(fresh.maturity_level if fresh else agent.maturity_level)
        ctx = ToolContext(rt=rt, session=session, tenant_id=run.tenant_id, agent_id=agent.id, level=level,
                          run_id=run.id, step=seq, via="llm", call_id=call["id"])  # fmt: skip
        tool = tools.get(call["name"])
        result, outcome = await invoke(ctx, tool, call["name"], call.get("arguments"), known=list(tools))
        if outcome == "ok" and result.get("wait") is True:
            await runs.wait(session, run, owner)
            await session.execute(insert_audit(ctx, tool, call["name"], outcome, result))
            return None
        sent = (
            result.get("message_id")
            if tool is not None and tool.effect is Effect.SEND and outcome == "ok"
            else None
        )
        messages = (
            [*run.sent_messages, sent] if sent and call["name"] != "cancel_message" else run.sent_messages
        )
        await runs.renew(
            session, run.id, owner, steps=seq, sent_messages=messages
        )  # lost: the effects roll back
        step = AgentRunStep(
            run_id=run.id, seq=seq, tenant_id=run.tenant_id, kind=TOOL, prompt_tokens=0, completion_tokens=0,
            payload={"call_id": call["id"], "name": call["name"], "arguments": call["arguments"], "result": result,
                     "outcome": outcome},
            duration_ms=(time.perf_counter() - started) * 1000, created_at=utcnow(),
        )  # fmt: skip
        session.add(step)
        await session.execute(insert_audit(ctx, tool, call["name"], outcome, result))
    run.steps = seq
    run.sent_messages = messages
    return step
