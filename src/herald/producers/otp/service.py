"""OTP verifications as Twilio Verify models them: send a code, check it, cancel; limits per recipient.

A verification is ``pending`` until a check approves it (``approved``), it runs out of checks
(``max_attempts_reached``), its time passes (``expired``) or it is cancelled (``canceled``). Each of those
ends it, so a code works once, and only for the verification it was made for (see :mod:`herald.producers.otp.codes`).

Limits are counted per recipient (its HMAC key) over sliding windows, so they lapse by themselves: whoever
sends or guesses for someone else's number can hold that person up for one window after stopping, never for
good. A send inside the validity of a pending verification re-sends the same code (derived again, not stored)
rather than making a second valid one. Sends and checks for one recipient are serialised (an advisory lock on
PostgreSQL, the single writer on SQLite), so two concurrent requests cannot both pass a limit.

Codes go through the message pipeline as the tenant's own messages (no agent, so never held for approval), or,
when an agent asks, under that agent's maturity level like any message it writes; at CRITICAL priority (first in the outbox, no quiet hours), along SMS, voice, WhatsApp, email (or the tenant's
OTP route) over the addresses the recipient has and the platforms a channel serves. The stored message shows
the code masked; the real text travels sealed to the worker, which drops it once the message is finished.
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from herald.core.ids import new_id
from herald.core.intent import Intent, Priority
from herald.core.platforms import recipient_problem
from herald.core.principal import Principal
from herald.core.status import CANCELLABLE, Status
from herald.pipeline import accept as messages
from herald.pipeline.routing import planner
from herald.producers.otp import texts
from herald.producers.otp.codes import codebook, mask
from herald.producers.otp.policy import OtpPolicy, load_policy
from herald.storage import claims
from herald.storage.audit import audit_row, event_row, keep_record
from herald.storage.models import AuditEntry, Contact, Event, Message, OtpSend, OtpVerification, Tenant
from herald.storage.queries import owned
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

PENDING = "pending"
APPROVED = "approved"
CANCELED = "canceled"  # Twilio Verify's spelling
EXPIRED = "expired"
MAX_ATTEMPTS_REACHED = "max_attempts_reached"
FINISHED = frozenset({APPROVED, CANCELED, EXPIRED, MAX_ATTEMPTS_REACHED})

NO_PENDING = (
    "no pending verification for this recipient: send a code first (it may have expired or been used)"
)
_PHONE_PUNCTUATION = re.compile(r"[\s().\-]")
_LOCK_NAMESPACE = 0x07_7B  # first key of pg_advisory_xact_lock(int, int): OTP recipients


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who gets the code, normalised: ``kind`` phone, email or contact."""

    kind: str
    value: str

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.value}"


def recipient_from(
    phone: str | None, email: str | None, contact_id: str | None, recipient: str | None = None
) -> Recipient:
    """Exactly one of the four, normalised (E.164 phone, lower-case email); else a 422 naming the field.

    ``recipient`` is the SDK's one field: an address with ``@`` is an email, ``con_...`` a contact id,
    anything else a phone number."""
    named = (("phone", phone), ("email", email), ("contact_id", contact_id), ("recipient", recipient))
    given = [(f, v) for f, v in named if v is not None]
    if len(given) != 1:
        field = given[1][0] if given else "recipient"
        raise ValidationFailed("give exactly one of recipient, phone, email or contact_id", field=field)
    field, raw = given[0]
    kind = field
    if field == "recipient":
        kind = "email" if "@" in raw else "contact_id" if raw.startswith("con_") else "phone"
    if kind == "phone":
        value = _PHONE_PUNCTUATION.sub("", raw)
        value = "+" + value[2:] if value.startswith("00") else value
        problem = recipient_problem("sms", value)
        if problem:
            raise ValidationFailed(problem, field=field)
        return Recipient("phone", value)
    if kind == "email":
        value = raw.strip().lower()
        problem = recipient_problem("email", value)
        if problem:
            raise ValidationFailed(problem, field=field)
        return Recipient("email", value)
    return Recipient("contact", raw.strip())


@dataclass(frozen=True, slots=True)
class SendOrder:
    """What ``POST /api/v1/otp/send`` asks for."""

    recipient: Recipient
    channel: str | None = None
    priority: str | None = None
    code_length: int | None = None
    locale: str | None = None
    template: str | None = None
    agent_id: str | None = None  # an agent asking: governed by its tier; None is the tenant's own code


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A check's answer; ``verification`` None means no pending verification (a 404 to the caller)."""

    verification: OtpVerification | None
    valid: bool


