"""Taking one received email into Herald: the mailbox follower (:mod:`herald.producers.email.imap`) hands each
new message's raw bytes to :func:`receive`.

- **Suppressed.** Auto-replies and bounces (see :mod:`.parse`) are audited and dropped: never routed, never
  answered, so Herald and another auto-responder cannot answer each other for ever.
- **Once.** The Message-ID is the inbound message's provider id on its interface, so the same email read twice
  (a restart, a second follower, a copy in two folders) is stored once.
- **Threads are conversations.** A conversation's key on an email interface is its thread's root Message-ID.
  A reply whose ``In-Reply-To`` or ``References`` names an email Herald sent joins that message's conversation
  (a proactive email, which had none, starts one keyed by its own id and is attached to it, so the agent sees
  what was sent). Otherwise a reply to an email already stored joins that email's conversation; a new email
  starts its own. Answers go to the sender (or its ``Reply-To``), threaded.
- **Contacts.** The sender's address finds the tenant's contact, whose session spans every platform, as for any
  interface (:func:`herald.producers.conversations.service.store`).
- **Contact forms.** A website's notification matching a form rule (:mod:`.forms`) is read for its fields and
  intent (:mod:`.intents`): the person is whoever the fields name, the auto-response for the intent goes through
  the pipeline under the form's agent (to their email, else by SMS to their phone), and the conversation goes to
  the intent's routing target.

The agent reads the new text only (quotes and signature cut); the subject, the attachments' list and a form's
fields and intent travel as the inbound message's ``details``.

The auto-response is written after the email is stored, at most once: a process that dies between the two
leaves the email stored and answered by no auto-response (the follower's retry finds it stored), never two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, insert, or_, select, update

from herald.core import logs
from herald.core.errors import RequestError
from herald.core.intent import ContentOrigin, Intent, Priority
from herald.core.principal import Principal
from herald.pipeline import accept as pipeline
from herald.pipeline import templates
from herald.pipeline.library.resolve import render_resolved
from herald.producers.conversations import service
from herald.producers.email import forms, intents
from herald.producers.email.parse import EmailAttachment, ParsedEmail, parse
from herald.providers import mailthread
from herald.providers.inbound import InboundMessage
from herald.providers.inbound.base import Attachment, attachment, kind_of
from herald.storage.audit import audit_row
from herald.storage.models import AuditEntry, Channel, Conversation, EmailForm, Message
from herald.storage.models import InboundMessage as InboundRow
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from herald.runtime import Runtime

ACTOR = "interface:email"
MAX_ID = 500  # the provider id column's size


@dataclass
class _Thread:
    """Where an email belongs: the conversation key, and the Herald-sent message to attach to a new one."""

    key: str
    adopt: Message | None = None


@dataclass
class _Form:
    """A contact-form notification as read: the rule, the fields, the intent and its configuration."""

    form: EmailForm
    fields: dict[str, str]
    classification: intents.Classification

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.form.intents.get(self.classification.intent) or {})


async def receive(rt: Runtime, channel: Channel, raw: bytes, *, source: str) -> str | None:
    """Store one email read from ``channel``'s mailbox (``source`` says where, for the audit trail); return the
    inbound message's id, or None when it is suppressed or already stored. Raises only for a transient failure
    (the database), when the caller should try the same email again later."""
    email = parse(raw)
    message_id = email.message_id[:MAX_ID]
    if email.suppressed:
        await _suppressed(rt, channel, email, source)
        return None
    async with rt.sessions() as session:
        if await _stored(session, channel, message_id) is not None:
            return None
        thread = await _thread(session, channel, email)
        matched = next((f for f in await forms.forms_for(session, channel) if forms.matches(f, email)), None)
    form = await _read_form(rt, channel, matched, email) if matched is not None else None
    fresh = await service.store(rt, channel, [_inbound(email, message_id, thread, form)])
    async with rt.sessions.begin() as session:
        row = await _stored(session, channel, message_id)
        if row is None or not fresh:
            return None  # another process stored it first: its receive did the rest
        if thread.adopt is not None:
            await _adopt(session, thread.adopt, row.conversation_id)
        if form is not None:
            await _answer_form(rt, session, channel, email, row, form, source)
    return row.id


async def _suppressed(rt: Runtime, channel: Channel, email: ParsedEmail, source: str) -> None:
    detail = {"message_id": email.message_id[:MAX_ID], "sender": email.sender, "reason": email.automated,
              "subject": email.subject[:200], "source": source}  # fmt: skip
    async with rt.sessions.begin() as session:
        await session.execute(
            insert(AuditEntry),
            [audit_row(channel.tenant_id, ACTOR, "email.suppressed", "channel", channel.id, detail)],
        )
    logs.get_logger(__name__).info("email suppressed", channel=channel.id, reason=email.automated)


async def _stored(session: AsyncSession, channel: Channel, message_id: str) -> InboundRow | None:
    query = select(InboundRow).where(
        InboundRow.channel_id == channel.id, InboundRow.provider_message_id == message_id
    )
    return (await session.execute(query.limit(1))).scalar_one_or_none()


# -- threads ------------------------------------------------------------------------------------------------------


async def _thread(session: AsyncSession, channel: Channel, email: ParsedEmail) -> _Thread:
    """The conversation key for ``email`` (see the module): Herald's sent message, an earlier email, or new."""
    named = [m[:MAX_ID] for m in email.thread]
    if not named:
        return _Thread(email.message_id[:MAX_ID])
    sent, named_as = await _sent_message(session, channel, named)
    if sent is not None:
        if sent.conversation_id is not None:
            conversation = await session.get(Conversation, sent.conversation_id)
            if conversation is not None and conversation.channel_id == channel.id:
                return _Thread(conversation.external_id)
        return _Thread(named_as, adopt=sent if sent.conversation_id is None else None)
    earlier = (
        await session.execute(
            select(Conversation.external_id)
            .join(InboundRow, InboundRow.conversation_id == Conversation.id)
            .where(InboundRow.channel_id == channel.id, InboundRow.provider_message_id.in_(named))
            .limit(1)
        )
    ).scalar_one_or_none()
    if earlier is not None:
        return _Thread(earlier)
    keyed = (
        await session.execute(
            select(Conversation.external_id)
            .where(Conversation.channel_id == channel.id, Conversation.external_id.in_(named))
            .limit(1)
        )
    ).scalar_one_or_none()
    return _Thread(keyed or (email.references[0][:MAX_ID] if email.references else email.message_id[:MAX_ID]))


