"""AI-written message content, hybrid as in seed 004: template first, the model personalises or writes, and a
model that fails never blocks the message.

:func:`compose` is the service every producer calls (the send API today, campaigns later):

- a rendered template with ``enhance`` on: the model personalises it within the length limit (``ai_enhanced``);
- no template: the model writes from the event type's prompt (``ai_written``);
- the model fails, times out or answers something unusable (empty, over the limit, template syntax or
  placeholders, a refusal): the template, or the event type's fallback text, is sent (``fallback``);
- a template without enhancement, or no model configured: the template as rendered (``template``).

It talks to the same OpenAI-compatible endpoint as LLM agents, through :mod:`herald.pipeline.llm` (its client
and retries). It lives in the pipeline so that producers, which sit below agents in the layers, can call it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from herald.core import logs
from herald.core.errors import ValidationFailed
from herald.core.intent import ContentOrigin, Intent
from herald.core.maturity import MaturityLevel
from herald.core.principal import Principal
from herald.pipeline import llm, templates
from herald.pipeline.routing import planner
from herald.storage.models import Agent
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

Path = Literal["template", "ai_enhanced", "ai_written", "fallback"]
PATHS: tuple[Path, ...] = ("template", "ai_enhanced", "ai_written", "fallback")

# Without a channel limit (email, chat) the model still writes a message, not an essay.
DEFAULT_MAX_LENGTH = 2000
# Platforms where a provider takes far more than a reader wants: SMS is billed per 160-character segment, so
# AI text stays within two segments unless the caller asks for another limit.
PLATFORM_MAX_LENGTH = {"sms": 320}

_PLACEHOLDER = re.compile(r"\[[A-Za-z][A-Za-z0-9 _.'-]{0,40}\]|\{[A-Za-z_][A-Za-z0-9_.]*\}|<[a-z_]+>")
_TEMPLATE_SYNTAX = ("{{", "}}", "{%", "%}", "{#")
_REFUSALS = re.compile(
    r"^\s*(i'?m sorry|i am sorry|sorry, (but )?i|i can(no|')t|i cannot|i'?m (not able|unable)|i am (not able|unable)"
    r"|as an ai\b)|\bas an ai (language )?model\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Composed:
    """The text to send and how it came to be; tokens and cost are the model's, also when its answer was
    unusable (they were spent)."""

    text: str
    subject: str | None
    path: Path
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    reason: str | None = None  # why the model's text was not used (``fallback`` only)

    def origin(self) -> ContentOrigin:
        """What the message row records."""
        return ContentOrigin(
            path=self.path, model=self.model, prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens, cost=self.cost,
        )  # fmt: skip


def limit_for(platform: str | None, provider_limit: int | None, asked: int | None) -> int:
    """The most characters AI text may have: the smallest of the caller's, the provider's and the platform's."""
    limits = [x for x in (asked, provider_limit, PLATFORM_MAX_LENGTH.get(platform or "")) if x is not None]
    return min(limits) if limits else DEFAULT_MAX_LENGTH


