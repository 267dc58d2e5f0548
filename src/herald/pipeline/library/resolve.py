"""Resolving and rendering library templates: the tenant's override wins over Herald's default, the most
specific locale first.

Resolution of (event type, channel, locale) walks the locale chain (``en-GB`` -> ``en`` -> :data:`DEFAULT_LOCALE`)
and at each step takes the tenant's override, then Herald's default: a locale the reader asked for beats a
tenant's text in a broader one (a French customer never gets English because the tenant rewrote only ``en``).

Overrides are cached per process, per tenant and event type (:class:`TemplateCache`). Across processes the
guarantee is a bound, not an instant: a change is seen at once by the process that made it and by every other
process within :data:`TEMPLATE_CACHE_SECONDS` of its commit, whatever the backend (no LISTEN needed, so SQLite
and several PostgreSQL processes behave alike, as API keys do in :mod:`herald.admin.keys`). A campaign run
resolves once and renders many rows with :func:`render_resolved`, so a run never mixes two versions.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import NotFound, ValidationFailed
from herald.pipeline import templates
from herald.pipeline.library.defaults import BY_NAME, DEFAULT_LOCALE, Text
from herald.storage.models import TemplateOverride
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

TEMPLATE_CACHE_SECONDS = 5.0
"""How long a process trusts the overrides it read: another process's change shows within this."""

_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
MAX_LOCALE = 35


@dataclass(frozen=True, slots=True)
class Stored:
    """A tenant's override as cached: what resolution needs, detached from any session."""

    subject: str | None
    body: str
    variables: tuple[str, ...]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ResolvedTemplate:
    """The template a message will use. ``locale`` is the one found, ``requested_locale`` the one asked for;
    ``source`` is ``tenant`` (the tenant's override) or ``default`` (shipped with Herald)."""

    event_type: str
    channel: str
    locale: str
    requested_locale: str
    source: Literal["tenant", "default"]
    subject: str | None
    body: str
    variables: tuple[str, ...]
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class RenderedTemplate:
    """Text ready for a message: ``subject`` is None outside email."""

    subject: str | None
    body: str
    template: ResolvedTemplate


def normalise_locale(locale: str, *, field: str = "locale") -> str:
    """A BCP 47 tag in its usual case (``en-gb`` -> ``en-GB``, ``zh-hant-tw`` -> ``zh-Hant-TW``); a 422 naming
    ``field`` otherwise."""
    if len(locale) > MAX_LOCALE or not _LOCALE.match(locale):
        raise ValidationFailed(f"{locale[:40]!r} is not a locale tag such as en, en-GB or pt-BR", field=field)
    language, *rest = locale.split("-")
    parts = [language.lower()]
    for part in rest:
        if len(part) == 2 and part.isalpha():
            parts.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            parts.append(part.title())
        else:
            parts.append(part.lower())
    return "-".join(parts)


def locale_chain(locale: str) -> list[str]:
    """``zh-Hant-TW`` -> ``[zh-Hant-TW, zh-Hant, zh, en]``: each tag, then each shorter one, then the default."""
    parts = locale.split("-")
    chain = ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]
    if DEFAULT_LOCALE not in chain:
        chain.append(DEFAULT_LOCALE)
    return chain


def default_text(event_type: str, channel: str, locale: str) -> Text | None:
    """Herald's own text for exactly this key, if it ships one."""
    known = BY_NAME.get(event_type)
    return None if known is None else known.texts.get((channel, locale))


def template_variables(subject: str | None, body: str) -> tuple[str, ...]:
    """The names a template reads, built-ins aside, sorted: what its caller must supply."""
    names = templates.variables_used(body, field="body")
    if subject is not None:
        names |= templates.variables_used(subject, field="subject")
    return tuple(sorted(names - templates.BUILTIN_VARIABLES))