async def _sent_message(
    session: AsyncSession, channel: Channel, named: list[str]
) -> tuple[Message | None, str]:
    """The email Herald sent that ``named`` (nearest first) mentions, and the Message-ID it was named by. Found by
    the provider's id (SMTP's is the Message-ID) or by Herald's id inside the Message-ID (what SendGrid and
    Resend send, whatever id their APIs answer)."""
    ours = {h: m for m in named if (h := mailthread.herald_message_id(m)) is not None}
    email_channels = select(Channel.id).where(
        Channel.tenant_id == channel.tenant_id, Channel.platform == "email"
    )
    condition: ColumnElement[bool] = Message.channel_id.in_(email_channels) & Message.provider_message_id.in_(
        named
    )
    if ours:
        condition = or_(condition, Message.id.in_(list(ours)))
    found = list(
        (
            await session.execute(select(Message).where(Message.tenant_id == channel.tenant_id, condition))
        ).scalars()
    )
    for header_id in named:
        for message in found:
            if message.provider_message_id == header_id or ours.get(message.id) == header_id:
                return message, header_id
    return None, ""


async def _adopt(session: AsyncSession, sent: Message, conversation_id: str) -> None:
    """The proactive email a reply answers joins the conversation the reply started, and the session starts
    with it (within the idle time, as any session), so the agent sees what it is answered about."""
    await session.execute(
        update(Message)
        .where(Message.id == sent.id, Message.conversation_id.is_(None))
        .values(conversation_id=conversation_id)
    )
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id, Conversation.session_started_at > sent.created_at)
        .values(session_started_at=sent.created_at)
    )


# -- what is stored -----------------------------------------------------------------------------------------------


def _inbound(email: ParsedEmail, message_id: str, thread: _Thread, form: _Form | None) -> InboundMessage:
    details: dict[str, Any] = {"subject": email.subject}
    if email.attachments:
        details["attachments"] = [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
                                  for a in email.attachments]  # fmt: skip
    sender, name, text = email.sender, email.sender_name, email.reply_text
    reply_address: str | None = email.reply_address
    reply_platform: str | None = None
    agent_id: str | None = None
    if form is not None:
        fields = form.fields
        sender = fields.get("email") or fields.get("phone") or email.sender
        name = fields.get("name") or None
        text = fields.get("message") or email.reply_text
        reply_address = fields.get("email") or fields.get("phone")
        reply_platform = "sms" if "email" not in fields and "phone" in fields else None
        agent_id = form.config.get("route_to")
        details["form"] = {"id": form.form.id, "name": form.form.name, "fields": fields}
        details["intent"] = form.classification.as_record()
    return InboundMessage(
        conversation_key=thread.key, sender_id=sender, text=text, provider_message_id=message_id,
        sent_at=email.date or datetime.now(UTC), raw_type="email", sender_name=name,
        attachments=tuple(_listed(i, a) for i, a in enumerate(email.attachments)),
        in_reply_to=email.in_reply_to, subject=email.subject or None, references=email.references,
        reply_address=reply_address, reply_platform=reply_platform, agent_id=agent_id, details=details,
    )  # fmt: skip


