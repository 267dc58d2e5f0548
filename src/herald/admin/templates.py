"""A tenant's template library: Herald's defaults beside the tenant's overrides, and saving or removing them.

Keys are (event type, channel, locale). Saving validates as message templates are validated at send time
(sandboxed Jinja2: a syntax error, or a name that is neither a built-in nor a variable the event type supplies,
is a 422 naming ``subject`` or ``body``), then clears this process's cache once the change is committed; other
processes see it within :data:`herald.pipeline.library.TEMPLATE_CACHE_SECONDS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.exc import IntegrityError

from herald.core.errors import Conflict, NotFound, ValidationFailed
from herald.core.ids import new_id
from herald.core.platforms import PLATFORMS
from herald.core.principal import Principal
from herald.pipeline import templates as jinja
from herald.pipeline.library import (
    BY_NAME,
    EVENT_TYPES,
    EventType,
    ResolvedTemplate,
    Text,
    normalise_locale,
    resolve_template,
    template_variables,
)
from herald.pipeline.library.resolve import default_text
from herald.storage.audit import audit_row
from herald.storage.models import AuditEntry, TemplateOverride
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.-]{0,49}$")
MAX_SUBJECT = 500
MAX_BODY = 20_000


@dataclass(frozen=True, slots=True, order=True)
class Key:
    event_type: str
    channel: str
    locale: str

    @property
    def path(self) -> str:
        return f"{self.event_type}/{self.channel}/{self.locale}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One key as the tenant sees it: the text in effect (``source`` tenant or default) and Herald's default."""

    key: Key
    source: Literal["tenant", "default"]
    subject: str | None
    body: str
    variables: tuple[str, ...]
    updated_at: datetime | None
    default: Text | None
    requested_locale: str | None = None


def check_key(event_type: str, channel: str, locale: str) -> Key:
    """The key with its locale normalised; a 422 naming the part at fault."""
    if not _EVENT_TYPE.match(event_type):
        raise ValidationFailed(
            "an event type is 1 to 50 lowercase letters, digits, '_', '.' or '-', starting with a letter",
            field="event_type",
        )
    if channel not in PLATFORMS:
        raise ValidationFailed(
            f"unknown channel {channel!r}; one of: {', '.join(sorted(PLATFORMS))}", field="channel"
        )
    return Key(event_type, channel, normalise_locale(locale))


def _check_text(key: Key, subject: str | None, body: str, declared: list[str]) -> tuple[str, ...]:
    """The names the template reads, once it is known to parse and to read nothing a caller will not supply."""
    if key.channel == "email" and not subject:
        raise ValidationFailed("an email template needs a subject", field="subject")
    if key.channel != "email" and subject is not None:
        raise ValidationFailed(f"only email templates have a subject, not {key.channel}", field="subject")
    if not body.strip():
        raise ValidationFailed("must not be empty", field="body")
    if subject is not None and len(subject) > MAX_SUBJECT:
        raise ValidationFailed(f"over {MAX_SUBJECT} characters", field="subject")
    if len(body) > MAX_BODY:
        raise ValidationFailed(f"over {MAX_BODY} characters", field="body")
    known = BY_NAME.get(key.event_type)
    allowed = {*(known.variables if known else ()), *declared} | jinja.BUILTIN_VARIABLES
    for name, source in (("subject", subject), ("body", body)):
        if source is None:
            continue
        unknown = sorted(jinja.variables_used(source, field=name) - allowed)
        if unknown:
            supplied = f"{key.event_type} supplies {', '.join(known.variables)}; " if known else ""
            raise ValidationFailed(
                f"template uses variables that are not supplied: {', '.join(unknown)} ({supplied}declare others "
                f"in variables; built-ins are {', '.join(sorted(jinja.BUILTIN_VARIABLES))})",
                field=name,
            )
    _render_sample(key, subject, body, known)
    return template_variables(subject, body)


def _render_sample(key: Key, subject: str | None, body: str, known: EventType | None) -> None:
    """Render with the event type's sample values when they cover every name, so a template that parses but
    cannot run (calling a value, printing an object) is refused now rather than at send time."""
    if known is None or not set(template_variables(subject, body)) <= known.sample.keys():
        return
    for name, source in (("subject", subject), ("body", body)):
        if source is not None:
            jinja.render(source, known.sample, now=utcnow(), timezone="UTC", field=name)


def _entry(key: Key, row: TemplateOverride | None) -> Entry | None:
    shipped = default_text(key.event_type, key.channel, key.locale)
    if row is not None:
        return Entry(key, "tenant", row.subject, row.body, tuple(row.variables), row.updated_at, shipped)
    if shipped is not None:
        variables = template_variables(shipped.subject, shipped.body)
        return Entry(key, "default", shipped.subject, shipped.body, variables, None, shipped)
    return None


