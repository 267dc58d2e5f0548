"""The channel protocol: a channel is declarations plus one async ``send``.

``send`` delivers exactly one provider message: the pipeline splits long content once, with :meth:`Channel.parts_of`,
and calls the adapter once per part (see :mod:`herald.pipeline.parts`), so an adapter never loops over chunks and a
retry can skip the parts already delivered. ``send`` returns the provider's message id or raises :class:`~herald.core.errors.RetryableDeliveryError` (with the
provider's retry-after when it gave one) or :class:`~herald.core.errors.PermanentDeliveryError`. Retries, leases, rate
limits and bookkeeping live in the worker, not here.
"""

from __future__ import annotations

import email.utils
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationInfo

from herald.core.attachments import Attachment
from herald.core.netguard import OutboundGuard
from herald.core.security import webhook_secret_problem


@dataclass(frozen=True, slots=True)
class Action:
    """A button on a message (an approval request's Approve, a question's option).

    ``value`` comes back verbatim when the button is pressed (as :attr:`InboundMessage.action`), so it stays
    within 64 bytes, Telegram's ``callback_data`` limit; ``style`` is ``primary``, ``danger`` or None.
    A channel without buttons ignores actions: the content then says how to answer in text.
    """

    value: str
    label: str
    style: str | None = None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What a channel needs to deliver one message."""

    id: str
    tenant_id: str
    platform: str
    recipient_id: str
    content: str
    subject: str | None = None
    attempt: int = 1
    # A reply in a conversation: {"reply_to": the provider's id of the message answered, "thread_id", ...}.
    # The pipeline gives it to the first part of a split message only: one quoted reply, then the rest.
    reply_context: Mapping[str, Any] | None = None
    # Which part of a split message ``content`` is (0-based; 0 when the message was not split).
    part: int = 0
    # Buttons to show with the message; the pipeline gives them to the last part of a split message only.
    actions: tuple[Action, ...] = ()
    # Files to send with the message, only ever given to a channel whose ``takes_attachments`` is set.
    attachments: tuple[Attachment, ...] = ()

    def reply_to(self) -> str | None:
        """The provider's own id of the message this answers (inbound ids may be qualified as ``chat:id``)."""
        given = (self.reply_context or {}).get("reply_to")
        return str(given).rsplit(":", 1)[-1] if given else None


class NoCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Validation context for credentials read back from storage: checks that only new input must pass are skipped.
STORED = {"stored": True}
_Secret = TypeVar("_Secret", str, str | None)


def standard_webhook_secret(value: _Secret, info: ValidationInfo) -> _Secret:
    """A credential that is a Standard Webhooks secret must be ``whsec_<base64>`` when given; a stored one is read
    as it is (older rows may hold a raw secret, which :func:`herald.core.security.webhook_secret_key` still signs
    with as before)."""
    if value is None or (info.context or {}).get("stored"):
        return value
    problem = webhook_secret_problem(value)
    if problem:
        raise ValueError(problem)
    return value


@dataclass(frozen=True)
class ChannelConfig:
    """A configured channel as the worker sees it: decrypted credentials, never serialised."""

    id: str | None
    tenant_id: str
    platform: str
    provider: str
    credentials: dict[str, Any] = field(repr=False)
    base_url: str | None = None
    cost_per_message: float = 0.0
    rate_per_second: float | None = None  # overrides of the provider's defaults
    recipient_rate_per_second: float | None = None
    enabled: bool = True  # a disabled interface sends nothing until enabled again