def _listed(index: int, found: EmailAttachment) -> Attachment:
    """An attachment as conversations list them: a reference (the part's position), never the file."""
    item = attachment(
        kind_of(found.content_type), f"email-attachment:{index}", found.content_type, found.filename
    )
    item["size"] = found.size
    return item


# -- contact forms ------------------------------------------------------------------------------------------------


async def _read_form(rt: Runtime, channel: Channel, form: EmailForm, email: ParsedEmail) -> _Form:
    """The fields and the intent (the model is asked outside any transaction: no lock is held while it thinks)."""
    fields = forms.extract(form.fields, email.text)
    about = f"{email.subject}\n{fields.get('message') or email.reply_text}"
    classification = await intents.classify(
        rt, tenant_id=channel.tenant_id, text=about, keywords=form.keywords,
        classifier_agent_id=form.classifier_agent_id,
    )  # fmt: skip
    return _Form(form, fields, classification)


async def _answer_form(
    rt: Runtime, session: AsyncSession, channel: Channel, email: ParsedEmail, row: InboundRow, form: _Form,
    source: str,
) -> None:  # fmt: skip
    """Queue the intent's auto-response under the form's agent and audit what was read; a response the pipeline
    refuses (governance, a template variable missing) is audited with its reason, never raised."""
    detail: dict[str, Any] = {"form_id": form.form.id, "intent": form.classification.as_record(),
                              "fields": sorted(form.fields), "route_to": form.config.get("route_to"),
                              "source": source}  # fmt: skip
    response = form.config.get("auto_response")
    if response is not None:
        try:
            async with session.begin_nested():
                message = await _auto_response(rt, session, channel, email, row, form, response)
        except RequestError as exc:
            detail["auto_response_error"] = exc.detail
        else:
            detail["auto_response"] = message.id if message is not None else None
            if message is None:
                detail["auto_response_error"] = "the form gave neither an email address nor a phone number"
    await session.execute(
        insert(AuditEntry),
        [audit_row(channel.tenant_id, ACTOR, "email_form.received", "inbound_message", row.id, detail)],
    )


async def _auto_response(
    rt: Runtime, session: AsyncSession, channel: Channel, email: ParsedEmail, row: InboundRow, form: _Form,
    response: dict[str, Any],
) -> Message | None:  # fmt: skip
    fields = form.fields
    if "email" in fields:
        platform, recipient, channel_id = "email", fields["email"], channel.id
    elif "phone" in fields:
        platform, recipient, channel_id = "sms", fields["phone"], None
    else:
        return None
    variables = {**form.form.variables, **dict.fromkeys(("email", "phone", "message"), ""), **fields,
                 "name": fields.get("name", ""), "first_name": forms.first_name(fields.get("name")),
                 "inquiry_subject": _inquiry_subject(email, fields), "intent": form.classification.intent}  # fmt: skip
    subject, body = await _render(session, channel.tenant_id, platform, response, variables)
    intent = Intent(
        agent_id=form.form.agent_id, platform=platform, recipient_id=recipient, content=body,
        subject=subject if platform == "email" else None, channel_id=channel_id, priority=Priority.HIGH,
        governance_metadata={"email_form_id": form.form.id, "inbound_message_id": row.id,
                             "conversation_id": row.conversation_id, "intent": form.classification.intent},
        origin=ContentOrigin(path="template"),
    )  # fmt: skip
    principal = Principal(
        tenant_id=channel.tenant_id, key_id=form.form.agent_id, is_admin=False, kind="agent"
    )
    prepared = await pipeline.prepare(rt, session, principal, intent)
    prepared.values["conversation_id"] = row.conversation_id  # the agent sees it in the person's session
    await pipeline.write(rt, session, [prepared])
    return prepared.message


async def _render(
    session: AsyncSession, tenant_id: str, platform: str, response: dict[str, Any], variables: dict[str, Any]
) -> tuple[str | None, str]:
    """The auto-response's subject and body: the event type's template for the platform, or the inline text."""
    now = utcnow()
    if response.get("event_type"):
        found = await forms.template_for(session, tenant_id, str(response["event_type"]), platform)
        rendered = render_resolved(found, variables, now=now)
        return rendered.subject, rendered.body
    subject = response.get("subject")
    body = templates.render(str(response.get("body") or ""), variables, now=now, timezone="UTC", field="body")
    if subject:
        subject = templates.render(str(subject), variables, now=now, timezone="UTC", field="subject")
    return subject, body


def _inquiry_subject(email: ParsedEmail, fields: dict[str, str]) -> str:
    """What the enquiry is about, in a few words: the message's first line (the notification's own subject is
    the website's, "New form submission")."""
    first = (fields.get("message") or "").strip().split("\n")[0]
    words = first.split()
    short = " ".join(words[:12]) + ("…" if len(words) > 12 else "")
    return short or email.subject
