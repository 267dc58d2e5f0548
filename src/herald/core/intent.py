"""What a producer asks the pipeline for: an :class:`Intent` (who speaks, to whom, what) at a :class:`Priority`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from herald.core.attachments import Attachment


class Priority(IntEnum):
    """Lower sorts first in the outbox."""

    CRITICAL = 0
    HIGH = 1
    MEDIUM = 2
    LOW = 3


@dataclass(frozen=True)
class ContentOrigin:
    """How a message's text was produced (:mod:`herald.pipeline.content`): ``path`` is ``template``,
    ``ai_enhanced``, ``ai_written`` or ``fallback``; the model, its tokens and their cost (USD) are recorded."""

    path: str
    model: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


@dataclass(frozen=True)
class PriorApproval:
    """A human already approved this message as part of a whole (a campaign run an approver passed): the
    pipeline queues it instead of holding it again, and records who approved it and what."""

    approver: str
    reference: str  # what was approved, e.g. "campaign_run:run_..."


@dataclass(frozen=True)
class EscalationRule:
    """Send the message again on the next channel of its route if it is not ``unless`` (``read`` or
    ``delivered``) within ``after_minutes`` of being sent (:mod:`herald.pipeline.escalation`)."""

    after_minutes: int
    unless: str = "read"


@dataclass
class Intent:
    """What a producer wants sent: who speaks, to whom, what.

    ``agent_id`` None is the tenant's own message (OTP codes): no agent speaks, so no maturity tier applies,
    and the principal is the actor in the audit trail. ``sealed`` is the real text when ``content`` is a redacted
    stand-in: it is stored encrypted for the worker and dropped once the message is finished.
    """

    agent_id: str | None
    platform: str | None
    recipient_id: str | None
    content: str
    subject: str | None = None
    scheduled_for: datetime | None = None
    timezone: str = "UTC"
    template_variables: dict[str, Any] = field(default_factory=dict)
    governance_metadata: dict[str, Any] = field(default_factory=dict)
    priority: Priority = Priority.MEDIUM
    channel_id: str | None = None
    contact_id: str | None = None
    fallback: list[tuple[str, str]] = field(default_factory=list)
    sealed: str | None = None
    # Buttons shown with the message where the channel has them: [{"value", "label", "style"}].
    actions: list[dict[str, Any]] | None = None
    # Files sent with an email message; stored sealed with ``sealed`` and dropped once the message is finished.
    attachments: list[Attachment] = field(default_factory=list)
    # Set when the content was composed (and so already rendered): the pipeline stores it and renders no more.
    origin: ContentOrigin | None = None
    # The recipient's IANA zone for quiet hours when no contact says (a campaign row's own zone column).
    recipient_timezone: str | None = None
    # Set by a producer whose whole batch a human approved (an INTERN's campaign run): not held again.
    approval: PriorApproval | None = None
    # The text a fallback platform sends instead of ``content``: platform -> (subject, body), already rendered
    # (a campaign's email template when its SMS step fails). Stored on those route steps; the first step sends
    # ``content``.
    step_texts: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    # Receipt-driven escalation asked for this message (a contact's default applies when None).
    escalation: EscalationRule | None = None
    # Set by the escalation pass: the message this one escalates (it carries no rule of its own: once).
    escalated_from: str | None = None
    # The content and subject are already rendered (an escalated message repeats a sent text): render no more.
    rendered: bool = False
