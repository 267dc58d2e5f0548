"""Contact-form rules: how to read a website's notification emails (seed 004's Gmail poller, made declarative).

A website's contact form usually mails the business a notification from a fixed address ("WordPress
<noreply@dealer.example>", "Website form: new enquiry") with the visitor's answers as labelled lines::

    Name: Dana Smith
    Email: dana@example.com
    Phone: (555) 010-2300
    Message: My mower will not start.
    It makes a clicking noise.

A form rule says which emails are such notifications (``senders``: addresses or ``@domain``\\ s, and/or
``subject_contains``), the labels of the four fields, and per intent an auto-response (a template-library event
type, or inline subject and body) and a routing target (an agent). A value runs from its label to the next
label, so a message may span lines. Rules belong to a tenant, optionally to one email interface.

Such an email is not a conversation with the website's address: the person is whoever the fields name. Their
email is where the auto-response and the agent's answers go; with only a phone number, both go by SMS.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, or_, select

from herald.core.errors import NotFound, ValidationFailed
from herald.core.ids import new_id
from herald.core.principal import Principal
from herald.pipeline import templates
from herald.pipeline.enrolment import require_agent
from herald.pipeline.library.defaults import DEFAULT_LOCALE
from herald.pipeline.library.resolve import ResolvedTemplate, pick, read_overrides
from herald.producers.email.intents import INTENTS, canonical
from herald.producers.email.parse import ParsedEmail
from herald.storage.audit import audit_row
from herald.storage.models import Agent, AuditEntry, Channel, EmailForm
from herald.storage.queries import owned
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from herald.runtime import Runtime

FIELDS = ("name", "email", "phone", "message")
DEFAULT_LABELS = {"name": "Name", "email": "Email", "phone": "Phone", "message": "Message"}
# What an auto-response template may use besides the form's own ``variables`` and Herald's built-ins.
RESPONSE_VARIABLES = frozenset(
    {"first_name", "name", "email", "phone", "message", "inquiry_subject", "intent"}
)
_EMAIL = re.compile(r"[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[A-Za-z]{2,}")
_PHONE_CHARS = re.compile(r"[\s().\-/]")
_E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")


# -- the rules as the API manages them ---------------------------------------------------------------------------


async def create_form(
    rt: Runtime, session: AsyncSession, principal: Principal, values: dict[str, Any]
) -> EmailForm:
    values = await _checked(rt, session, principal, values)
    now = utcnow()
    form = EmailForm(
        id=new_id("efm"), tenant_id=principal.tenant_id, created_at=now, updated_at=now, **values
    )
    session.add(form)
    await session.flush()
    await _audit(session, principal, "email_form.created", form.id)
    return form


async def list_forms(
    session: AsyncSession, tenant_id: str, *, limit: int, cursor: str | None
) -> list[EmailForm]:
    query = select(EmailForm).where(EmailForm.tenant_id == tenant_id)
    if cursor is not None:
        query = query.where(EmailForm.id > cursor)
    return list((await session.execute(query.order_by(EmailForm.id).limit(limit))).scalars())


async def get_form(session: AsyncSession, tenant_id: str, form_id: str) -> EmailForm:
    return await owned(session, EmailForm, tenant_id, form_id, "email form")


async def update_form(
    rt: Runtime, session: AsyncSession, principal: Principal, form_id: str, changes: dict[str, Any]
) -> EmailForm:
    form = await get_form(session, principal.tenant_id, form_id)
    current = {name: getattr(form, name) for name in _EDITABLE}
    values = await _checked(rt, session, principal, {**current, **changes})
    for name, value in values.items():
        setattr(form, name, value)
    form.updated_at = utcnow()
    await _audit(session, principal, "email_form.updated", form.id, {"fields": sorted(changes)})
    return form


async def delete_form(session: AsyncSession, principal: Principal, form_id: str) -> None:
    await session.delete(await get_form(session, principal.tenant_id, form_id))
    await _audit(session, principal, "email_form.deleted", form_id)


_EDITABLE = ("name", "channel_id", "agent_id", "senders", "subject_contains", "fields", "intents", "keywords",
             "classifier_agent_id", "variables", "enabled")  # fmt: skip


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    form_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await session.execute(
        insert(AuditEntry),
        [audit_row(principal.tenant_id, principal.actor, action, "email_form", form_id, detail)],
    )


async def _checked(
    rt: Runtime, session: AsyncSession, principal: Principal, values: dict[str, Any]
) -> dict[str, Any]:
    """The values as stored (senders lower-cased, intents by their canonical names), every reference checked
    within the tenant; a 422 naming the field at fault otherwise."""
    tenant_id = principal.tenant_id
    out = {name: values.get(name) for name in _EDITABLE}
    out["senders"] = [s.strip().lower() for s in values.get("senders") or [] if s.strip()]
    out["subject_contains"] = (values.get("subject_contains") or "").strip() or None
    if not out["senders"] and not out["subject_contains"]:
        raise ValidationFailed(
            "give senders, subject_contains or both: which emails are this form's", field="senders"
        )
    out["fields"] = {**DEFAULT_LABELS, **(values.get("fields") or {})}
    out["variables"] = dict(values.get("variables") or {})
    out["enabled"] = bool(values.get("enabled", True))
    await require_agent(rt, session, principal, values["agent_id"], field="agent_id")
    if out["channel_id"] is not None:
        channel = await session.get(Channel, out["channel_id"])
        if channel is None or channel.tenant_id != tenant_id or channel.platform != "email":
            raise ValidationFailed(f"no email interface {out['channel_id']!r}", field="channel_id")
    if out["classifier_agent_id"] is not None:
        agent = await session.get(Agent, (tenant_id, out["classifier_agent_id"]))
        if agent is None or agent.kind != "llm":
            raise ValidationFailed(
                f"no LLM agent {out['classifier_agent_id']!r}: the classifier must be an agent of kind llm",
                field="classifier_agent_id",
            )
    out["keywords"] = _keywords(values.get("keywords"))
    out["intents"] = await _intents(
        rt, session, principal, values.get("intents") or {}, dict(out["variables"] or {})
    )
    return out


def _keywords(given: Mapping[str, list[str]] | None) -> dict[str, list[str]] | None:
    if not given:
        return None
    lists: dict[str, list[str]] = {}
    for name, words in given.items():
        intent = canonical(name)
        if intent is None or intent == "other":
            raise ValidationFailed(f"{name!r} is not an intent with keywords (buying, service, repair)",
                                   field=f"keywords.{name}")  # fmt: skip
        lists[intent] = [w.strip().lower() for w in words if w.strip()]
    return lists


async def _intents(
    rt: Runtime,
    session: AsyncSession,
    principal: Principal,
    given: Mapping[str, Any],
    variables: dict[str, Any],
) -> dict[str, Any]:
    """Each intent's auto-response and routing target, checked: the agents exist, the event type has a
    template, and every variable a response uses is supplied."""
    supplied = RESPONSE_VARIABLES | set(variables) | templates.BUILTIN_VARIABLES
    out: dict[str, Any] = {}
    for name, config in given.items():
        intent = canonical(name)
        if intent is None:
            raise ValidationFailed(
                f"unknown intent {name!r}: one of {', '.join(INTENTS)}", field=f"intents.{name}"
            )
        where = f"intents.{name}"
        route_to = config.get("route_to")
        if route_to is not None:
            await require_agent(rt, session, principal, route_to, field=f"{where}.route_to")
        response = config.get("auto_response")
        if response is not None:
            await _check_response(session, principal.tenant_id, response, supplied, f"{where}.auto_response")
        out[intent] = {"auto_response": response, "route_to": route_to}
    return out


async def _check_response(
    session: AsyncSession,
    tenant_id: str,
    response: Mapping[str, Any],
    supplied: set[str] | frozenset[str],
    where: str,
) -> None:
    event_type = response.get("event_type")
    if event_type is not None:
        try:
            found = await template_for(session, tenant_id, event_type, "email")
        except NotFound as exc:
            raise ValidationFailed(str(exc), field=f"{where}.event_type") from exc
        missing = sorted(set(found.variables) - supplied)
        if missing:
            raise ValidationFailed(
                f"the {event_type} template uses {', '.join(missing)}: give them in the form's variables",
                field="variables",
            )
        return
    templates.validate(response.get("subject") or "", dict.fromkeys(supplied, ""), field=f"{where}.subject")
    templates.validate(response.get("body") or "", dict.fromkeys(supplied, ""), field=f"{where}.body")


async def template_for(
    session: AsyncSession, tenant_id: str, event_type: str, platform: str
) -> ResolvedTemplate:
    """The library template (the tenant's override, else Herald's) for an auto-response on ``platform``, read in
    the caller's session (a second connection inside a write transaction would wait on SQLite's one writer)."""
    found = pick(await read_overrides(session, tenant_id, event_type), event_type, platform, DEFAULT_LOCALE)
    if found is None:
        raise NotFound(f"no template for event type {event_type!r} on {platform!r}")
    return found


# -- reading notifications ----------------------------------------------------------------------------------------


async def forms_for(session: AsyncSession, channel: Channel) -> list[EmailForm]:
    """The enabled rules that may apply to mail on ``channel``: the tenant's own, and this interface's."""
    query = select(EmailForm).where(
        EmailForm.tenant_id == channel.tenant_id,
        EmailForm.enabled.is_(True),
        or_(EmailForm.channel_id.is_(None), EmailForm.channel_id == channel.id),
    )
    return list((await session.execute(query.order_by(EmailForm.id))).scalars())


def matches(form: EmailForm, email: ParsedEmail) -> bool:
    """Every condition the form gives holds: the sender is one of ``senders`` (an address, or ``@domain`` /
    ``domain`` for any address there) and the subject contains ``subject_contains`` (any case)."""
    if form.senders and not any(_sender_is(email.sender, s) for s in form.senders):
        return False
    return not form.subject_contains or form.subject_contains.lower() in email.subject.lower()


def _sender_is(sender: str, wanted: str) -> bool:
    if "@" in wanted.lstrip("@"):
        return sender == wanted
    return sender.rpartition("@")[2] == wanted.lstrip("@")


def extract(labels: Mapping[str, str], text: str) -> dict[str, str]:
    """The fields found in ``text`` by their labels ("Label: value", or the value on the next line; the message
    runs on to the next label's line, so it may span lines). Email and phone are cleaned: the address alone, the number in E.164 when it
    can be read as one (else as written)."""
    by_label = {label.strip().lower(): name for name, label in labels.items() if label and label.strip()}
    if not by_label:
        return {}
    pattern = re.compile(
        r"^\s*\**\s*(" + "|".join(re.escape(label) for label in sorted(by_label, key=len, reverse=True)) +
        r")\s*\**\s*:\s*\**\s*(.*)$", re.IGNORECASE,
    )  # fmt: skip
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.split("\n"):
        hit = pattern.match(line)
        if hit is not None:
            current = found.setdefault(by_label[hit.group(1).lower()], [])
            current.clear()
            current.append(hit.group(2))
        elif current is not None:
            current.append(line)
    values = {name: _value(name, lines) for name, lines in found.items()}
    return _cleaned({name: value for name, value in values.items() if value})


def _value(name: str, lines: list[str]) -> str:
    """The message keeps every line up to the next label; the other fields are one line (the first given), so
    a footer after the last of them ("Sent by WordPress") is not read into it."""
    if name == "message":
        return "\n".join(lines).strip()
    return next((line.strip() for line in lines if line.strip()), "")


def _cleaned(values: dict[str, str]) -> dict[str, str]:
    out = dict(values)
    if "name" in out:
        out["name"] = " ".join(out["name"].split())
    if "email" in out:
        address = _EMAIL.search(out["email"])
        if address is None:
            del out["email"]
        else:
            out["email"] = address.group(0).lower()
    if "phone" in out:
        out["phone"] = phone_number(out["phone"])
    return out


def phone_number(written: str) -> str:
    """A phone number in E.164 when it reads as one: ``+44 7700 900123`` or, for the North American numbering
    plan the seed's dealerships use, ten digits (``(555) 010-2300``) or eleven starting with 1. Else as written."""
    compact = _PHONE_CHARS.sub(
        "", written.strip().replace("(0)", "")
    )  # +49 (0)30: the (0) is dialled at home only
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if compact.isdigit() and len(compact) == 10:
        compact = "+1" + compact
    elif compact.isdigit() and len(compact) == 11 and compact.startswith("1"):
        compact = "+" + compact
    return compact if _E164.match(compact) else " ".join(written.split())


def first_name(name: str | None) -> str:
    return (name or "").split(" ")[0] if name else "there"
