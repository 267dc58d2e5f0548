"""Digests, the holding half: which messages a digest rule keeps back, and the open batch each one joins.

A message that passed governance (it would be ``queued``: an AUTONOMOUS or SUPERVISED agent's at once, an
INTERN's once a human approved it) and that an enabled rule of its tenant matches is stored ``held`` instead,
linked to the one open batch (:class:`~herald.storage.models.Digest`) of its (rule, platform, recipient). The
batch is due ``window_seconds`` after it opened, or at once when ``max_messages`` joined; the flush
(:mod:`herald.producers.digests`) then writes one digest message and marks the held ones ``digested``.

Never held: CRITICAL messages, messages scheduled for later, messages with attachments, buttons or sealed text
(an OTP code), replies in a conversation, questions and approval requests to humans, and digests themselves.

Joining is one ``INSERT … ON CONFLICT DO UPDATE`` on the partial unique index of open batches, so concurrent
senders share one batch and none waits on a flush for longer than the flush's own transaction: the upsert
locks the batch row until the sender commits, and a flush claims with ``SKIP LOCKED``, so a flush never reads
a batch while a message is joining it, and a sender whose batch was just flushed opens a new one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import ValidationFailed
from herald.core.ids import new_id
from herald.core.intent import Priority
from herald.pipeline import templates
from herald.storage.models import Digest, DigestRule

if TYPE_CHECKING:
    from herald.runtime import Runtime

OPEN, FULL, SENT, CLOSED = "open", "full", "sent", "closed"
DUE = (OPEN, FULL)
# governance_metadata keys of messages that are never held: a reply to a person who waits, a question or an
# approval request to a human, and a digest itself.
NEVER_HELD_KEYS = ("conversation_id", "human_request", "digest_id")
DEFAULT_BODY = "{{ count }} updates:\n{% for m in messages %}- {{ m.content }}\n{% endfor %}"
SAMPLE_ITEM: dict[str, Any] = {
    "id": "msg_example", "agent_id": "agent_example", "subject": "Example subject", "content": "Example text",
    "priority": "MEDIUM", "message_type": None, "created_at": "2026-01-01T09:00:00+00:00",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rule:
    """An enabled rule as matching needs it (cached per tenant: read on every accepted message)."""

    id: str
    agent_id: str | None
    platform: str | None
    recipient_id: str | None
    message_type: str | None
    window_seconds: int
    max_messages: int | None

    @property
    def specificity(self) -> int:
        """How many of the four match fields the rule names: the most specific matching rule wins."""
        return sum(
            v is not None for v in (self.agent_id, self.platform, self.recipient_id, self.message_type)
        )

    def matches(self, agent_id: str | None, platform: str, recipient_id: str, message_type: Any) -> bool:
        return (
            (self.agent_id is None or self.agent_id == agent_id)
            and (self.platform is None or self.platform == platform)
            and (self.recipient_id is None or self.recipient_id == recipient_id)
            and (self.message_type is None or self.message_type == message_type)
        )


def forget(rt: Runtime) -> None:
    """Drop this process's cached rules (after a change commits); other processes see it within 5 s."""
    rt.lookups.clear()


async def rules_of(rt: Runtime, session: AsyncSession, tenant_id: str) -> tuple[Rule, ...]:
    """The tenant's enabled rules, most specific first (ties by id): cached, so a tenant without rules costs
    one lookup per message and one query per 5 s."""
    found, cached = rt.lookups.get(("digest_rules", tenant_id))
    if found:
        assert isinstance(cached, tuple)
        return cached
    query = select(DigestRule).where(DigestRule.tenant_id == tenant_id, DigestRule.enabled.is_(True))
    rows = (await session.execute(query)).scalars()
    loaded = tuple(
        Rule(r.id, r.agent_id, r.platform, r.recipient_id, r.message_type, r.window_seconds, r.max_messages)
        for r in rows
    )
    rules: tuple[Rule, ...] = tuple(sorted(loaded, key=lambda r: (-r.specificity, r.id)))
    rt.lookups.put(("digest_rules", tenant_id), rules)
    return rules


