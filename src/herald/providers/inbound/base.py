"""The channel-independent shapes of inbound conversations, and the small helpers every provider module shares.

Kept free of storage and of FastAPI: a provider module only turns a verified :class:`CallbackRequest` into
:class:`InboundMessage`\\ s (or a handshake :class:`Reply`), so the same code serves the route, tests and benchmarks.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from herald.core import jsonbody
from herald.core.errors import Unauthorized
from herald.providers.receipts import CallbackRequest

Credentials = Mapping[str, Any]


class Attachment(TypedDict):
    """A reference to media the person sent; never the media itself (fetching needs the provider's token)."""

    kind: str  # image, video, audio, document, sticker, location, file
    ref: str  # the provider's media id, or a URL (geo: URI for locations)
    mime_type: NotRequired[str]
    name: NotRequired[str]
    size: NotRequired[int]  # bytes, where the interface tells (an email's attachments)


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message a person sent, normalised across providers.

    ``conversation_key`` is where a reply goes (chat, channel, group or sender id); ``provider_message_id`` is
    unique within the channel (qualified with the chat where the provider's id is only unique per chat), so it
    deduplicates provider retries.
    """

    conversation_key: str
    sender_id: str
    text: str
    provider_message_id: str
    sent_at: datetime
    raw_type: str = "text"
    sender_name: str | None = None
    attachments: tuple[Attachment, ...] = ()
    thread_id: str | None = None
    reply_token: str | None = None
    # A button press (raw_type "action"): the pressed button's Action.value, verbatim.
    action: str | None = None
    # The provider's id of the message this one answers (a quoted or threaded reply, or the message whose
    # button was pressed), qualified like provider_message_id, so an answer finds the question it answers.
    in_reply_to: str | None = None
    # Email (herald.producers.email): the subject, and the thread's earlier Message-IDs (oldest first), which a
    # threaded answer repeats; where an answer goes when ``conversation_key`` is not an address (an email
    # thread's root Message-ID), and on which platform when not this one (a contact form giving only a phone).
    subject: str | None = None
    references: tuple[str, ...] = ()
    reply_address: str | None = None
    reply_platform: str | None = None
    # An agent already chosen for this message (a contact form's routing target): routing rules are skipped.
    agent_id: str | None = None
    # What the agent should know besides the text (an email's attachments list, a form's fields, its intent).
    details: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.sent_at.tzinfo is None:
            raise ValueError("sent_at must be timezone-aware")


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer a provider expects (handshake or acknowledgement), without tying this package to FastAPI."""

    status: int
    body: str
    media_type: str = "text/plain"

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> Reply:
        return cls(status, json.dumps(payload, separators=(",", ":")), "application/json")


Verify = Callable[[Credentials, CallbackRequest], None]
Handshake = Callable[[Credentials, CallbackRequest], Reply | None]
Parse = Callable[[Credentials, CallbackRequest], list[InboundMessage]]


@dataclass(frozen=True, slots=True)
class InboundAdapter:
    """One provider's inbound side.

    - ``verify`` raises :class:`~herald.core.errors.Unauthorized` unless the POST is signed with the channel's secret.
    - ``handshake`` answers a request that is a handshake and not a message (Meta's GET ``hub.challenge``, Slack's
      ``url_verification``, Discord's PING), else returns None. Handshakes that the provider signs are verified
      inside, so it is safe to call before ``verify`` (a GET carries no signature, so GETs go to it directly).
    - ``parse`` turns a verified request into messages, skipping events that are not someone's new message
      (statuses, reads, edits, the bot's own echoes). It does not verify: call :meth:`receive` or ``verify``.
    - ``secret_key`` names the credential without which ``verify`` refuses everything (inbound is off).
    - ``ack`` is the answer the provider wants once messages are taken, when any 2xx is not enough.
    """

    provider: str
    secret_key: str  # the credential that turns inbound on (the signing secret, token or public key)
    verify: Verify
    handshake: Handshake
    parse: Parse
    ack: Reply | None = None
    # The answer for a batch with button presses, when it differs from ``ack`` (Discord: update, not reply).
    action_ack: Reply | None = None

    def ack_for(self, messages: list[InboundMessage]) -> Reply | None:
        """The answer the provider wants for these parsed messages (None: any 2xx will do)."""
        if self.action_ack is not None and messages and all(m.action is not None for m in messages):
            return self.action_ack
        return self.ack

    def receive(self, credentials: Credentials, request: CallbackRequest) -> Reply | list[InboundMessage]:
        """A POST in the safe order: verify, then handshake, then parse."""
        self.verify(credentials, request)
        reply = self.handshake(credentials, request)
        if reply is not None:
            return reply
        return self.parse(credentials, request)


def no_handshake(credentials: Credentials, request: CallbackRequest) -> Reply | None:
    """For providers whose webhooks carry only events."""
    return None


def secret(credentials: Credentials, key: str) -> str:
    """The channel's inbound secret ``key``; a channel without it takes no inbound requests at all."""
    value = credentials.get(key)
    if not isinstance(value, str) or not value:
        raise Unauthorized(f"this channel has no {key} configured; inbound is off")
    return value


def header(request: CallbackRequest, name: str) -> str:
    """A required signature header (``name`` as the provider spells it; headers are stored lower-case)."""
    value = request.headers.get(name.lower(), "")
    if not value:
        raise Unauthorized(f"{name} is missing")
    return value


def same(expected: str, given: str) -> bool:
    """Constant-time string comparison, so a forger learns nothing from response timing."""
    return hmac.compare_digest(expected.encode(), given.encode())


loads = jsonbody.parse


def maybe_json(body: bytes) -> Any:
    """The body as JSON, or None: handshake detection must not fail on bodies that are not JSON."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def dicts(value: Any) -> list[dict[str, Any]]:
    """The dict items of a JSON list (anything else: none), so odd payloads are skipped, not crashed on."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def from_epoch(seconds: Any, scale: float = 1.0) -> datetime:
    """A provider's Unix time (``scale`` 1000 for milliseconds); now when it is missing or malformed, since the
    message itself is still worth keeping."""
    try:
        return datetime.fromtimestamp(float(seconds) / scale, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def kind_of(mime_type: str | None, default: str = "document") -> str:
    """The attachment kind from a MIME type (``image/png`` is an image); other types are ``default``."""
    major = (mime_type or "").split("/", 1)[0]
    return major if major in ("image", "video", "audio") else default


def attachment(kind: str, ref: str, mime_type: str | None = None, name: str | None = None) -> Attachment:
    item = Attachment(kind=kind, ref=ref)
    if mime_type:
        item["mime_type"] = mime_type
    if name:
        item["name"] = name
    return item


def geo(latitude: Any, longitude: Any, name: str | None = None) -> Attachment:
    """A shared location as an RFC 5870 ``geo:`` URI, so it fits the reference-only attachment shape."""
    return attachment("location", f"geo:{latitude},{longitude}", name=name)