class Channel(ABC):
    """Base class of every provider adapter."""

    provider: ClassVar[str]
    # Platforms this provider can speak for; "*" means any.
    platforms: ClassVar[frozenset[str]]
    credentials_model: ClassVar[type[BaseModel]] = NoCredentials
    # Longest text one provider message takes. Longer content is split into several provider messages by the
    # pipeline when ``split_long`` is set (chat platforms), else refused with a 422 when the message is accepted.
    max_length: ClassVar[int | None] = None
    split_long: ClassVar[bool] = False
    # Whether the adapter sends :attr:`OutboundMessage.attachments` (email providers); a message with attachments
    # is refused when accepted unless every step of its route is on such a channel.
    takes_attachments: ClassVar[bool] = False
    # How many parts of a split message one provider call can carry (LINE's push takes five message objects).
    # Above 1 the adapter overrides ``send_parts``; a call then succeeds or fails for all its parts together.
    parts_per_call: ClassVar[int] = 1
    # Platforms on which the provider reports that a message was read (a receipt with status ``read``): an
    # escalation rule waiting for ``read`` on any other waits for ``delivered`` instead.
    read_receipts: ClassVar[frozenset[str]] = frozenset()
    # Published rate limits (messages per second) per channel and per recipient; None means none known.
    requires_base_url: ClassVar[bool] = False  # self-hosted APIs (signal-cli REST) have no public origin
    rate_per_second: ClassVar[float | None] = None
    recipient_rate_per_second: ClassVar[float | None] = None
    burst: ClassVar[float] = 1.0

    def __init__(
        self, config: ChannelConfig, http: httpx.AsyncClient, *, outbound: OutboundGuard | None = None
    ) -> None:
        self.config = config
        self.http = http
        # ``http`` checks its own requests; adapters that open connections otherwise (SMTP) ask ``outbound``.
        self.outbound = outbound

    def __repr__(self) -> str:
        return f"<{type(self).__name__} provider={self.provider} id={self.config.id}>"

    @classmethod
    def serves(cls, platform: str) -> bool:
        return "*" in cls.platforms or platform in cls.platforms

    @property
    def channel_rate(self) -> float | None:
        return self.config.rate_per_second or self.rate_per_second

    @property
    def recipient_rate(self) -> float | None:
        return self.config.recipient_rate_per_second or self.recipient_rate_per_second

    @abstractmethod
    async def send(self, message: OutboundMessage) -> str:
        """Deliver ``message`` as one provider message; return the provider's message id."""

    # Whether :meth:`update_sent` can change a message already delivered (chat platforms with an edit API).
    can_update: ClassVar[bool] = False

    async def update_sent(self, recipient_id: str, provider_message_id: str, content: str) -> None:
        """Replace a delivered message's text and remove its buttons: a settled approval request then shows who
        decided on every approver's copy. Raises a DeliveryError like ``send``; only where ``can_update``."""
        raise NotImplementedError(f"{self.provider} cannot change a sent message")

    async def acknowledge(self, token: str, text: str) -> None:
        """Answer a button press where the platform waits for an answer (Telegram's ``answerCallbackQuery``);
        ``token`` is the press's :attr:`InboundMessage.reply_token`. Most platforms need nothing."""
        return

    def parts_of(self, content: str) -> list[str]:
        """The texts ``content`` goes out as, in order: split at ``max_length`` when the channel splits long text,
        else the content whole (content too long for a channel that does not split is refused when accepted)."""
        limit = self.max_length
        if not self.split_long or limit is None or len(content) <= limit:
            return [content]
        return split_text(content, limit)

    async def send_parts(self, message: OutboundMessage, texts: Sequence[str]) -> list[str]:
        """Deliver consecutive parts of one message in one provider call; return one provider id per text.

        The pipeline passes at most ``parts_per_call`` texts, with ``message`` addressed as the first of them
        (``content`` is ``texts[0]``, ``part`` its index). The default sends that one part with ``send``; a
        provider that takes several messages per request overrides this.
        """
        if len(texts) != 1:
            raise ValueError(f"{self.provider} sends one part per call, not {len(texts)}")
        return [await self.send(message)]


def split_text(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters, preferring line then word boundaries."""
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= limit // 2:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= limit // 2:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest or not chunks:
        chunks.append(rest)
    return chunks


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
