"""Digests, the sending half: digest rules (CRUD) and the flush that turns a due batch into one message.

The holding half is :mod:`herald.pipeline.digests`. A flush pass claims due batches (``FOR UPDATE SKIP LOCKED``
on PostgreSQL, so any number of scheduler processes share the work) and, for each, in the claiming
transaction: renders the rule's digest template over the held messages, writes ONE digest message through the
pipeline (:func:`herald.pipeline.accept.prepare` and ``write``: routing, quiet hours, rate limits, retries and
receipts apply as to any message), marks the held messages ``digested`` with ``digest_message_id``, and closes
the batch. It all commits together or not at all: a crash before the commit leaves the batch due and its
messages held (the next pass sends it once), and after the commit nothing is due any more.

Governance: each held message passed its agent's governance before it joined (an INTERN's only once approved),
so the digest is written as the tenant's own message and not governed again (it would otherwise ask a second
approval of what a human approved already); it names its agent when every held message had the same one, and
``governance_metadata`` says which digest, rule and agents it stands for.

A digest that cannot be written (its text is too long for the platform, its channel is gone) releases its held
messages to the outbox one by one, as they would have gone without the rule: nothing is lost.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.background import Loop
from herald.core.errors import RequestError, ValidationFailed
from herald.core.ids import new_id
from herald.core.intent import ContentOrigin, Intent, Priority
from herald.core.platforms import PLATFORMS
from herald.core.principal import Principal
from herald.core.status import Status
from herald.pipeline import accept, digests
from herald.storage import claims
from herald.storage.audit import audit_row, event_row
from herald.storage.bulk import insert_rows, table_of
from herald.storage.models import AuditEntry, Digest, DigestRule, Event, Message
from herald.storage.queries import owned
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 100

EDITABLE = ("name", "agent_id", "platform", "recipient_id", "message_type", "window_seconds", "max_messages",
            "subject", "body", "enabled")  # fmt: skip
REQUIRED = frozenset({"name", "window_seconds", "body", "enabled"})  # null is not a value for these


# --- rules --------------------------------------------------------------------------------------------------


async def create_rule(
    rt: Runtime, session: AsyncSession, principal: Principal, values: dict[str, Any]
) -> DigestRule:
    checked = _checked({"enabled": True, "body": digests.DEFAULT_BODY, **values})
    now = utcnow()
    rule = DigestRule(
        id=new_id("dgr"), tenant_id=principal.tenant_id, created_at=now, updated_at=now, **checked
    )
    session.add(rule)
    await session.flush()
    await _audit(session, principal, "digest_rule.created", rule.id)
    return rule


async def list_rules(
    session: AsyncSession, tenant_id: str, *, limit: int, cursor: str | None
) -> list[DigestRule]:
    query = select(DigestRule).where(DigestRule.tenant_id == tenant_id)
    if cursor is not None:
        query = query.where(DigestRule.id > cursor)
    return list((await session.execute(query.order_by(DigestRule.id).limit(limit))).scalars())


async def get_rule(session: AsyncSession, tenant_id: str, rule_id: str) -> DigestRule:
    return await owned(session, DigestRule, tenant_id, rule_id, "digest rule")


async def update_rule(
    session: AsyncSession, principal: Principal, rule_id: str, changes: dict[str, Any]
) -> DigestRule:
    """Change what is given (null clears a match field; it is a 422 for the others); the whole rule is checked
    again. Batches already open keep their due time and cap; they are rendered with the rule as it is then."""
    rule = await get_rule(session, principal.tenant_id, rule_id)
    current = {name: getattr(rule, name) for name in EDITABLE}
    for name, value in _checked({**current, **changes}).items():
        setattr(rule, name, value)
    rule.updated_at = utcnow()
    await _audit(session, principal, "digest_rule.updated", rule.id, {"fields": sorted(changes)})
    return rule


async def delete_rule(session: AsyncSession, principal: Principal, rule_id: str) -> None:
    """Delete a rule. Its open batches still flush when due (with the default digest template): nothing held
    is dropped."""
    await session.delete(await get_rule(session, principal.tenant_id, rule_id))
    await _audit(session, principal, "digest_rule.deleted", rule_id)


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    """The rule as stored; a 422 naming the field at fault (a null where a value is needed, an unknown
    platform, a template that does not render)."""
    out = {name: values.get(name) for name in EDITABLE}
    for name in sorted(REQUIRED):
        if out[name] is None:
            raise ValidationFailed("must not be null", field=name)
    if out["platform"] is not None and out["platform"] not in PLATFORMS:
        raise ValidationFailed(
            f"unknown platform {out['platform']!r}; one of: {', '.join(sorted(PLATFORMS))}", field="platform"
        )
    digests.check_templates(out["subject"], str(out["body"]), utcnow())
    return out


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    rule_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, action, "digest_rule", rule_id, detail)],
    )


# --- the flush ----------------------------------------------------------------------------------------------


async def flush_due(rt: Runtime, *, now: datetime | None = None, limit: int = BATCH) -> int:
    """One pass: send every due batch (at most ``limit``) as its digest message; returns how many batches it
    closed. ``now`` defaults to the clock (tests pass a later one to reach the end of a window)."""
    at = now or utcnow()
    async with rt.sessions.begin() as session:
        due = (
            select(Digest)
            .where(Digest.status.in_(digests.DUE), Digest.due_at <= at)
            .order_by(Digest.due_at)
            .limit(limit)
        )
        # No lease: each batch is sent in this transaction, and closed before the locks are released.
        batches = await claims.claim(session, due)
        for batch in batches:
            await _flush_one(rt, session, batch, at)
    return len(batches)


async def _flush_one(rt: Runtime, session: AsyncSession, batch: Digest, now: datetime) -> None:
    held = await _held(session, batch)
    if not held:  # every held message was cancelled
        batch.status, batch.closed_at = digests.CLOSED, now
        return
    try:
        prepared = await _prepare_digest(rt, session, batch, held, now)
    except RequestError as exc:
        await _release(rt, session, batch, held, now, exc)
        return
    await accept.write(rt, session, [prepared])
    message_id = str(prepared.values["id"])
    ids = [m.id for m in held]
    await session.execute(
        update(Message)
        .where(Message.id.in_(ids))
        .values(status=Status.DIGESTED, digest_message_id=message_id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    batch.status, batch.closed_at, batch.message_id = digests.SENT, now, message_id
    actor = f"digest:{batch.id}"
    detail = {"digest_id": batch.id, "digest_message_id": message_id}
    await insert_rows(session, table_of(AuditEntry), [
        audit_row(batch.tenant_id, actor, "message.digested", "message", i, detail, at=now) for i in ids
    ])  # fmt: skip
    await insert_rows(session, table_of(Event), [
        event_row(batch.tenant_id, "message.digested", i, detail, at=now) for i in ids
    ])  # fmt: skip


async def _held(session: AsyncSession, batch: Digest) -> list[Message]:
    """The batch's held messages, oldest first, locked on PostgreSQL so a cancel waits for the flush (and then
    finds the message digested) instead of the digest listing a message that was cancelled."""
    query = (
        select(Message)
        .where(Message.digest_id == batch.id, Message.status == Status.HELD)
        .order_by(Message.created_at, Message.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return list((await session.execute(query)).scalars())


async def _prepare_digest(
    rt: Runtime, session: AsyncSession, batch: Digest, held: list[Message], now: datetime
) -> accept.Prepared:
    """The digest message, prepared by the pipeline as the tenant's own (see the module's note on governance)."""
    rule = await session.get(DigestRule, batch.rule_id)
    subject, body = (rule.subject, rule.body) if rule is not None else (None, digests.DEFAULT_BODY)
    subject, text = digests.render(subject, body, [digests.item(m) for m in held], now=now)
    agents = sorted({m.agent_id for m in held if m.agent_id is not None})
    channels = {m.channel_id for m in held}
    contacts = {m.contact_id for m in held}
    intent = Intent(
        agent_id=None, platform=batch.platform, recipient_id=batch.recipient_id, content=text,
        priority=Priority(min(m.priority for m in held)),
        channel_id=channels.pop() if len(channels) == 1 else None,
        contact_id=contacts.pop() if len(contacts) == 1 else None,
        origin=ContentOrigin(path="template"),  # rendered here: held texts are never rendered again
        governance_metadata={"digest_id": batch.id, "digest_rule_id": batch.rule_id, "message_count": len(held),
                             "agents": agents},
    )  # fmt: skip
    principal = Principal(tenant_id=batch.tenant_id, key_id=batch.id, is_admin=False, kind="digest")
    prepared = await accept.prepare(rt, session, principal, intent)
    prepared.values["subject"] = (
        subject  # set after prepare: a held subject's braces are text, not a template
    )
    if len(agents) == 1 and all(m.agent_id is not None for m in held):
        prepared.values["agent_id"] = agents[0]
    prepared.audit["detail"] = {**prepared.audit["detail"], "digest_id": batch.id, "message_count": len(held)}
    return prepared


async def _release(
    rt: Runtime, session: AsyncSession, batch: Digest, held: list[Message], now: datetime, exc: RequestError
) -> None:
    """The digest cannot be written: each held message goes to the outbox on its own, as without the rule."""
    reason = f"{exc.field + ': ' if exc.field else ''}{exc.detail}"
    log.warning("digest %s cannot be sent (%s): its %d messages go one by one", batch.id, reason, len(held))
    ids = [m.id for m in held]
    await session.execute(
        update(Message)
        .where(Message.id.in_(ids))
        .values(status=Status.QUEUED, run_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    batch.status, batch.closed_at = digests.CLOSED, now
    await session.execute(
        insert(AuditEntry),
        [audit_row(batch.tenant_id, f"digest:{batch.id}", "digest.released", "digest", batch.id,
                   {"reason": reason, "message_ids": ids}, at=now)],
    )  # fmt: skip
    await accept.notify_workers(rt, session)


async def flush_pass(rt: Runtime) -> int:
    return await flush_due(rt)


LOOPS = (Loop("digests", "scheduler", run_pass=flush_pass, interval=1.0, batch=BATCH),)