async def list_templates(
    rt: Runtime,
    tenant_id: str,
    *,
    event_type: str | None,
    channel: str | None,
    locale: str | None,
    limit: int,
    cursor: str | None,
) -> list[Entry]:
    """Every key the tenant has a template for, in key order: Herald's defaults and the tenant's overrides
    (an override replaces the default of its key), filtered, one page after ``cursor`` (a key path)."""
    wanted_locale = None if locale is None else normalise_locale(locale)
    query = select(TemplateOverride).where(TemplateOverride.tenant_id == tenant_id)
    if event_type is not None:
        query = query.where(TemplateOverride.event_type == event_type)
    if channel is not None:
        query = query.where(TemplateOverride.channel == channel)
    if wanted_locale is not None:
        query = query.where(TemplateOverride.locale == wanted_locale)
    async with rt.sessions() as session:
        rows = {Key(r.event_type, r.channel, r.locale): r for r in (await session.execute(query)).scalars()}
    keys = set(rows) | {
        Key(event.name, ch, loc)
        for event in EVENT_TYPES
        for ch, loc in event.texts
        if event_type in (None, event.name) and channel in (None, ch) and wanted_locale in (None, loc)
    }
    ordered = sorted((k for k in keys if cursor is None or k.path > cursor), key=lambda k: k.path)
    return [e for k in ordered[:limit] if (e := _entry(k, rows.get(k))) is not None]


async def get_template(rt: Runtime, tenant_id: str, key: Key) -> Entry:
    """The template in effect for ``key`` as a campaign would resolve it (locale fallback included), with
    Herald's default for the key it resolved to beside it."""
    found: ResolvedTemplate = await resolve_template(rt, tenant_id, key.event_type, key.channel, key.locale)
    resolved = Key(key.event_type, key.channel, found.locale)
    return Entry(
        resolved, found.source, found.subject, found.body, found.variables, found.updated_at,
        default_text(key.event_type, key.channel, found.locale), requested_locale=key.locale,
    )  # fmt: skip


async def put_template(
    rt: Runtime, principal: Principal, key: Key, *, subject: str | None, body: str, variables: list[str]
) -> tuple[Entry, bool]:
    """Create or replace the tenant's override of ``key``: (the entry, whether it was created)."""
    used = _check_text(key, subject, body, variables)
    now = utcnow()
    try:
        async with rt.sessions.begin() as session:
            row = (await session.execute(_override(principal.tenant_id, key))).scalar_one_or_none()
            created = row is None
            if row is None:
                row = TemplateOverride(
                    id=new_id("tpl"), tenant_id=principal.tenant_id, event_type=key.event_type,
                    channel=key.channel, locale=key.locale, created_at=now,
                )  # fmt: skip
                session.add(row)
            row.subject, row.body, row.variables, row.updated_at = subject, body, list(used), now
            await session.flush()
            action = "template.created" if created else "template.updated"
            await session.execute(
                insert(AuditEntry),
                [audit_row(principal.tenant_id, principal.actor, action, "template", key.path, at=now)],
            )
    except IntegrityError as exc:  # another request created the same key meanwhile
        raise Conflict(f"template {key.path} was created concurrently; send the PUT again") from exc
    finally:
        rt.templates.forget(principal.tenant_id)
    entry = _entry(key, row)
    assert entry is not None
    return entry, created


async def delete_template(rt: Runtime, principal: Principal, key: Key) -> None:
    """Remove the tenant's override of ``key``: Herald's default (if any) is in effect again. 404 when the
    tenant has no override there, alike for a key another tenant has overridden."""
    try:
        async with rt.sessions.begin() as session:
            row = (await session.execute(_override(principal.tenant_id, key))).scalar_one_or_none()
            if row is None:
                raise NotFound(f"no override of template {key.path}")
            await session.execute(delete(TemplateOverride).where(TemplateOverride.id == row.id))
            await session.execute(
                insert(AuditEntry),
                [audit_row(principal.tenant_id, principal.actor, "template.deleted", "template", key.path)],
            )
    finally:
        rt.templates.forget(principal.tenant_id)


def _override(tenant_id: str, key: Key) -> Select[TemplateOverride]:
    return select(TemplateOverride).where(
        TemplateOverride.tenant_id == tenant_id,
        TemplateOverride.event_type == key.event_type,
        TemplateOverride.channel == key.channel,
        TemplateOverride.locale == key.locale,
    )


def event_type(name: str) -> EventType | None:
    """The event type Herald ships under ``name``, or None for a tenant's own."""
    return BY_NAME.get(name)


def event_types() -> tuple[EventType, ...]:
    """The event types Herald ships templates for, with their variables and sample values."""
    return EVENT_TYPES