async def tenant_policy(rt: Runtime, session: AsyncSession, tenant_id: str) -> OtpPolicy:
    found, policy = rt.lookups.get(("otp_policy", tenant_id))
    if not found:
        tenant = await session.get(Tenant, tenant_id)
        policy = load_policy(tenant.otp_policy if tenant else None)
        rt.lookups.put(("otp_policy", tenant_id), policy)
    assert isinstance(policy, OtpPolicy)
    return policy


async def stored_policy(session: AsyncSession, tenant_id: str) -> OtpPolicy:
    """The tenant's OTP policy as stored now (Herald's defaults for what it leaves out), read past the cache."""
    tenant = await session.get(Tenant, tenant_id)
    return load_policy(tenant.otp_policy if tenant else None)


async def set_policy(session: AsyncSession, tenant_id: str, policy: OtpPolicy) -> None:
    """Replace the tenant's OTP policy (the fields it sets) in the caller's transaction; clear ``rt.lookups``
    after the commit, so :func:`tenant_policy` reads it again."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such tenant")
    tenant.otp_policy = policy.model_dump(mode="json", exclude_unset=True)


def shown_status(verification: OtpVerification, now: datetime) -> str:
    """The status as of ``now``: a pending verification past its time is expired before anyone notices."""
    if verification.status == PENDING and verification.expires_at <= now:
        return EXPIRED
    return verification.status


async def send(rt: Runtime, session: AsyncSession, principal: Principal, order: SendOrder) -> OtpVerification:
    """Send a code (or the pending verification's code again) to the recipient; 429 past the send limit."""
    tenant_id = principal.tenant_id
    now = utcnow()
    policy = await tenant_policy(rt, session, tenant_id)
    template = order.template if order.template is not None else policy.template
    if template is not None:
        texts.check_template(template, now, field="template")
    book = codebook(rt.settings.secret_key)
    addresses, contact_id = await _addresses(session, tenant_id, order.recipient)
    key = book.recipient(tenant_id, _destination(order.recipient, addresses))
    route = await _route(rt, session, tenant_id, policy, addresses, order)

    await _serialise(rt, session, key)
    await _check_send_limit(session, principal, key, policy, now)
    verification = await _latest_pending(rt, session, principal, key, now)
    resend = verification is not None
    if verification is None:
        verification_id = new_id("otp")
        length = order.code_length or policy.code_length
        code_hash = book.digest(verification_id, book.code(tenant_id, verification_id, length))
        verification = OtpVerification(
            id=verification_id, tenant_id=tenant_id, recipient_key=key, code_hash=code_hash,
            code_length=length, status=PENDING, checks=0, sends=0, message_ids=[], locale=order.locale,
            expires_at=now + timedelta(seconds=policy.ttl_seconds), created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(verification)

    source = texts.source(template, order.locale)
    length = verification.code_length
    sealed = texts.render(source, book.code(tenant_id, verification.id, length), policy.ttl_seconds)
    intent = Intent(
        agent_id=order.agent_id, platform=route[0][0], recipient_id=route[0][1], fallback=route[1:],
        contact_id=contact_id, content=texts.render(source, mask(length), policy.ttl_seconds), sealed=sealed,
        subject=texts.subject(order.locale), priority=Priority.CRITICAL,
    )  # fmt: skip
    prepared = await messages.prepare(rt, session, principal, intent)
    await messages.write(rt, session, [prepared])
    message_id = str(prepared.values["id"])

    verification.sends += 1
    verification.message_ids = [*verification.message_ids, message_id]
    verification.channel = str(prepared.values["platform"])
    verification.locale = order.locale if order.locale is not None else verification.locale
    verification.updated_at = now
    session.add(OtpSend(id=new_id("ots"), tenant_id=tenant_id, recipient_key=key,
                        verification_id=verification.id, sent_at=now))  # fmt: skip
    await session.flush()
    detail = {"channel": verification.channel, "message_id": message_id, "sends": verification.sends,
              "resend": resend}  # fmt: skip
    await _record(session, principal, verification, "otp.sent", detail, now)
    return verification


async def check(
    rt: Runtime, session: AsyncSession, principal: Principal, recipient: Recipient, code: str
) -> CheckResult:
    """Check a code against the recipient's pending verification; the last allowed wrong one ends it."""
    book = codebook(rt.settings.secret_key)
    destination = recipient.name
    if recipient.kind == "contact":
        # An unknown contact has nothing pending, like any unknown recipient.
        with contextlib.suppress(ValidationFailed):
            destination = _destination(
                recipient, (await _addresses(session, principal.tenant_id, recipient))[0]
            )
    key = book.recipient(principal.tenant_id, destination)
    now = utcnow()
    await _serialise(rt, session, key)
    verification = await _latest_pending(rt, session, principal, key, now)
    if verification is None:
        return CheckResult(None, valid=False)
    policy = await tenant_policy(rt, session, principal.tenant_id)
    if verification.checks >= policy.max_checks:  # the tenant lowered the limit since the last check
        await _finish(session, principal, verification, MAX_ATTEMPTS_REACHED, now)
        return CheckResult(verification, valid=False)
    verification.checks += 1
    verification.updated_at = now
    valid = book.matches(verification.id, code, verification.code_hash)
    await session.execute(insert(AuditEntry), [audit_row(
        principal.tenant_id, principal.actor, "otp.checked", "otp_verification", verification.id,
        {"valid": valid, "checks": verification.checks}, at=now,
    )])  # fmt: skip
    if valid:
        await _finish(session, principal, verification, APPROVED, now)
    elif verification.checks >= policy.max_checks:
        await _finish(session, principal, verification, MAX_ATTEMPTS_REACHED, now)
    return CheckResult(verification, valid=valid)


async def get(session: AsyncSession, tenant_id: str, verification_id: str) -> OtpVerification:
    return await owned(session, OtpVerification, tenant_id, verification_id, "verification")


async def cancel(
    rt: Runtime, session: AsyncSession, principal: Principal, verification_id: str
) -> OtpVerification:
    verification = await get(session, principal.tenant_id, verification_id)
    await _serialise(rt, session, verification.recipient_key)
    await session.refresh(verification, with_for_update=rt.dialect == "postgresql")
    now = utcnow()
    status = shown_status(verification, now)
    if status != PENDING:
        raise Conflict(f"verification {verification_id} is {status}; only a pending one can be cancelled")
    await _finish(session, principal, verification, CANCELED, now)
    return verification


async def expire_overdue(session: AsyncSession, now: datetime, limit: int = 1000) -> int:
    """Mark pending verifications past their time expired (the retention job calls this); return how many.
    Claimed without a lease: they are finished in the caller's transaction."""
    query = (
        select(OtpVerification)
        .where(OtpVerification.status == PENDING, OtpVerification.expires_at <= now)
        .order_by(OtpVerification.expires_at)
        .limit(limit)
    )
    overdue = await claims.claim(session, query)
    for verification in overdue:
        system = Principal(tenant_id=verification.tenant_id, key_id="retention", is_admin=True, kind="system")
        await _finish(session, system, verification, EXPIRED, now)
    return len(overdue)


# -- helpers ------------------------------------------------------------------------------------------------


def _destination(recipient: Recipient, addresses: dict[str, str]) -> str:
    """What limits and the pending verification are counted on: the phone or email a code goes to, so a
    contact and its own phone number share one verification and one send limit."""
    if recipient.kind != "contact":
        return recipient.name
    phone = next((addresses[p] for p in ("sms", "voice", "whatsapp") if addresses.get(p)), None)
    if phone is not None:
        return f"phone:{_PHONE_PUNCTUATION.sub('', phone)}"
    if addresses.get("email"):
        return f"email:{addresses['email'].strip().lower()}"
    return recipient.name


async def _addresses(
    session: AsyncSession, tenant_id: str, recipient: Recipient
) -> tuple[dict[str, str], str | None]:
    """Platform -> address for the recipient, and the contact id when it is a contact."""
    if recipient.kind == "phone":
        return {"sms": recipient.value, "voice": recipient.value, "whatsapp": recipient.value}, None
    if recipient.kind == "email":
        return {"email": recipient.value}, None
    contact = (
        await session.execute(
            select(Contact).where(Contact.id == recipient.value, Contact.tenant_id == tenant_id)
        )
    ).scalar_one_or_none()
    if contact is None:
        raise ValidationFailed(f"no contact {recipient.value!r}", field="contact_id")
    found = {
        platform: str(address)
        for platform, address in contact.addresses.items()
        if address and platform not in contact.opt_outs
    }
    return found, contact.id


async def _route(
    rt: Runtime,
    session: AsyncSession,
    tenant_id: str,
    policy: OtpPolicy,
    addresses: dict[str, str],
    order: SendOrder,
) -> list[tuple[str, str]]:
    """(platform, address) in the order to try: the asked channel first, then the OTP route (or the tenant's
    route for the asked priority), keeping platforms the recipient has and a channel serves."""
    if order.priority is not None:
        wanted = list((await planner.tenant_policy(rt, session, tenant_id)).priority_routes[order.priority])
    else:
        wanted = list(policy.route)
    if order.channel is not None:
        if order.channel not in addresses:
            raise ValidationFailed(f"this recipient has no {order.channel} address", field="channel")
        await planner.resolve_channel(rt, session, tenant_id, order.channel, None, field="channel")
        wanted = [order.channel, *(p for p in wanted if p != order.channel)]
    route = []
    for platform in wanted:
        if platform not in addresses:
            continue
        try:
            await planner.resolve_channel(rt, session, tenant_id, platform, None, field="channel")
        except ValidationFailed:
            continue  # no channel serves it here: try the next
        route.append((platform, addresses[platform]))
    if not route:
        raise ValidationFailed(
            f"no configured channel reaches this recipient (tried {', '.join(wanted)}): "
            "create one with POST /api/v1/channels",
            field="channel",
        )
    return route


async def _serialise(rt: Runtime, session: AsyncSession, recipient_key: str) -> None:
    """Hold one recipient's sends and checks to one transaction at a time (SQLite has one writer anyway)."""
    if rt.dialect == "postgresql":
        slot = int.from_bytes(bytes.fromhex(recipient_key[:8]), "big", signed=True)
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :slot)"),
            {"namespace": _LOCK_NAMESPACE, "slot": slot},
        )


