"""Choosing where a message goes: the route plan (first choice plus fallback chain) and when it may leave.

An explicit ``platform`` and ``recipient_id`` is step one; ``fallback`` entries follow. A ``contact_id`` with a
``priority`` instead takes the contact's own ``channel_order`` or the tenant's route for that priority, keeping
the platforms the contact has an address on and has not opted out of; when the tenant's policy says
``channel_choice: measured``, those steps are reordered by how their channels have been delivering (see
:mod:`herald.pipeline.routing.measured`) and the plan carries the reason. Each platform resolves to a channel: the
named one, the tenant's default for it, or (development only) the dev inbox. Steps whose channel's circuit is
open are put last, so healthy channels are tried first.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core import attachments
from herald.core.errors import NotFound, ValidationFailed
from herald.core.platforms import PLATFORMS, recipient_problem
from herald.pipeline.routing import circuit, measured
from herald.pipeline.routing.policy import DeliveryPolicy, load_policy
from herald.pipeline.routing.quiet_hours import QuietHours, delay_for_quiet_hours
from herald.providers import provider_class
from herald.storage.models import Channel as ChannelRow
from herald.storage.models import Contact, Tenant
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Step:
    platform: str
    recipient_id: str
    channel_id: str | None
    provider: str
    simulated: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform, "recipient_id": self.recipient_id, "channel_id": self.channel_id,
            "provider": self.provider, "simulated": self.simulated,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Plan:
    steps: list[Step]
    contact: Contact | None
    policy: DeliveryPolicy
    # Why the steps are in this order, when the policy measured it (stored as the message's route_reason).
    reason: dict[str, Any] | None = None

    def quiet_delay(self, at: datetime, priority_name: str, zone_hint: str | None = None) -> datetime:
        """When the message may leave: after the recipient's quiet hours, unless it is CRITICAL. The zone is the
        contact's, else ``zone_hint`` (the recipient's zone as the producer knows it), else the tenant's."""
        if priority_name == "CRITICAL":
            return at
        quiet: QuietHours | None = self.policy.quiet_hours
        zone = zone_hint or self.policy.timezone
        if self.contact is not None:
            if self.contact.quiet_hours:
                quiet = QuietHours.model_validate(self.contact.quiet_hours)
            zone = self.contact.timezone or zone
        return delay_for_quiet_hours(at, quiet, zone)


@dataclass
class Memo:
    """Lookups shared by the messages of one batch (a bulk request), so each contact, named channel and circuit
    is read once per batch instead of once per message. Circuit states are those at the batch's start."""

    contacts: dict[str, Contact | None] = _field(default_factory=dict)
    channels: dict[str, tuple[str, str, str] | None] = _field(default_factory=dict)
    circuits: dict[str, circuit.CircuitView] = _field(default_factory=dict)

    async def preload_contacts(self, session: AsyncSession, tenant_id: str, contact_ids: set[str]) -> None:
        """Read every contact the batch names in one query per thousand."""
        wanted = sorted(contact_ids - self.contacts.keys())
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            rows = (
                await session.execute(
                    select(Contact).where(Contact.tenant_id == tenant_id, Contact.id.in_(chunk))
                )
            ).scalars()
            found = {row.id: row for row in rows}
            self.contacts.update({cid: found.get(cid) for cid in chunk})


async def _named_channel(
    session: AsyncSession, tenant_id: str, channel_id: str, memo: Memo | None
) -> tuple[str, str, str] | None:
    if memo is not None and channel_id in memo.channels:
        return memo.channels[channel_id]
    row = (
        await session.execute(
            select(ChannelRow.id, ChannelRow.provider, ChannelRow.platform).where(
                ChannelRow.id == channel_id, ChannelRow.tenant_id == tenant_id
            )
        )
    ).one_or_none()
    found = None if row is None else (row.id, row.provider, row.platform)
    if memo is not None:
        memo.channels[channel_id] = found
    return found


async def _contact(
    session: AsyncSession, tenant_id: str, contact_id: str, memo: Memo | None
) -> Contact | None:
    if memo is not None and contact_id in memo.contacts:
        return memo.contacts[contact_id]
    contact = (
        await session.execute(select(Contact).where(Contact.id == contact_id, Contact.tenant_id == tenant_id))
    ).scalar_one_or_none()
    if memo is not None:
        memo.contacts[contact_id] = contact
    return contact


