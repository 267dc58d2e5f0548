"""Delivery receipts: provider callbacks that move a sent message to ``delivered``, ``read`` or ``failed``.

Each provider module verifies its own signature over the raw request and parses it into :class:`Receipt`\\ s;
:func:`apply` moves messages forward only (a late ``delivered`` never undoes a ``read``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.status import Status
from herald.storage.audit import audit_row, event_row
from herald.storage.models import AuditEntry, Event, Message
from herald.storage.types import utcnow


@dataclass(frozen=True, slots=True)
class Receipt:
    provider_message_id: str
    status: str  # delivered, read, failed
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """What a receipt parser sees: the raw body, headers (lower-case), the URL the provider called, form data."""

    url: str
    body: bytes
    headers: dict[str, str]
    form: dict[str, str]


Parser = Callable[[dict[str, Any], CallbackRequest], Awaitable[list[Receipt]]]

_FORWARD: dict[str, tuple[str, ...]] = {
    Status.DELIVERED: (Status.SENT,),
    Status.READ: (Status.SENT, Status.DELIVERED),
    Status.FAILED: (Status.SENT, Status.DELIVERED),
}


async def apply(session: AsyncSession, tenant_id: str, channel_id: str, receipts: list[Receipt]) -> int:
    """Move each matching message forward; returns how many changed."""
    changed = 0
    now = utcnow()
    for receipt in receipts:
        allowed = _FORWARD.get(receipt.status)
        if allowed is None:
            continue
        values: dict[str, Any] = {"status": receipt.status, "updated_at": now}
        if receipt.status == Status.FAILED:
            values["last_error"] = receipt.error or "the provider reported the message undelivered"
        elif receipt.status == Status.DELIVERED:  # the first answer's time (herald.storage.responses)
            values["delivered_at"] = func.coalesce(Message.delivered_at, now)
        elif receipt.status == Status.READ:
            values["responded_at"] = func.coalesce(Message.responded_at, now)
        ids = (
            (
                await session.execute(
                    select(Message.id).where(
                        Message.tenant_id == tenant_id,
                        Message.channel_id == channel_id,
                        Message.provider_message_id == receipt.provider_message_id,
                        Message.status.in_(allowed),
                    )
                )
            )
            .scalars()
            .all()
        )
        if not ids:
            continue
        await session.execute(update(Message).where(Message.id.in_(ids)).values(**values))
        if receipt.status == Status.READ:
            # Read is the strongest receipt: whatever an escalation rule waited for, it came in time.
            await session.execute(
                update(Message)
                .where(Message.id.in_(ids), Message.escalation_state == "waiting")
                .values(escalation_state="answered")
            )
        detail = {"provider_message_id": receipt.provider_message_id, "error": receipt.error}
        await session.execute(
            insert(AuditEntry),
            [
                audit_row(tenant_id, "provider", f"message.{receipt.status}", "message", i, detail, at=now)
                for i in ids
            ],
        )
        await session.execute(
            insert(Event), [event_row(tenant_id, f"message.{receipt.status}", i, detail, at=now) for i in ids]
        )
        changed += len(ids)
    return changed