async def _check_send_limit(
    session: AsyncSession, principal: Principal, key: str, policy: OtpPolicy, now: datetime
) -> None:
    window = timedelta(seconds=policy.send_window_seconds)
    recent = list(
        (
            await session.execute(
                select(OtpSend.sent_at)
                .where(
                    OtpSend.tenant_id == principal.tenant_id,
                    OtpSend.recipient_key == key,
                    OtpSend.sent_at > now - window,
                )
                .order_by(OtpSend.sent_at.desc())
                .limit(policy.max_sends)
            )
        ).scalars()
    )
    if len(recent) < policy.max_sends:
        return
    wait = max((recent[-1] + window - now).total_seconds(), 1.0)  # when the oldest of these leaves the window
    minutes = math.ceil(policy.send_window_seconds / 60)
    detail = {"sends": len(recent), "window_seconds": policy.send_window_seconds}
    refused = audit_row(
        principal.tenant_id, principal.actor, "otp.send_refused", "otp_recipient", key[:16], detail, at=now
    )
    keep_record(session, [refused])
    raise TooManyRequests(
        f"at most {policy.max_sends} codes to one recipient in {minutes} minutes; "
        f"try again in {math.ceil(wait)} seconds",
        retry_after=wait,
    )


async def _latest_pending(
    rt: Runtime, session: AsyncSession, principal: Principal, key: str, now: datetime
) -> OtpVerification | None:
    """The recipient's pending verification, or None; one found past its time is marked expired on the way."""
    query = (
        select(OtpVerification)
        .where(
            OtpVerification.tenant_id == principal.tenant_id,
            OtpVerification.recipient_key == key,
            OtpVerification.status == PENDING,
        )
        .order_by(OtpVerification.created_at.desc(), OtpVerification.id.desc())
    )
    if rt.dialect == "postgresql":
        query = query.with_for_update()
    latest = None
    for verification in (await session.execute(query)).scalars():
        if latest is None and verification.expires_at > now:
            latest = verification
        else:  # past its time, or an older one left pending: neither may be used again
            await _finish(session, principal, verification, EXPIRED, now)
    return latest