class TemplateCache:
    """Tenant -> event type -> (overrides by (channel, locale), expiry). :meth:`forget` bumps the tenant's
    generation, so a read that started before a change cannot put its older answer back afterwards."""

    def __init__(self, ttl: float = TEMPLATE_CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[str, dict[str, tuple[dict[tuple[str, str], Stored], float]]] = {}
        self._generations: dict[str, int] = {}

    def get(self, tenant_id: str, event_type: str) -> dict[tuple[str, str], Stored] | None:
        entry = self._entries.get(tenant_id, {}).get(event_type)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def generation(self, tenant_id: str) -> int:
        return self._generations.get(tenant_id, 0)

    def put(
        self,
        tenant_id: str,
        event_type: str,
        overrides: dict[tuple[str, str], Stored],
        *,
        generation: int,
        read_at: float,
    ) -> None:
        """Keep ``overrides`` read at ``read_at`` (monotonic) unless the tenant changed since ``generation``."""
        if self.generation(tenant_id) != generation:
            return
        if len(self._entries) >= 10_000:
            self._entries.clear()
        self._entries.setdefault(tenant_id, {})[event_type] = (overrides, read_at + self.ttl)

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's overrides in this process (the one that changed them), at once."""
        self._generations[tenant_id] = self.generation(tenant_id) + 1
        self._entries.pop(tenant_id, None)


async def read_overrides(
    session: AsyncSession, tenant_id: str, event_type: str
) -> dict[tuple[str, str], Stored]:
    rows = await session.execute(
        select(TemplateOverride).where(
            TemplateOverride.tenant_id == tenant_id, TemplateOverride.event_type == event_type
        )
    )
    return {
        (row.channel, row.locale): Stored(row.subject, row.body, tuple(row.variables), row.updated_at)
        for row in rows.scalars()
    }


async def _overrides(rt: Runtime, tenant_id: str, event_type: str) -> dict[tuple[str, str], Stored]:
    cached = rt.templates.get(tenant_id, event_type)
    if cached is not None:
        return cached
    generation, started = rt.templates.generation(tenant_id), time.monotonic()
    async with rt.sessions() as session:
        found = await read_overrides(session, tenant_id, event_type)
    rt.templates.put(tenant_id, event_type, found, generation=generation, read_at=started)
    return found


def pick(
    overrides: dict[tuple[str, str], Stored], event_type: str, channel: str, locale: str
) -> ResolvedTemplate | None:
    """The template for ``locale`` (normalised) from a tenant's overrides and the defaults; None if neither has
    one anywhere on the locale chain."""
    for candidate in locale_chain(locale):
        own = overrides.get((channel, candidate))
        if own is not None:
            return ResolvedTemplate(
                event_type, channel, candidate, locale, "tenant", own.subject, own.body, own.variables,
                own.updated_at,
            )  # fmt: skip
        shipped = default_text(event_type, channel, candidate)
        if shipped is not None:
            return ResolvedTemplate(
                event_type, channel, candidate, locale, "default", shipped.subject, shipped.body,
                template_variables(shipped.subject, shipped.body), None,
            )  # fmt: skip
    return None


async def resolve_template(
    rt: Runtime, tenant_id: str, event_type: str, channel: str, locale: str = DEFAULT_LOCALE
) -> ResolvedTemplate:
    """The template a tenant's message of ``event_type`` on ``channel`` uses for a reader in ``locale``.

    Raises :class:`~herald.core.errors.NotFound` when neither the tenant nor Herald has one (a campaign that
    names a template in its body turns that into its own 422), and a 422 naming ``locale`` for a malformed tag."""
    wanted = normalise_locale(locale)
    found = pick(await _overrides(rt, tenant_id, event_type), event_type, channel, wanted)
    if found is None:
        raise NotFound(
            f"no template for event type {event_type!r} on {channel!r} in {wanted!r} or its fallbacks"
        )
    return found


def render_resolved(
    template: ResolvedTemplate,
    variables: dict[str, Any],
    *,
    now: datetime | None = None,
    timezone: str = "UTC",
) -> RenderedTemplate:
    """Render a resolved template with one recipient's ``variables`` (and the built-ins for ``now`` in
    ``timezone``). A missing variable or a failing expression is a 422 naming ``subject`` or ``body``."""
    moment = now or utcnow()
    subject = (
        None
        if template.subject is None
        else templates.render(template.subject, variables, now=moment, timezone=timezone, field="subject")
    )
    body = templates.render(template.body, variables, now=moment, timezone=timezone, field="body")
    return RenderedTemplate(subject=subject, body=body, template=template)


async def render_template(
    rt: Runtime,
    tenant_id: str,
    event_type: str,
    channel: str,
    locale: str,
    variables: dict[str, Any],
    *,
    now: datetime | None = None,
    timezone: str = "UTC",
) -> RenderedTemplate:
    """Resolve then render, for one message. Many messages of one event type: resolve once, then call
    :func:`render_resolved` per recipient."""
    template = await resolve_template(rt, tenant_id, event_type, channel, locale)
    return render_resolved(template, variables, now=now, timezone=timezone)
