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

**Buttons.** A message with actions goes out as an interactive message instead of text (the ``context`` of a
reply applies to it too). Up to three actions are reply buttons (``interactive.type == "button"``: ``reply.id``
the action's value, ``reply.title`` its label cut to 20 characters); four to ten are a list message
(``"list"``: one section of rows, ``id`` the value, ``title`` the label cut to 24 characters, the whole label as
the row's description when it was cut), so every option stays pressable rather than only the first three. More
than ten actions, or a value too long for an id (256 characters for a button, 200 for a row), are refused:
WhatsApp has no way to offer them and dropping options silently would change the question. The body of an
interactive message takes 1,024 characters; longer content is cut with an ellipsis (with actions the text is
Herald's own request or question, so the cut loses wording, not a person's words). A template ignores actions
(its buttons are the template's). WhatsApp cannot edit a sent message, so ``can_update`` stays False; a press
comes back as an ``interactive`` ``button_reply`` or ``list_reply`` (see :mod:`.inbound`).

Errors are the Graph shape (see :mod:`herald.providers.graph`): 130429 throughput, 131056 pair rate limit, 131000
unknown and 2 service unavailable are retryable (as are HTTP 429 and 5xx); 100 invalid parameter, 131008 missing
parameter, 131009 parameter value not valid, 131026 undeliverable, 131047 outside the 24-hour window (send a
template) and 190 expired token are permanent, as is any other 4xx.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from herald.core.errors import PermanentDeliveryError
from herald.providers.base import Action, Channel, OutboundMessage
from herald.providers.graph import (
    DEFAULT_GRAPH_VERSION,
    GRAPH_ID_PATTERN,
    GRAPH_ORIGIN,
    GRAPH_VERSION_PATTERN,
    raise_graph_error,
)
from herald.providers.http import call, json_body, origin

RETRYABLE_CODES = frozenset({130429, 131056, 131000, 2})
PERMANENT_CODES = frozenset({100, 131008, 131009, 131026, 131047, 190})
# Meta's limits on interactive messages.
MAX_BODY = 1024
MAX_BUTTONS = 3
MAX_BUTTON_TITLE = 20
MAX_BUTTON_ID = 256
MAX_ROWS = 10
MAX_ROW_TITLE = 24
MAX_ROW_DESCRIPTION = 72
MAX_ROW_ID = 200
LIST_BUTTON = "Choose"  # the list message's button that opens the rows
LIST_SECTION = "Options"


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


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def interactive(content: str, actions: tuple[Action, ...]) -> dict[str, Any]:
    """The ``interactive`` object for ``content`` with ``actions``: reply buttons for up to three, else a list."""
    too_long = MAX_BUTTON_ID if len(actions) <= MAX_BUTTONS else MAX_ROW_ID
    for action in actions:
        if not action.value or len(action.value) > too_long:
            raise PermanentDeliveryError(
                f"whatsapp_cloud: button value of {len(action.value)} characters; ids take 1-{too_long}"
            )
    if len(actions) > MAX_ROWS:
        raise PermanentDeliveryError(
            f"whatsapp_cloud: {len(actions)} actions; a list message offers at most {MAX_ROWS}"
        )
    body = {"text": _cut(content, MAX_BODY)}  # Herald's own request text: cutting it loses no one's words
    if len(actions) <= MAX_BUTTONS:
        buttons = [
            {"type": "reply", "reply": {"id": a.value, "title": _cut(a.label, MAX_BUTTON_TITLE)}}
            for a in actions
        ]
        return {"type": "button", "body": body, "action": {"buttons": buttons}}
    rows = []
    for action in actions:
        row = {"id": action.value, "title": _cut(action.label, MAX_ROW_TITLE)}
        if len(action.label) > MAX_ROW_TITLE:
            row["description"] = _cut(action.label, MAX_ROW_DESCRIPTION)
        rows.append(row)
    section = {"title": LIST_SECTION, "rows": rows}
    return {"type": "list", "body": body, "action": {"button": LIST_BUTTON, "sections": [section]}}


class WhatsAppCloudChannel(Channel):
    provider = "whatsapp_cloud"
    platforms: ClassVar[frozenset[str]] = frozenset({"whatsapp"})
    read_receipts: ClassVar[frozenset[str]] = frozenset({"whatsapp"})
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
        elif message.actions:
            body = {
                **envelope,
                "type": "interactive",
                "interactive": interactive(message.content, message.actions),
            }
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