async def _circuits(
    rt: Runtime, session: AsyncSession, channel_ids: set[str], memo: Memo | None
) -> dict[str, circuit.CircuitView]:
    """Each channel's circuit, read at most once a second per process (``rt.circuit_views``): reading the
    health rows was a sixth of a single send's cost in the API. The order it gives is a preference at
    acceptance; the worker reads the circuits again when it claims the message, so a view a second old
    never sends through an open circuit."""
    found: dict[str, circuit.CircuitView] = {} if memo is None else memo.circuits
    unknown = set()
    for channel_id in channel_ids - found.keys():
        hit, cached = rt.circuit_views.get(channel_id)
        if hit and cached is not None:
            found[channel_id] = cached
        else:
            unknown.add(channel_id)
    if unknown:
        loaded = await circuit.load(session, unknown, utcnow())
        for channel_id, view in loaded.items():
            rt.circuit_views.put(channel_id, view)
        found.update(loaded)
    return found


async def resolve_channel(
    rt: Runtime,
    session: AsyncSession,
    tenant_id: str,
    platform: str,
    channel_id: str | None,
    *,
    field: str,
    memo: Memo | None = None,
) -> tuple[str | None, str, bool]:
    """(channel id, provider, simulated) for a platform; raises a 422 naming ``field`` when none can serve it."""
    if channel_id is not None:
        row = await _named_channel(session, tenant_id, channel_id, memo)
        if row is None:
            raise ValidationFailed(f"no channel {channel_id!r}", field="channel_id")
        cid, provider, serves = row
        if serves != platform:
            raise ValidationFailed(
                f"channel {channel_id!r} serves {serves!r}, not {platform!r}", field="channel_id"
            )
        return cid, provider, provider == "devinbox"
    found, default = rt.lookups.get(("default_channel", tenant_id, platform))
    if not found:
        chosen = (
            await session.execute(
                select(ChannelRow.id, ChannelRow.provider)
                .where(
                    ChannelRow.tenant_id == tenant_id, ChannelRow.platform == platform, ChannelRow.is_default
                )
                .limit(1)
            )
        ).one_or_none()
        default = None if chosen is None else (chosen.id, chosen.provider)
        rt.lookups.put(("default_channel", tenant_id, platform), default)
    if default is not None:
        return default[0], default[1], default[1] == "devinbox"
    if rt.settings.is_development:
        return None, "devinbox", True
    raise ValidationFailed(
        f"no channel is configured for platform {platform!r}: create one with POST /api/v1/channels",
        field=field,
    )


async def tenant_policy(rt: Runtime, session: AsyncSession, tenant_id: str) -> DeliveryPolicy:
    found, policy = rt.lookups.get(("policy", tenant_id))
    if not found:
        tenant = await session.get(Tenant, tenant_id)
        policy = load_policy(tenant.delivery_policy if tenant else None)
        rt.lookups.put(("policy", tenant_id), policy)
    assert isinstance(policy, DeliveryPolicy)
    return policy


async def stored_policy(session: AsyncSession, tenant_id: str) -> DeliveryPolicy:
    """The tenant's delivery policy as stored now (Herald's defaults when none is set), read past the cache."""
    tenant = await session.get(Tenant, tenant_id)
    return load_policy(tenant.delivery_policy if tenant else None)


async def set_policy(session: AsyncSession, tenant_id: str, policy: DeliveryPolicy) -> None:
    """Replace the tenant's delivery policy in the caller's transaction; clear ``rt.lookups`` after the commit,
    so :func:`tenant_policy` reads it again."""
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such tenant")
    tenant.delivery_policy = policy.model_dump(mode="json")


def _check_platform(platform: str, field: str) -> None:
    if platform not in PLATFORMS:
        raise ValidationFailed(
            f"unknown platform {platform!r}; one of: {', '.join(sorted(PLATFORMS))}", field=field
        )


def _check_recipient(platform: str, recipient_id: str, field: str) -> None:
    problem = recipient_problem(platform, recipient_id)
    if problem:
        raise ValidationFailed(problem, field=field)