async def compose(
    rt: Runtime,
    *,
    llm_settings: llm.LLMEndpoint | None,
    api_key: str,
    event_type: str,
    prompt: str | None,
    rendered: str | None,
    variables: dict[str, Any],
    channel: str | None,
    limit: int,
    enhance: bool,
    timeout_seconds: float,
    subject: str | None = None,
    fallback: str | None = None,
) -> Composed:
    """The message text for one recipient. Never raises for the model's sake: any failure falls back to
    ``rendered`` (the template as rendered), else to ``fallback`` (the event type's fallback text)."""
    backup = rendered if rendered is not None else fallback
    if backup is None:
        raise ValidationFailed("give a rendered template or the event type's fallback text", field="content")
    if llm_settings is None or (rendered is not None and not enhance):
        return Composed(backup, subject, "template")
    if rendered is None and not prompt:
        raise ValidationFailed("writing without a template needs the event type's prompt", field="prompt")
    messages = _messages(event_type, prompt, rendered, variables, channel, limit)
    loop = asyncio.get_running_loop()
    try:
        turn = await llm.complete(rt.http, llm_settings, api_key, messages, [], deadline=loop.time() + timeout_seconds,
                                  max_tokens=max(16, limit // 2))  # fmt: skip
    except (TimeoutError, llm.LLMFailed) as exc:
        return _fell_back(Composed(backup, subject, "fallback", llm_settings.model), event_type, _why(exc))
    except Exception as exc:  # whatever the transport does, the message still goes out
        return _fell_back(
            Composed(backup, subject, "fallback", llm_settings.model), event_type, type(exc).__name__
        )
    text = clean(turn.content or "")
    answered = Composed(
        text, subject, "ai_enhanced" if rendered is not None else "ai_written", llm_settings.model,
        turn.prompt_tokens, turn.completion_tokens, llm_settings.cost_of(turn),
    )  # fmt: skip
    problem = unusable(text, limit)
    if problem is not None:
        return _fell_back(dataclasses.replace(answered, text=backup, path="fallback"), event_type, problem)
    return answered


def _why(exc: BaseException) -> str:
    return f"model failed: {exc.reason}" if isinstance(exc, llm.LLMFailed) else "model timed out"


def _fell_back(composed: Composed, event_type: str, reason: str) -> Composed:
    """The backup text, with the model's tokens and cost if it answered; the reason goes to the log."""
    logs.get_logger(__name__).warning(
        "ai content fell back", event_type=event_type, model=composed.model, reason=reason
    )
    return dataclasses.replace(composed, reason=reason)


def _messages(
    event_type: str,
    prompt: str | None,
    rendered: str | None,
    variables: dict[str, Any],
    channel: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The system rules (length, no placeholders), the event type's prompt, and the person's details."""
    medium = f"{channel} message" if channel else "message"
    rules = (
        f"Answer with the text of the {medium} only, at most {limit} characters: no subject line, no quotes "
        "around it, no placeholders such as [Name], no template syntax such as {{name}}."
    )
    if rendered is not None:
        task = (
            f"You personalise a {medium} before it is sent to one person. Rewrite it so it reads as written for "
            "them, keeping every fact, date, amount, link and call to action."
        )
    else:
        task = f"You write a {medium} to one person on behalf of a business."
    system = f"{task} {rules}" + (f"\n\n{prompt}" if prompt else "")
    details = json.dumps(variables, ensure_ascii=False, sort_keys=True, default=str)
    user = f"Event: {event_type}\nDetails: {details}"
    if rendered is not None:
        user += f"\nMessage:\n{rendered}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def clean(text: str) -> str:
    """The model's text without the wrapping models add: surrounding whitespace and quotes."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" and text[0] not in text[1:-1]:
        text = text[1:-1].strip()
    return text


def unusable(text: str, limit: int) -> str | None:
    """Why the model's text must not be sent, or None when it may."""
    if not text:
        return "empty answer"
    if len(text) > limit:
        return f"answer is {len(text)} characters; the limit is {limit}"
    if any(mark in text for mark in _TEMPLATE_SYNTAX):
        return "answer contains template syntax"
    found = _PLACEHOLDER.search(text)
    if found is not None:
        return f"answer contains the placeholder {found.group(0)!r}"
    if _REFUSALS.search(text):
        return "answer is a refusal"
    return None


@dataclass(frozen=True)
class Ask:
    """What a sender asks of the agent's model (the send API's ``compose``)."""

    event_type: str
    prompt: str | None
    enhance: bool = True
    max_length: int | None = None
    timeout: float = 15.0


async def compose_intent(rt: Runtime, principal: Principal, intent: Intent, ask: Ask) -> Intent:
    """``intent`` with its content composed by its agent's own model (its LLM settings and key): ``content`` is
    rendered first, and is the template (``enhance``) or the fallback text (write from ``prompt``).

    Runs outside the caller's transaction, so no database lock is held while the model thinks. An intent the
    pipeline will refuse anyway (another agent's key, a STUDENT agent) is returned as is: no model call."""
    if intent.agent_id is None or (principal.agent_id is not None and intent.agent_id != principal.agent_id):
        return intent
    async with rt.sessions() as session:
        agent = await session.get(Agent, (principal.tenant_id, intent.agent_id))
        if agent is None or agent.kind != "llm" or not agent.llm:
            raise ValidationFailed(
                f"agent {intent.agent_id!r} has no LLM settings to compose with: register it as kind llm",
                field="compose",
            )
        if agent.maturity_level == MaturityLevel.STUDENT.value:
            return intent
        route = await planner.plan(
            rt, session, principal.tenant_id, platform=intent.platform, recipient_id=intent.recipient_id,
            channel_id=intent.channel_id, contact_id=intent.contact_id, priority_name=intent.priority.name,
            fallback=intent.fallback,
        )  # fmt: skip
        settings = llm.LLMEndpoint.model_validate(agent.llm)
        api_key = str(rt.credentials.open(agent.llm_api_key).get("api_key", "")) if agent.llm_api_key else ""
    first = route.steps[0]
    provider_limits = [x for x in (planner.length_limit(step) for step in route.steps) if x is not None]
    limit = limit_for(first.platform, min(provider_limits) if provider_limits else None, ask.max_length)
    rendered = templates.render(intent.content, intent.template_variables, now=intent.scheduled_for or utcnow(),
                                timezone=intent.timezone, field="content")  # fmt: skip
    composed = await compose(
        rt, llm_settings=settings, api_key=api_key, event_type=ask.event_type, prompt=ask.prompt,
        rendered=rendered if ask.enhance else None, fallback=rendered, variables=intent.template_variables,
        channel=first.platform, limit=limit, enhance=ask.enhance, timeout_seconds=ask.timeout, subject=intent.subject,
    )  # fmt: skip
    return dataclasses.replace(intent, content=composed.text, origin=composed.origin())
