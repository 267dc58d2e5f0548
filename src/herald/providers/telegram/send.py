"""Telegram Bot API: ``sendMessage`` with a bot token; ``editMessageText`` and ``answerCallbackQuery`` for buttons.

The token is part of the path (``/bot<token>/sendMessage``), so it never appears in error text here. Failures
answer ``{"ok": false, "error_code", "description", "parameters": {"retry_after"}}``: 429 (flood control) and
5xx are retryable, with ``parameters.retry_after`` or else the ``Retry-After`` header; everything else (400 chat
not found, 401 bad token, 403 blocked or deactivated) is permanent. One call sends one message of at most 4,096
characters (the pipeline splits longer text and sends the parts in order); the id is ``result.message_id``
(unique within the chat), returned bare. A reply quotes the message it answers.

**Buttons.** A message's actions go out as an inline keyboard (``reply_markup.inline_keyboard``) whose buttons
carry the action's value as ``callback_data`` (1-64 bytes; a longer value is refused, never cut, since it must
come back verbatim): two buttons a row when every label is short, else one a row. A press arrives as a
``callback_query`` (see :mod:`herald.providers.telegram.inbound`), answered with ``answerCallbackQuery``
(:meth:`TelegramChannel.acknowledge`). :meth:`TelegramChannel.update_sent` edits a sent message with
``editMessageText`` and no ``reply_markup``, which removes its keyboard; Telegram's 400 "message is not modified"
(the same text again, e.g. a second approver's copy already updated) counts as done.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from herald.core.errors import PermanentDeliveryError, RetryableDeliveryError
from herald.providers.base import Action, Channel, OutboundMessage, parse_retry_after
from herald.providers.http import call, json_body, origin

MAX_CALLBACK_DATA = 64  # bytes
SHORT_LABEL = 16  # characters: labels this short sit two to a row
MAX_ANSWER_TEXT = 200  # answerCallbackQuery's notification text


class TelegramCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: str = Field(
        min_length=10, pattern=r"^[^/\s?#]+$", repr=False, description="123456:ABC-... from @BotFather"
    )
    secret_token: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{1,256}$", repr=False,
        description="setWebhook secret_token, checked on inbound updates (X-Telegram-Bot-Api-Secret-Token)",
    )  # fmt: skip


def inline_keyboard(actions: tuple[Action, ...]) -> dict[str, Any]:
    """The ``reply_markup`` for ``actions``; refuses a value that is not valid ``callback_data`` (1-64 bytes)."""
    for action in actions:
        size = len(action.value.encode())
        if not 1 <= size <= MAX_CALLBACK_DATA:
            raise PermanentDeliveryError(
                f"telegram: button value of {size} bytes; callback_data takes 1-{MAX_CALLBACK_DATA}"
            )
    buttons = [{"text": action.label, "callback_data": action.value} for action in actions]
    per_row = 2 if all(len(action.label) <= SHORT_LABEL for action in actions) else 1
    return {"inline_keyboard": [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]}


class TelegramChannel(Channel):
    provider = "telegram"
    platforms: ClassVar[frozenset[str]] = frozenset({"telegram"})
    credentials_model = TelegramCredentials
    max_length = 4096
    split_long = True
    rate_per_second = 30.0  # about 30 messages per second per bot
    recipient_rate_per_second = 1.0  # about one message per second per chat
    burst = 3.0
    default_origin = "https://api.telegram.org"
    can_update = True

    async def send(self, message: OutboundMessage) -> str:
        payload: dict[str, Any] = {"chat_id": message.recipient_id, "text": message.content}
        reply_to = message.reply_to()
        if reply_to is not None and reply_to.isdigit():
            # A reply quotes the message it answers; if that message is gone, send anyway.
            payload["reply_parameters"] = {"message_id": int(reply_to), "allow_sending_without_reply": True}
        if message.actions:
            payload["reply_markup"] = inline_keyboard(message.actions)
        result = await self._call("sendMessage", payload)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        if message_id is None:
            raise PermanentDeliveryError("telegram: malformed answer (no result.message_id)")
        return str(message_id)

    async def update_sent(self, recipient_id: str, provider_message_id: str, content: str) -> None:
        """``editMessageText`` without ``reply_markup``: the new text, and the inline keyboard gone."""
        message_id = provider_message_id.rsplit(":", 1)[-1]  # bare, or chat-qualified as inbound ids are
        if not message_id.isdigit():
            raise PermanentDeliveryError(f"telegram: {provider_message_id!r} is not a Telegram message id")
        if len(content) > self.max_length:  # an edit cannot split; a cut text beats keeping stale buttons
            content = content[: self.max_length - 1] + "\u2026"
        payload = {"chat_id": recipient_id, "message_id": int(message_id), "text": content}
        await self._call("editMessageText", payload, unchanged_is_done=True)

    async def acknowledge(self, token: str, text: str) -> None:
        """``answerCallbackQuery``: stops the button's spinner and shows ``text`` (cut to 200) as a notice."""
        payload: dict[str, Any] = {"callback_query_id": token}
        if text:
            payload["text"] = text[:MAX_ANSWER_TEXT]
        await self._call("answerCallbackQuery", payload)

    async def _call(self, method: str, payload: dict[str, Any], *, unchanged_is_done: bool = False) -> Any:
        """POST one Bot API method; its ``result``, or the DeliveryError its failure stands for."""
        creds = TelegramCredentials.model_validate(self.config.credentials)
        url = f"{origin(self.config.base_url, self.default_origin)}/bot{creds.bot_token}/{method}"
        response = await call(self.http, self.provider, "POST", url, json=payload)
        body = json_body(response)
        if response.is_success and body.get("ok") is True:
            return body.get("result")
        code = _int(body.get("error_code")) or response.status_code
        description = str(body.get("description") or "no description")
        if unchanged_is_done and code == 400 and "message is not modified" in description:
            return None
        reason = f"telegram: {code} {description}"
        if code == 429 or code >= 500 or response.status_code == 429 or response.status_code >= 500:
            raise RetryableDeliveryError(
                reason, retry_after=_retry_after(body, response.headers.get("retry-after"))
            )
        raise PermanentDeliveryError(reason)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _retry_after(body: dict[str, Any], header: str | None) -> float | None:
    parameters = body.get("parameters")
    if isinstance(parameters, dict):
        value = parameters.get("retry_after")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
    return parse_retry_after(header)
