"""WhatsApp Cloud API (Meta Graph): ``POST /v{N}/{phone_number_id}/messages`` with a Bearer access token.

Text messages go as ``{"messaging_product": "whatsapp", "recipient_type": "individual", "to": ...,
"type": "text", "text": {"body": ...}}``, at most 4,096 characters a message (the pipeline splits longer text and
sends the parts in order; a reply quotes the person's message on the first part). The id is ``messages[0].id``
(a ``wamid.``).

**Template messages.** Outside the 24-hour customer-service window WhatsApp only accepts approved templates. A
message whose content is exactly a JSON object with the single key ``template`` is sent as a template message,
the object passed through as WhatsApp's ``template`` field unchanged, for example::

    {"template": {"name": "hello_world", "language": {"code": "en_US"},
                  "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}]}}

Any other content (including JSON that is not such an object) is sent as text. A template is never split.

Errors are the Graph shape (see :mod:`herald.providers.graph`): 130429 throughput, 131056 pair rate limit, 131000
unknown and 2 service unavailable are retryable (as are HTTP 429 and 5xx); 100 invalid parameter, 131008 missing
parameter, 131026 undeliverable, 131047 outside the 24-hour window (send a template) and 190 expired token are
permanent, as is any other 4xx.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from herald.core.errors import PermanentDeliveryError
from herald.providers.base import Channel, OutboundMessage
from herald.providers.graph import (
    DEFAULT_GRAPH_VERSION,
    GRAPH_ID_PATTERN,
    GRAPH_ORIGIN,
    GRAPH_VERSION_PATTERN,
    raise_graph_error,
)
from herald.providers.http import call, json_body, origin

RETRYABLE_CODES = frozenset({130429, 131056, 131000, 2})
PERMANENT_CODES = frozenset({100, 131008, 131026, 131047, 190})


class WhatsAppCloudCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access_token: str = Field(min_length=10, repr=False, description="system-user or temporary access token")
    phone_number_id: str = Field(min_length=1, max_length=64, pattern=GRAPH_ID_PATTERN)
    app_secret: str | None = Field(default=None, repr=False, description="for inbound X-Hub-Signature-256")
    verify_token: str | None = Field(default=None, repr=False, description="for the inbound hub.* handshake")
    graph_version: str = Field(default=DEFAULT_GRAPH_VERSION, pattern=GRAPH_VERSION_PATTERN)


def template_of(content: str) -> dict[str, Any] | None:
    """The template object when ``content`` is exactly ``{"template": {...}}``, else None (send as text)."""
    text = content.strip()
    if not text.startswith("{"):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if isinstance(parsed, dict) and set(parsed) == {"template"} and isinstance(parsed["template"], dict):
        return parsed["template"]
    return None


class WhatsAppCloudChannel(Channel):
    provider = "whatsapp_cloud"
    platforms: ClassVar[frozenset[str]] = frozenset({"whatsapp"})
    credentials_model = WhatsAppCloudCredentials
    max_length = 4096
    split_long = True
    rate_per_second = 80.0  # about 80 messages per second per business number
    recipient_rate_per_second = 1 / 6  # pair rate limit: about one message per 6 s to one user
    default_origin = GRAPH_ORIGIN

    def parts_of(self, content: str) -> list[str]:
        """A template message is one provider message whatever its length: its JSON must not be cut."""
        return [content] if template_of(content) is not None else super().parts_of(content)

    async def send(self, message: OutboundMessage) -> str:
        creds = WhatsAppCloudCredentials.model_validate(self.config.credentials)
        url = (
            f"{origin(self.config.base_url, self.default_origin)}"
            f"/{creds.graph_version}/{creds.phone_number_id}/messages"
        )
        envelope: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.recipient_id,
        }
        answered = message.reply_to()
        if answered is not None:  # shown as a quoted reply to the person's message
            envelope["context"] = {"message_id": answered}
        template = template_of(message.content)
        if template is not None:
            body = {**envelope, "type": "template", "template": template}
        else:
            body = {**envelope, "type": "text", "text": {"body": message.content}}
        return await self._post(url, creds.access_token, body)

    async def _post(self, url: str, token: str, body: dict[str, Any]) -> str:
        response = await call(
            self.http, self.provider, "POST", url, json=body, headers={"authorization": f"Bearer {token}"}
        )
        if not response.is_success:
            raise_graph_error(response, self.provider, retryable=RETRYABLE_CODES, permanent=PERMANENT_CODES)
        messages = json_body(response).get("messages")
        first = messages[0] if isinstance(messages, list) and messages else None
        if isinstance(first, dict) and first.get("id"):
            return str(first["id"])
        raise PermanentDeliveryError("whatsapp_cloud: malformed answer (no messages[0].id)")