def holdable(values: Mapping[str, Any], now: datetime) -> bool:
    """Whether a message (its column values) may wait in a digest at all, whatever the rules say."""
    metadata = values.get("governance_metadata") or {}
    scheduled = values.get("scheduled_for")
    return not (
        values["priority"] == Priority.CRITICAL
        or (scheduled is not None and scheduled > now)
        or values.get("attachments")
        or values.get("actions")
        or values.get("sealed_content") is not None
        or any(key in metadata for key in NEVER_HELD_KEYS)
    )


def choose(rules: Sequence[Rule], values: Mapping[str, Any]) -> Rule | None:
    """The first (most specific) rule matching the message, or None."""
    message_type = (values.get("governance_metadata") or {}).get("message_type")
    for rule in rules:
        if rule.matches(values.get("agent_id"), values["platform"], values["recipient_id"], message_type):
            return rule
    return None


async def match(
    rt: Runtime, session: AsyncSession, tenant_id: str, values: Mapping[str, Any], now: datetime
) -> Rule | None:
    """The rule that holds this message, or None when it goes to the outbox as usual."""
    if not holdable(values, now):
        return None
    rules = await rules_of(rt, session, tenant_id)
    return choose(rules, values) if rules else None


async def join(
    session: AsyncSession, tenant_id: str, rule: Rule, platform: str, recipient_id: str, now: datetime
) -> str:
    """Add one message to the open batch of (rule, platform, recipient), opening it if none is; returns the
    batch's id. The message that fills the batch makes it ``full`` and due now: the next batch opens anew."""
    alone_full = rule.max_messages is not None and rule.max_messages <= 1
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(Digest) if dialect == "postgresql" else sqlite.insert(Digest)
    statement = insert.values(
        id=new_id("dig"), tenant_id=tenant_id, rule_id=rule.id, platform=platform, recipient_id=recipient_id,
        status=FULL if alone_full else OPEN, count=1, max_messages=rule.max_messages, opened_at=now,
        due_at=now if alone_full else now + timedelta(seconds=rule.window_seconds),
    )  # fmt: skip
    reached = and_(Digest.max_messages.is_not(None), Digest.count + 1 >= Digest.max_messages)
    upsert = statement.on_conflict_do_update(
        index_elements=[Digest.rule_id, Digest.platform, Digest.recipient_id],
        # Spelled as the index's own predicate, a literal: a bound parameter here makes PostgreSQL's generic plan
        # (a connection's sixth execution of the prepared statement) unable to match the partial index.
        index_where=text(f"status = '{OPEN}'"),
        set_={
            "count": Digest.count + 1,
            "status": case((reached, FULL), else_=OPEN),
            "due_at": case((reached, now), else_=Digest.due_at),
        },
    ).returning(Digest.id)
    return str((await session.execute(upsert)).scalar_one())


def item(message: Any) -> dict[str, Any]:
    """One held message as a digest template sees it (an element of ``messages``)."""
    metadata = message.governance_metadata or {}
    return {
        "id": message.id,
        "agent_id": message.agent_id,
        "subject": message.subject,
        "content": message.content,
        "priority": Priority(message.priority).name,
        "message_type": metadata.get("message_type"),
        "created_at": message.created_at.isoformat(),
    }


def render(
    subject: str | None, body: str, items: list[dict[str, Any]], *, now: datetime
) -> tuple[str | None, str]:
    """The digest's subject and text: ``subject`` and ``body`` rendered in the message sandbox with ``messages``
    (the held messages, oldest first, as :func:`item` gives them) and ``count``, plus the built-ins (UTC)."""
    variables = {"messages": items, "count": len(items)}
    text = templates.render(body, variables, now=now, timezone="UTC", field="body")
    if subject is None:
        return None, text
    return templates.render(subject, variables, now=now, timezone="UTC", field="subject"), text


def check_templates(subject: str | None, body: str, now: datetime) -> None:
    """A 422 naming ``subject`` or ``body`` if either does not parse, reads a variable that is not there, or
    fails on a sample digest: a rule that cannot render is refused when it is written, not at flush time."""
    rendered = render(subject, body, [SAMPLE_ITEM], now=now)
    if not rendered[1].strip():
        raise ValidationFailed("the digest body renders to nothing", field="body")
