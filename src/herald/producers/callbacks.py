"""Calling an agent.

Producers wake an agent through ``rt.agents`` (an :class:`AgentCaller`, built in :mod:`herald.agents.dispatch`),
whatever its kind, and get an :class:`AgentAnswer`. For external agents that is a JSON POST to the agent's
``callback_url`` (:func:`call_agent`), signed in the Standard Webhooks format with the agent's secret, retried with
backoff on network errors, 429 and 5xx.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from herald.core.errors import HeraldError
from herald.core.netguard import BlockedDestination
from herald.core.security import new_webhook_secret, standard_webhook_signature
from herald.providers.base import parse_retry_after
from herald.storage.models import Agent
from herald.storage.models import InboundMessage as InboundRow

if TYPE_CHECKING:
    from herald.runtime import Runtime

RETRY_DELAYS = (1.0, 5.0)


class CallbackFailed(HeraldError):
    """The agent could not be reached, or refused the call."""


@dataclass(frozen=True)
class AgentAnswer:
    """What an agent answered a producer.

    ``content`` is the message to send for it (None when there is nothing to send: no answer, or an LLM agent
    that already sent its messages with its tools); ``answer`` is the agent's full answer, always kept.
    ``default_target`` is where the agent wants answers that name no recipient to go: ``platform`` and
    ``recipient_id``, or ``contact_id``.
    """

    content: str | None
    answer: str | None = None
    run_id: str | None = None
    simulated: bool = False
    default_target: dict[str, str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class AgentCaller(Protocol):
    """Wakes an agent of any kind and waits for its answer; raises CallbackFailed with the reason it failed.

    ``origin`` names what woke it, once: asking again with the same origin (a retry after a crash) resumes or
    returns that run instead of starting another.
    """

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
    ) -> AgentAnswer: ...


class Interceptor(Protocol):
    """Takes the inbound messages that are not for an agent: decisions and answers to Herald's own requests
    (see :mod:`herald.humans.decisions`). ``take`` returns the row's outcome, or None to route it as usual."""

    async def take(self, row: InboundRow, platform: str) -> str | None: ...

    async def idle(self) -> None:
        """Wait for the follow-ups of what was taken (acknowledging presses, changing copies) to finish."""


def new_secret(rt: Runtime) -> tuple[str, bytes]:
    """A fresh signing secret: (shown once to the caller, sealed for storage)."""
    secret = new_webhook_secret()
    return secret, rt.credentials.seal({"secret": secret})


def signed_request(
    secret: str, event_type: str, data: dict[str, Any], message_id: str
) -> tuple[bytes, dict[str, str]]:
    timestamp = int(time.time())
    body = json.dumps(
        {
            "type": event_type,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp)),
            "data": data,
        },
        separators=(",", ":"),
        default=str,
    ).encode()
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhook_signature(secret, message_id, timestamp, body),
    }
    return body, headers


async def call_agent(
    rt: Runtime, agent: Agent | None, event_type: str, data: dict[str, Any], *, message_id: str
) -> dict[str, Any] | None:
    """POST to the agent; return its JSON answer (None for an empty one). Raises CallbackFailed when spent."""
    if agent is None or not agent.callback_url:
        raise CallbackFailed("the agent has no callback_url")
    if agent.callback_secret is None:
        raise CallbackFailed("the agent has no callback secret")
    secret = str(rt.credentials.open(agent.callback_secret)["secret"])
    last = "no attempt"
    for delay in (*RETRY_DELAYS, None):
        body, headers = signed_request(secret, event_type, data, message_id)
        wait = delay
        try:
            response = await rt.http.post(
                agent.callback_url, content=body, headers=headers, follow_redirects=False
            )
        except BlockedDestination as exc:  # retrying cannot help until the allow-list changes
            raise CallbackFailed(str(exc)) from exc
        except httpx.HTTPError as exc:
            last = f"unreachable: {type(exc).__name__}"
        else:
            if 200 <= response.status_code < 300:
                return _json(response)
            last = f"answered HTTP {response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                raise CallbackFailed(f"agent {last}")
            asked = parse_retry_after(response.headers.get("retry-after"))
            if asked is not None and wait is not None:
                wait = min(max(wait, asked), 60.0)
        if wait is None:
            break
        await asyncio.sleep(wait)
    raise CallbackFailed(f"agent {last} after {len(RETRY_DELAYS) + 1} tries")


def _json(response: httpx.Response) -> dict[str, Any] | None:
    if not response.content:
        return None
    try:
        value = response.json()
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def message_in(answer: dict[str, Any] | None) -> str | None:
    """The message text an agent's answer asks Herald to send: ``{"reply": "..."}`` or ``{"message": {"content": ...}}``."""
    if not answer:
        return None
    if isinstance(answer.get("reply"), str) and answer["reply"].strip():
        return str(answer["reply"])
    message = answer.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str) and message["content"].strip():
        return str(message["content"])
    return None
