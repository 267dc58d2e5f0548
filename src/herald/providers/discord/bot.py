"""Discord: a bot posts to a channel with ``POST /api/v10/channels/{channel_id}/messages``.

Content is capped at 2,000 characters per message (the pipeline splits longer text and sends the parts in order);
the id is the message's snowflake. Errors are ``{"code": ..., "message": ...}`` with Discord's own codes (10003 Unknown
Channel, 50001 Missing Access, 50013 Missing Permissions, 50035 Invalid Form Body); a 429 says how long to wait in
``Retry-After`` (whole seconds) and in the body's ``retry_after`` (float seconds, preferred).

Actions go out as ``components``: action rows (``type`` 1) of up to five buttons (``type`` 2) each, at most five
rows, so the first 25 actions; a button's ``custom_id`` is the action's value and its style SUCCESS for
``primary``, DANGER for ``danger``, else SECONDARY. :meth:`DiscordBotChannel.update_sent` edits a sent message
(``PATCH .../messages/{id}``) to the new content with no components, which removes the buttons.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Action, Channel, OutboundMessage, parse_retry_after
from herald.providers.http import call, json_body, origin, raise_for_status

MAX_CONTENT = 2_000
BUTTONS_PER_ROW, MAX_ROWS = 5, 5
MAX_LABEL, MAX_CUSTOM_ID = 80, 100
SECONDARY, SUCCESS, DANGER = 2, 3, 4
BUTTON_STYLES = {"primary": SUCCESS, "danger": DANGER}


class DiscordBotCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    bot_token: str = Field(
        min_length=10, repr=False, description="the bot's token (sent as Authorization: Bot ...)"
    )
    public_key: str | None = Field(
        default=None, repr=False, description="for inbound interactions (Ed25519, hex)"
    )

    @field_validator("bot_token")
    @classmethod
    def _strip_scheme(cls, value: str) -> str:
        value = value.strip()
        return value.removeprefix("Bot ").strip()


def raise_for_discord(response: httpx.Response, provider: str) -> None:
    """Discord's error classes: 429 (retry-after from the body, else the header) and 5xx retryable, other 4xx
    permanent, with Discord's error code and message in the reason."""
    status = response.status_code
    if 200 <= status < 300:
        return
    body = json_body(response)
    code, text = body.get("code"), body.get("message")
    reason = " ".join(str(part) for part in (code or None, text) if part) or None
    if status == 429:
        retry_after = body.get("retry_after")
        wait = (
            float(retry_after)
            if isinstance(retry_after, int | float) and not isinstance(retry_after, bool) and retry_after >= 0
            else parse_retry_after(response.headers.get("retry-after"))
        )
        scope = " (global)" if body.get("global") is True else ""
        raise RetryableDeliveryError(
            f"{provider} answered HTTP 429{scope}" + (f": {reason}" if reason else ""), retry_after=wait
        )
    raise_for_status(response, provider, reason)


def components(actions: tuple[Action, ...]) -> list[dict[str, Any]]:
    """The actions as action rows of five buttons each (Discord shows at most five rows: later actions go)."""
    buttons = [
        {
            "type": 2,
            "style": BUTTON_STYLES.get(action.style or "", SECONDARY),
            "label": action.label[:MAX_LABEL] or action.value[:MAX_LABEL],
            "custom_id": action.value[:MAX_CUSTOM_ID],
        }
        for action in actions[: BUTTONS_PER_ROW * MAX_ROWS]
    ]
    return [
        {"type": 1, "components": buttons[i : i + BUTTONS_PER_ROW]}
        for i in range(0, len(buttons), BUTTONS_PER_ROW)
    ]


def message_id(response: httpx.Response, provider: str) -> str:
    """The ``id`` of the message object Discord answers with."""
    snowflake = json_body(response).get("id")
    if not snowflake:
        raise PermanentDeliveryError(f"{provider}: HTTP {response.status_code} without a message id")
    return str(snowflake)


class DiscordBotChannel(Channel):
    provider = "discord_bot"
    platforms: ClassVar[frozenset[str]] = frozenset({"discord"})
    credentials_model = DiscordBotCredentials
    max_length = MAX_CONTENT
    split_long = True
    rate_per_second = 50.0  # Discord's global limit per bot; per-route buckets come back in the headers
    default_origin = "https://discord.com"
    can_update = True

    async def send(self, message: OutboundMessage) -> str:
        payload: dict[str, Any] = {"content": message.content}
        if message.actions:
            payload["components"] = components(message.actions)
        response = await self._call("POST", self._messages(message.recipient_id), payload)
        return message_id(response, self.provider)

    async def update_sent(self, recipient_id: str, provider_message_id: str, content: str) -> None:
        """Edit the message to ``content`` (cut to 2,000 characters) with no components: the buttons go."""
        if len(content) > MAX_CONTENT:
            content = content[: MAX_CONTENT - 1] + "…"
        url = f"{self._messages(recipient_id)}/{quote(provider_message_id, safe='')}"
        await self._call("PATCH", url, {"content": content, "components": []})

    def _messages(self, channel_id: str) -> str:
        return (
            f"{origin(self.config.base_url, self.default_origin)}"
            f"/api/v10/channels/{quote(channel_id, safe='')}/messages"
        )

    async def _call(self, method: str, url: str, payload: dict[str, Any]) -> httpx.Response:
        creds = DiscordBotCredentials.model_validate(self.config.credentials)
        response = await call(
            self.http, self.provider, method, url,
            json=payload, headers={"authorization": f"Bot {creds.bot_token}"},
        )  # fmt: skip
        raise_for_discord(response, self.provider)
        return response
