"""How producers wake an agent of any kind: a durable run keyed by what woke it, worked here, answered back.

This is the :class:`~herald.producers.callbacks.AgentCaller` the runtime hands producers, so a schedule, a
trigger, a monitor or an inbound message wakes an external agent, an LLM agent or the echo agent the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from herald.agents import runs
from herald.agents.settings import load
from herald.producers.callbacks import AgentAnswer, CallbackFailed
from herald.storage.models import Agent

if TYPE_CHECKING:
    from herald.runtime import Runtime

WAIT_MARGIN_SECONDS = 30.0  # beyond the run's own timeout, for a run another process is finishing


class Dispatcher:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def ask(
        self,
        agent: Agent | None,
        event_type: str,
        data: dict[str, Any],
        *,
        origin: str,
        message_id: str,
        task: str,
        conversational: bool = False,
        retry_failed: bool = False,
    ) -> AgentAnswer:
        if agent is None:
            raise CallbackFailed("the agent is not registered")
        run_id, held = await runs.open_run(
            self.rt, tenant_id=agent.tenant_id, agent_id=agent.id, origin=origin, woken_by=event_type.split(".", maxsplit=1)[0],
            task=task, context={"event": event_type, "data": data, "message_id": message_id},
            retry_failed=retry_failed, held_by=runs.OWNER,
        )  # fmt: skip
        run = await runs.drive(self.rt, run_id, wait_seconds=_wait(agent), held=held, agent=agent)
        if (
            run.status == runs.WAITING
        ):  # asked a person: its final answer goes out when it finishes (runs.finish)
            return AgentAnswer(content=None, answer=None, run_id=run.id, default_target=default_target(agent),
                               metadata={"agent_run": run.id, "waiting": True})  # fmt: skip
        if run.status != runs.COMPLETED:
            reason = run.error or f"the run is still {run.status}"
            raise CallbackFailed(
                reason if agent.kind != "llm" else f"agent run {run.id} ended {run.status}: {reason}"
            )
        # An LLM agent that sent its messages itself has said what it had to; its final words are kept, not sent.
        content = None if run.sent_messages and not conversational else (run.answer or None)
        return AgentAnswer(
            content=content, answer=run.answer, run_id=run.id, simulated=run.simulated,
            default_target=default_target(agent), metadata={"agent_run": run.id, **({"simulated": True}
                                                                                   if run.simulated else {})},
        )  # fmt: skip


def default_target(agent: Agent) -> dict[str, str] | None:
    target = agent.default_recipient or None
    if not target:
        return None
    return {k: str(v) for k, v in target.items() if k in ("platform", "recipient_id", "contact_id") and v}


def _wait(agent: Agent) -> float:
    settings = load(agent.llm) if agent.kind == "llm" else None
    return (settings.timeout_seconds if settings else 60.0) + WAIT_MARGIN_SECONDS
