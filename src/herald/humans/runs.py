"""Held campaign runs in the humans machinery: one approval request for an INTERN's whole run.

A run held at ``pending_approval`` (:mod:`herald.producers.campaigns.runner`) gets its request from the same
``approval outreach`` loop as a held message, under the tenant's policy for the campaign's agent, and is then
voted on, escalated and expired like any request. What differs from a message lives here: what a copy shows
(the run's stored preview rather than one message's text), and how the run itself is decided, always through
the campaigns service's :func:`~herald.producers.campaigns.service.record_decision`, the function its API
route and dashboard use too, so a run is decided in one place whoever decides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import NotFound
from herald.core.principal import Principal
from herald.producers.campaigns import service
from herald.storage.models import Agent, Campaign, CampaignRun

SAMPLES = 3  # sample messages shown on a chat or SMS copy (email shows every stored one)
SAMPLE_CHARS = 160  # of each sample's text on a chat or SMS copy
FAILURES = 5  # reasons a row cannot be sent, shown by email
# A chat or SMS copy stays within this: WhatsApp's interactive body holds 1024 characters, Discord 2000, and an
# SMS of about seven parts is already long. Samples are dropped, last first, until the copy fits.
TEXT_LIMIT = 1000


@dataclass(frozen=True)
class HeldRun:
    """A held run with what its copies show: the campaign (None once deleted) and its agent's level."""

    run: CampaignRun
    campaign: Campaign | None
    level: str | None

    @property
    def name(self) -> str:
        return self.campaign.name if self.campaign is not None else self.run.campaign_id

    @property
    def agent_id(self) -> str:
        return self.campaign.agent_id if self.campaign is not None else ""


async def load(session: AsyncSession, run_id: str) -> HeldRun | None:
    run = await session.get(CampaignRun, run_id)
    if run is None:
        return None
    campaign = await session.get(Campaign, run.campaign_id)
    agent = await session.get(Agent, (run.tenant_id, campaign.agent_id)) if campaign is not None else None
    return HeldRun(run, campaign, agent.maturity_level if agent is not None else None)


def preview_lines(held: HeldRun, *, samples: int, full: bool) -> list[str]:
    """The run as its approvers see it: campaign, agent and level, the counts of the stored preview, and
    ``samples`` of its rendered messages (clipped on chat and SMS; whole, with subjects and failures, by email)."""
    run, preview = held.run, held.run.preview or {}
    level = f" ({held.level})" if held.level else ""
    audience = int(preview.get("audience") or 0)
    deduped, opted_out, failed = (int(preview.get(k) or 0) for k in ("deduped", "opted_out", "failed"))
    lines = [
        f"Campaign: {held.name} ({run.trigger} run {run.id})",
        f"Agent: {held.agent_id}{level}",
        f"Audience: {audience} · to send: {max(audience - deduped - opted_out - failed, 0)}",
        f"Already sent: {deduped} · opted out: {opted_out} · cannot be sent: {failed}",
    ]
    if held.campaign is not None:
        lines.append("Channels: " + ", then ".join(str(c["platform"]) for c in held.campaign.channels))
    shown: list[dict[str, Any]] = list(preview.get("sample") or [])
    for sample in shown[:samples]:
        lines += ["", f"To {sample.get('platform')} {sample.get('recipient_id')}:"]
        if full and sample.get("subject"):
            lines.append(f"Subject: {sample['subject']}")
        lines.append(_clip(str(sample.get("content") or ""), None if full else SAMPLE_CHARS))
    if len(shown) > samples:
        lines += ["", f"({len(shown) - samples} more in the preview)"]
    if full and preview.get("failures"):
        lines += ["", "Rows that cannot be sent:"]
        lines += [f"- {f.get('key')}: {f.get('reason')}" for f in preview["failures"][:FAILURES]]
    return lines


def _clip(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def full_lines(held: HeldRun) -> list[str]:
    """The fuller preview an email copy and the email decision page show: every stored sample, whole."""
    return preview_lines(held, samples=len((held.run.preview or {}).get("sample") or []), full=True)


def approver_principal(tenant_id: str, voter: str) -> Principal:
    """Who decides a run on an approval request's behalf: the approver (``approver:<id>`` in the audit)."""
    return Principal(tenant_id=tenant_id, key_id=voter, is_admin=False, kind="approver")


async def decide(
    session: AsyncSession,
    principal: Principal,
    run_id: str,
    *,
    decision: str,
    by: str | None,
    reason: str | None,
) -> CampaignRun:
    """Decide the run (``approved``, ``rejected`` or ``expired``) in the request's transaction; NotFound once
    the run is gone (its campaign deleted), Conflict once it was decided elsewhere."""
    run = await session.get(CampaignRun, run_id)
    if run is None:
        raise NotFound(f"campaign run {run_id} no longer exists (its campaign was deleted)")
    return await service.record_decision(session, principal, run.campaign_id, run.id, decision=decision,
                                         approver=by[:200] if by else by, reason=reason)  # fmt: skip
