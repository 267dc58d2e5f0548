"""Microsoft Teams: a Power Automate Workflows webhook ("When a Teams webhook request is received").

The flow URL (credentials) is the secret: its ``sig`` query parameter is the Shared Access signature, and it names
the chat or channel, so ``recipient_id`` is not used. The text goes in an Adaptive Card ``TextBlock``. The flow
answers 202 with no message id, so the Herald message id stands in for one. Errors come from Logic Apps as
``{"error": {"code": ..., "message": ...}}``; 429 and 5xx are retryable, other statuses permanent. A card over
28 KB is refused by Teams only later, inside the flow, so it is refused here before sending.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from herald.core.errors import PermanentDeliveryError
from herald.providers.base import Channel, OutboundMessage
from herald.providers.http import call, json_body, raise_for_status, rebase

MAX_TEXT = 28_000
MAX_PAYLOAD_BYTES = 28 * 1024  # Teams' message size limit


class TeamsWorkflowCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    webhook_url: str = Field(
        repr=False,
        description="the Workflows trigger URL, with its sig=... (Teams: Workflows, 'Post to a channel')",
    )

    @field_validator("webhook_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("webhook_url must be the https URL of the Workflows webhook trigger")
        if not parse_qs(parts.query).get("sig"):
            raise ValueError(
                "webhook_url has no sig=... signature: copy the whole URL, and let 'Anyone' trigger the flow"
            )
        return value


def adaptive_card(text: str) -> dict[str, Any]:
    """The message envelope a Workflows webhook takes: one Adaptive Card holding the text."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{"type": "TextBlock", "text": text, "wrap": True}],
                },
            }
        ],
    }


def check_size(payload: dict[str, Any], provider: str) -> None:
    size = len(json.dumps(payload, separators=(",", ":")).encode())
    if size > MAX_PAYLOAD_BYTES:
        raise PermanentDeliveryError(f"{provider}: message is {size} bytes, over Teams' 28 KB limit")


class TeamsWorkflowChannel(Channel):
    provider = "teams_workflow"
    platforms: ClassVar[frozenset[str]] = frozenset({"teams"})
    credentials_model = TeamsWorkflowCredentials
    max_length = MAX_TEXT

    async def send(self, message: OutboundMessage) -> str:
        creds = TeamsWorkflowCredentials.model_validate(self.config.credentials)
        payload = adaptive_card(message.content)
        check_size(payload, self.provider)
        response = await call(
            self.http, self.provider, "POST", rebase(creds.webhook_url, self.config.base_url), json=payload
        )
        error = json_body(response).get("error")
        reason = None
        if isinstance(error, dict):
            reason = (
                ": ".join(str(part) for part in (error.get("code"), error.get("message")) if part) or None
            )
        raise_for_status(response, self.provider, reason)
        return message.id