async def plan(
    rt: Runtime,
    session: AsyncSession,
    tenant_id: str,
    *,
    platform: str | None,
    recipient_id: str | None,
    channel_id: str | None,
    contact_id: str | None,
    priority_name: str,
    fallback: list[tuple[str, str]],
    memo: Memo | None = None,
) -> Plan:
    policy = await tenant_policy(rt, session, tenant_id)
    contact = None
    wanted: list[tuple[str, str, str]] = []  # platform, recipient, field to blame
    by_measure = False
    if contact_id is not None:
        contact = await _contact(session, tenant_id, contact_id, memo)
        if contact is None:
            raise ValidationFailed(f"no contact {contact_id!r}", field="contact_id")
        order = contact.channel_order or policy.priority_routes[priority_name]
        # Measured only where Herald picks the order: no platform or channel the caller pinned.
        by_measure = policy.channel_choice == "measured" and platform is None and channel_id is None
        wanted = _contact_addresses(contact, platform, recipient_id, order)
    else:
        if platform is None or recipient_id is None:
            missing = "platform" if platform is None else "recipient_id"
            raise ValidationFailed("give platform and recipient_id, or contact_id", field=missing)
        _check_platform(platform, "platform")
        wanted.append((platform, recipient_id, "recipient_id"))
    ranked = len(wanted) if by_measure else 0
    for i, (fb_platform, fb_recipient) in enumerate(fallback):
        _check_platform(fb_platform, f"fallback.{i}.platform")
        wanted.append((fb_platform, fb_recipient, f"fallback.{i}.recipient_id"))

    steps: list[Step] = []
    for index, (name, recipient, field) in enumerate(wanted):
        _check_recipient(name, recipient, field)
        chosen = channel_id if index == 0 else None
        cid, provider, simulated = await resolve_channel(
            rt, session, tenant_id, name, chosen, field="platform" if index == 0 else field, memo=memo
        )
        steps.append(Step(name, recipient, cid, provider, simulated))
    reason = None
    if ranked:
        steps[:ranked], reason = await _measured_order(rt, session, tenant_id, policy, steps[:ranked])
    health = await _circuits(rt, session, {s.channel_id for s in steps if s.channel_id}, memo)
    healthy = [s for s in steps if not s.channel_id or health[s.channel_id].state == "closed"]
    broken = [s for s in steps if s not in healthy]
    return Plan(healthy + broken, contact, policy, reason)


def _contact_addresses(
    contact: Contact, platform: str | None, recipient_id: str | None, route: list[str]
) -> list[tuple[str, str, str]]:
    """(platform, recipient, field to blame) for each platform of ``route`` (or the one ``platform`` named) the
    contact has an address on and has not opted out of; a 422 when none is left."""
    if platform is not None:
        _check_platform(platform, "platform")
        if platform in contact.opt_outs:
            raise ValidationFailed(f"contact {contact.id} opted out of {platform}", field="platform")
    order = [platform] if platform is not None else route
    wanted = []
    for name in order:
        address = contact.addresses.get(name)
        if address and name not in contact.opt_outs:
            wanted.append(
                (name, str(recipient_id or address) if name == platform else str(address), "contact_id")
            )
    if not wanted:
        raise ValidationFailed(
            f"contact {contact.id} has no address it has not opted out of on {', '.join(order)}",
            field="contact_id",
        )
    return wanted


async def _measured_order(
    rt: Runtime, session: AsyncSession, tenant_id: str, policy: DeliveryPolicy, steps: list[Step]
) -> tuple[list[Step], dict[str, Any]]:
    """The contact's steps (in the table's order) ranked by their channels' figures, and the reason to record."""
    tuning = policy.measured
    figures = await rt.measured.stats(session, tenant_id, tuning.window_hours)
    stats = [figures.get(step.channel_id) if step.channel_id else None for step in steps]
    ranking = measured.rank(stats, tuning, rt.measured.random)
    reason = measured.reason([step.platform for step in steps], stats, ranking, tuning)
    return [steps[i] for i in ranking.order], reason


def takes_attachments(step: Step) -> bool:
    """Whether the step can send attachments: an email step whose provider sends them (the dev inbox keeps them)."""
    if step.platform not in attachments.PLATFORMS:
        return False
    adapter = None if step.simulated else provider_class(step.provider)
    return step.simulated or (adapter is not None and adapter.takes_attachments)


def length_limit(step: Step) -> int | None:
    """The content length the step's provider refuses beyond (None when it splits or has no limit)."""
    adapter = None if step.simulated else provider_class(step.provider)
    return adapter.max_length if adapter is not None and not adapter.split_long else None