async def _finish(
    session: AsyncSession, principal: Principal, verification: OtpVerification, status: str, now: datetime
) -> None:
    """End a verification; its messages still waiting are cancelled, as a finished code is of no use."""
    verification.status = status
    verification.updated_at = now
    stale: list[str] = []
    if verification.message_ids:
        stale = list(
            (
                await session.execute(
                    update(Message)
                    .where(
                        Message.id.in_(verification.message_ids),
                        Message.tenant_id == verification.tenant_id,
                        Message.status.in_(CANCELLABLE),
                    )
                    .values(status=Status.CANCELLED, sealed_content=None, updated_at=now)
                    .returning(Message.id)
                    .execution_options(synchronize_session=False)
                )
            ).scalars()
        )
    for message_id in stale:
        detail = {"reason": f"verification {status}"}
        await session.execute(insert(AuditEntry), [audit_row(
            principal.tenant_id, principal.actor, "message.cancelled", "message", message_id, detail, at=now
        )])  # fmt: skip
        await session.execute(
            insert(Event), [event_row(principal.tenant_id, "message.cancelled", message_id, detail, at=now)]
        )
    await _record(session, principal, verification, f"otp.{status}", {"checks": verification.checks}, now)


async def _record(
    session: AsyncSession,
    principal: Principal,
    verification: OtpVerification,
    action: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """An audit entry and an event; neither ever carries the code or the recipient."""
    await session.execute(insert(AuditEntry), [audit_row(
        principal.tenant_id, principal.actor, action, "otp_verification", verification.id, detail, at=now
    )])  # fmt: skip
    await session.execute(
        insert(Event), [event_row(principal.tenant_id, action, verification.id, detail, at=now)]
    )
