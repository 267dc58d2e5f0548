"""Facebook Messenger Send API (Meta Graph): ``POST /v{N}/{page_id}/messages`` with a Bearer page access token.

Body: ``{"recipient": {"id": <PSID>}, "messaging_type": "UPDATE", "message": {"text": ...}}``; the answer is
``{"recipient_id", "message_id"}`` and the id is ``message_id``. One call sends one message of at most 2,000
characters (the pipeline splits longer text and sends the parts in order).

Errors are the Graph shape (see :mod:`herald.providers.graph`): 2 (retry later) and the rate limits 4, 32 and 613
are retryable, as are HTTP 429 and 5xx; 190 (invalid token) and 551 (person not available) are permanent, as is
any other 4xx.
"""

from __future__ import annotations

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

RETRYABLE_CODES = frozenset({2, 4, 32, 613})
PERMANENT_CODES = frozenset({190, 551})


class MessengerCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    page_access_token: str = Field(
        min_length=10, repr=False, description="page access token (pages_messaging)"
    )
    page_id: str = Field(min_length=1, max_length=64, pattern=GRAPH_ID_PATTERN)
    app_secret: str | None = Field(default=None, repr=False, description="for inbound X-Hub-Signature-256")
    verify_token: str | None = Field(default=None, repr=False, description="for the inbound hub.* handshake")
    graph_version: str = Field(default=DEFAULT_GRAPH_VERSION, pattern=GRAPH_VERSION_PATTERN)


class MessengerChannel(Channel):
    provider = "messenger"
    platforms: ClassVar[frozenset[str]] = frozenset({"messenger"})
    credentials_model = MessengerCredentials
    max_length = 2000
    split_long = True
    rate_per_second = 300.0  # about 300 text calls per second per page
    default_origin = GRAPH_ORIGIN

    async def send(self, message: OutboundMessage) -> str:
        creds = MessengerCredentials.model_validate(self.config.credentials)
        url = f"{origin(self.config.base_url, self.default_origin)}/{creds.graph_version}/{creds.page_id}/messages"
        body = {
            "recipient": {"id": message.recipient_id},
            "messaging_type": "UPDATE",
            "message": {"text": message.content},
        }
        return await self._post(url, creds.page_access_token, body)

    async def _post(self, url: str, token: str, body: dict[str, Any]) -> str:
        response = await call(
            self.http, self.provider, "POST", url, json=body, headers={"authorization": f"Bearer {token}"}
        )
        if not response.is_success:
            raise_graph_error(response, self.provider, retryable=RETRYABLE_CODES, permanent=PERMANENT_CODES)
        message_id = json_body(response).get("message_id")
        if message_id:
            return str(message_id)
        raise PermanentDeliveryError("messenger: malformed answer (no message_id)")
