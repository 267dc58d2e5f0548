"""What a pattern is: the one shape detectors produce and suggestions consume.

Kept apart from the detectors so the suggestion side depends on a small, stable contract rather than on how
each pattern is found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

REPEATED_SEND: Final = "repeated_send"
"""The same agent sent the same content (numbers and dates aside) to the same recipient 3+ times at a regular time.

facts: agent_id, platform, recipient_id, contact_id (or None), content (the latest one), subject (or None),
hour, minute (in ``timezone``), weekdays (sorted ISO weekdays 1-7 it happened on), timezone, cron (a 5-field
expression for that regular time), count."""

BEST_HOUR: Final = "best_hour"
"""A recipient's best hour: when their messages are delivered, read or answered soonest, from receipts and replies.

facts: platform, recipient_id, contact_id (or None), hour (0-23 in ``timezone``), timezone, samples,
median_response_seconds."""

NOISY_MONITOR: Final = "noisy_monitor"
"""A monitor whose alerts fire and resolve repeatedly within short windows.

facts: monitor_id, name, flaps (fire-then-resolve cycles), window_seconds (the span they happened in),
median_firing_seconds (how long an alert stayed firing)."""

FAILING_CHANNEL: Final = "failing_channel"
"""A channel failing often, for one recipient or overall, with no fallback configured.

facts: scope ("recipient" or "overall"), channel_id, platform, recipient_id and contact_id (None when overall),
attempts, failures, failure_rate."""

UNANSWERED_CONVERSATION: Final = "unanswered_conversation"
"""A conversation whose last word is the person's, left without a reply.

facts: conversation_id, platform, user_id, last_inbound_at (ISO 8601), waiting_seconds."""

PROMOTION_CANDIDATE: Final = "promotion_candidate"
"""An agent whose last N reviewed messages were all approved unchanged: a candidate for the next maturity level,
which only a human may grant.

facts: agent_id, level, next_level, approved_unchanged (N)."""

KINDS: Final = (
    REPEATED_SEND,
    BEST_HOUR,
    NOISY_MONITOR,
    FAILING_CHANNEL,
    UNANSWERED_CONVERSATION,
    PROMOTION_CANDIDATE,
)


@dataclass(frozen=True, slots=True)
class Pattern:
    """One thing Herald found in a tenant's history.

    ``key`` is stable across runs for the same finding (kind plus what it is about, never a time), so a dismissed
    suggestion can be recognised when the same pattern is found again. ``evidence`` maps a kind of object
    (``messages``, ``monitors``, ``alerts``, ``channels``, ``conversations``, ``approvals``, ``agents``) to the ids
    it comes from.
    """

    kind: str
    key: str
    summary: str
    confidence: float
    evidence: dict[str, list[str]]
    facts: dict[str, Any] = field(default_factory=dict)
    agent_id: str | None = None
