"""The first-run path shown on the overview of a tenant that has not yet sent anything.

Three steps, each read from the tenant's own rows so it is ticked the moment it is true, whichever way it was
done (dashboard, API, CLI): somewhere to send (a channel, or in development Herald's dev inbox, which takes
every message no channel is configured for), an agent to send as, and a first message. The overview shows the
steps until all three are done; :mod:`herald.web.dashboard.setup_pages` holds the small "send a first message"
form, which goes through the API like every other form.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.storage.models import Agent, Channel, Message


@dataclass(frozen=True)
class Step:
    """One step: whether it is done, and the words and link that say so (or say how)."""

    key: str
    title: str
    done: bool
    detail: str
    href: str
    action: str


@dataclass(frozen=True)
class FirstRun:
    steps: tuple[Step, ...]

    @property
    def complete(self) -> bool:
        return all(s.done for s in self.steps)


async def _count(
    session: AsyncSession, model: type[Agent] | type[Channel] | type[Message], tenant: str
) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant)) or 0
    )


async def first_run(
    session: AsyncSession, tenant_id: str, *, development: bool, channel_form: str
) -> FirstRun:
    """The three steps as they stand for ``tenant_id``; ``channel_form`` is where a channel is added."""
    channels = await _count(session, Channel, tenant_id)
    agents = await _count(session, Agent, tenant_id)
    messages = await _count(session, Message, tenant_id)
    if channels:
        channel = Step("channel", "Add a channel", True, f"{channels} configured.", "/interfaces", "See them")
    elif development:
        channel = Step(
            "channel", "Add a channel", True,
            "None yet, and none needed to try Herald: in development every message without a channel goes "
            "to the dev inbox.", channel_form, "Add a real one",
        )  # fmt: skip
    else:
        channel = Step(
            "channel", "Add a channel", False, "Nothing can be delivered until a channel is configured.",
            channel_form, "Add a channel",
        )  # fmt: skip
    agent = Step(
        "agent", "Register an agent", bool(agents),
        f"{agents} registered." if agents else "Every message is sent as an agent, governed by its maturity level.",
        "/manage/agents/new" if not agents else "/agents", "Register an agent" if not agents else "See them",
    )  # fmt: skip
    message = Step(
        "message", "Send a first message", bool(messages),
        f"{messages} sent so far." if messages else "Send one from here and see it arrive in the dev inbox.",
        "/manage/first-message" if not messages else "/messages",
        "Send a first message" if not messages else "See them",
    )  # fmt: skip
    return FirstRun((channel, agent, message))
