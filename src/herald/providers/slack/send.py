"""Slack: ``chat.postMessage`` with a bot token, with buttons as Block Kit, and ``chat.update`` to settle them.

Slack answers HTTP 200 with ``{"ok": false, "error": ...}`` for most failures, so the error name decides the
class; rate limiting is HTTP 429 with ``Retry-After``. The message id is ``ts`` (unique within the channel).

A message with actions goes out as blocks: the content in ``section`` blocks (mrkdwn, at most 3,000 characters
each, so long content takes several), then ``actions`` blocks of ``button``\\ s (at most 25 each) whose
``value`` and ``action_id`` are the action's value; the top-level ``text`` stays the notification fallback.
:meth:`SlackChannel.update_sent` replaces a sent message's text and blocks with ``chat.update``, leaving only the
sections, so the buttons disappear. ``chat.update`` wants the conversation's id where ``chat.postMessage`` also
takes a user id (a DM from the app): for a recipient that is a user (``U...``/``W...``) the DM's id comes from
``conversations.open`` first, which needs the ``im:write`` scope.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Action, Channel, OutboundMessage, split_text
from herald.providers.http import call, json_body, origin, raise_for_status

RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
MAX_SECTION = 3_000  # characters of text in one section block
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255  # action_id and value
MAX_ELEMENTS = 25  # elements in one actions block
BUTTON_STYLES = frozenset({"primary", "danger"})


class SlackCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: str = Field(
        min_length=10,
        repr=False,
        description="xoxb-... with chat:write (and im:write to update DMs to users)",
    )
    signing_secret: str | None = Field(default=None, repr=False, description="for inbound events")


def sections(content: str) -> list[dict[str, Any]]:
    """``content`` as mrkdwn section blocks, split at line or word boundaries to fit 3,000 characters each."""
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": part}}
        for part in split_text(content, MAX_SECTION)
        if part
    ]


def button(action: Action) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": {
            "type": "plain_text",
            "text": _cut(action.label, MAX_BUTTON_TEXT) or action.value[:MAX_BUTTON_TEXT],
        },
        "value": action.value[:MAX_ACTION_ID],
        "action_id": action.value[:MAX_ACTION_ID],
    }
    if action.style in BUTTON_STYLES:
        element["style"] = action.style
    return element


def blocks(content: str, actions: tuple[Action, ...]) -> list[dict[str, Any]]:
    """The section blocks, then one actions block per 25 buttons."""
    rows = [
        {"type": "actions", "elements": [button(a) for a in actions[i : i + MAX_ELEMENTS]]}
        for i in range(0, len(actions), MAX_ELEMENTS)
    ]
    return sections(content) + rows


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Slack reads a JSON body only with the charset named; without it the answer carries a ``missing_charset`` warning.
JSON_UTF8 = "application/json; charset=utf-8"


class SlackChannel(Channel):
    provider = "slack"
    platforms: ClassVar[frozenset[str]] = frozenset({"slack"})
    credentials_model = SlackCredentials
    max_length = 40_000
    recipient_rate_per_second = 1.0  # about one message per second per channel
    burst = 3.0
    default_origin = "https://slack.com"
    can_update = True

    async def send(self, message: OutboundMessage) -> str:
        payload: dict[str, Any] = {"channel": message.recipient_id, "text": message.content}
        if message.actions:
            payload["blocks"] = blocks(message.content, message.actions)
        thread = (message.reply_context or {}).get("thread_id")
        if thread:  # the person wrote in a thread: answer there
            payload["thread_ts"] = str(thread)
        body = await self._call("chat.postMessage", payload)
        if body.get("ts"):
            return str(body["ts"])
        raise PermanentDeliveryError("slack: malformed answer")

    async def update_sent(self, recipient_id: str, provider_message_id: str, content: str) -> None:
        """``chat.update`` with the new text as sections only: the actions blocks (the buttons) go."""
        channel = recipient_id
        if recipient_id[:1] in ("U", "W"):  # sent to a user: the message is in the app's DM with them
            opened = await self._call("conversations.open", {"users": recipient_id})
            dm = opened.get("channel")
            channel = str(dm.get("id") or "") if isinstance(dm, dict) else ""
            if not channel:
                raise PermanentDeliveryError("slack: conversations.open answered without a channel")
        payload = {
            "channel": channel,
            "ts": provider_message_id,
            "text": content,
            "blocks": sections(content),
        }
        await self._call("chat.update", payload)

    async def _call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One Web API call; the answer's body when ``ok``, else the error's delivery class."""
        creds = SlackCredentials.model_validate(self.config.credentials)
        response: httpx.Response = await call(
            self.http, self.provider, "POST",
            f"{origin(self.config.base_url, self.default_origin)}/api/{method}",
            content=json.dumps(payload, ensure_ascii=False).encode(),
            headers={"authorization": f"Bearer {creds.bot_token}", "content-type": JSON_UTF8},
        )  # fmt: skip
        raise_for_status(response, self.provider)
        body = json_body(response)
        if body.get("ok") is True:
            return body
        error = str(body.get("error") or "malformed answer")
        if error in RETRYABLE_ERRORS:
            raise RetryableDeliveryError(f"slack: {error}")
        raise PermanentDeliveryError(f"slack: {error}")
