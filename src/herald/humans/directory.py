"""Approvers and approval policies: who decides on held messages, and which messages reach whom.

An approver is a person with addresses in escalation order; a policy picks held messages by agent and priority
and names the approvers, the quorum, when to escalate and when an undecided request expires. A tenant without
policies keeps the behaviour from before: held messages wait on the dashboard and the API.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core.errors import ValidationFailed
from herald.core.ids import new_id
from herald.core.intent import Priority
from herald.core.principal import Principal
from herald.storage.audit import audit_row
from herald.storage.models import Agent, ApprovalPolicy, Approver, AuditEntry, Channel, Contact
from herald.storage.queries import owned, referenced
from herald.storage.types import utcnow


async def create_approver(
    session: AsyncSession, principal: Principal, name: str, addresses: list[dict[str, Any]]
) -> Approver:
    for index, address in enumerate(addresses):
        await check_address(session, principal.tenant_id, address, field=f"addresses.{index}.")
    now = utcnow()
    approver = Approver(id=new_id("apv"), tenant_id=principal.tenant_id, name=name, addresses=addresses,
                        created_at=now, updated_at=now)  # fmt: skip
    session.add(approver)
    await _audit(session, principal, "approver.created", "approver", approver.id, {"name": name})
    await session.flush()
    return approver


async def update_approver(
    session: AsyncSession,
    principal: Principal,
    approver_id: str,
    *,
    name: str | None,
    addresses: list[dict[str, Any]] | None,
) -> Approver:
    approver = await owned(session, Approver, principal.tenant_id, approver_id, "approver")
    if name is not None:
        approver.name = name
    if addresses is not None:
        for index, address in enumerate(addresses):
            await check_address(session, principal.tenant_id, address, field=f"addresses.{index}.")
        approver.addresses = addresses
    approver.updated_at = utcnow()
    await _audit(session, principal, "approver.updated", "approver", approver.id, {"name": approver.name})
    await session.flush()
    return approver


async def delete_approver(session: AsyncSession, principal: Principal, approver_id: str) -> None:
    approver = await owned(session, Approver, principal.tenant_id, approver_id, "approver")
    using = [p.name for p in await list_policies(session, principal.tenant_id)
             if approver_id in p.approver_ids or approver_id in p.escalate_to]  # fmt: skip
    if using:
        raise ValidationFailed(
            f"approver {approver_id} is named by the approval policies {', '.join(using)}; change them first",
            field="approver_id",
        )
    await session.delete(approver)
    await _audit(session, principal, "approver.deleted", "approver", approver_id)


async def list_approvers(session: AsyncSession, tenant_id: str) -> list[Approver]:
    rows = await session.execute(
        select(Approver).where(Approver.tenant_id == tenant_id).order_by(Approver.id)
    )
    return list(rows.scalars())


async def get_approver(session: AsyncSession, tenant_id: str, approver_id: str) -> Approver:
    return await owned(session, Approver, tenant_id, approver_id, "approver")


async def approvers_by_id(session: AsyncSession, tenant_id: str, ids: list[str]) -> dict[str, Approver]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Approver).where(Approver.tenant_id == tenant_id, Approver.id.in_(ids))
    )
    return {a.id: a for a in rows.scalars()}


async def check_address(
    session: AsyncSession, tenant_id: str, address: dict[str, Any], *, field: str
) -> None:
    """422 naming ``field`` + the key unless the contact and channel an address names are the tenant's."""
    if address.get("contact_id") is not None:
        await referenced(
            session, Contact, tenant_id, address["contact_id"], "contact", field=f"{field}contact_id"
        )
    if address.get("channel_id") is not None:
        await referenced(
            session, Channel, tenant_id, address["channel_id"], "channel", field=f"{field}channel_id"
        )


async def check_approvers(session: AsyncSession, tenant_id: str, ids: list[str], field: str) -> None:
    """422 naming ``field`` unless every id is one of the tenant's approvers (another tenant's is unknown)."""
    found = await approvers_by_id(session, tenant_id, ids)
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed(
            f"no approver {', '.join(missing)}: create it with POST /api/v1/approvers", field=field
        )


async def create_policy(
    session: AsyncSession, principal: Principal, values: dict[str, Any]
) -> ApprovalPolicy:
    await _check_policy(session, principal.tenant_id, values)
    if values.get("position") is None:
        values["position"] = len(await list_policies(session, principal.tenant_id))
    policy = ApprovalPolicy(id=new_id("apl"), tenant_id=principal.tenant_id, created_at=utcnow(), **values)
    session.add(policy)
    await _audit(
        session, principal, "approval_policy.created", "approval_policy", policy.id, {"name": policy.name}
    )
    await session.flush()
    return policy


async def update_policy(
    session: AsyncSession, principal: Principal, policy_id: str, values: dict[str, Any]
) -> ApprovalPolicy:
    policy = await owned(session, ApprovalPolicy, principal.tenant_id, policy_id, "approval policy")
    for name in _REQUIRED_POLICY_FIELDS:  # the others (escalation, expiry) are cleared by null
        if name in values and values[name] is None:
            raise ValidationFailed("must not be null (leave it out to keep it)", field=name)
    merged = {c: getattr(policy, c) for c in _POLICY_FIELDS} | values
    await _check_policy(session, principal.tenant_id, merged)
    for key, value in values.items():
        setattr(policy, key, value)
    await _audit(
        session, principal, "approval_policy.updated", "approval_policy", policy.id, {"name": policy.name}
    )
    await session.flush()
    return policy


async def delete_policy(session: AsyncSession, principal: Principal, policy_id: str) -> None:
    await owned(session, ApprovalPolicy, principal.tenant_id, policy_id, "approval policy")
    await session.execute(delete(ApprovalPolicy).where(ApprovalPolicy.id == policy_id))
    await _audit(session, principal, "approval_policy.deleted", "approval_policy", policy_id)


async def list_policies(session: AsyncSession, tenant_id: str) -> list[ApprovalPolicy]:
    rows = await session.execute(
        select(ApprovalPolicy).where(ApprovalPolicy.tenant_id == tenant_id)
        .order_by(ApprovalPolicy.position, ApprovalPolicy.created_at, ApprovalPolicy.id)
    )  # fmt: skip
    return list(rows.scalars())


async def get_policy(session: AsyncSession, tenant_id: str, policy_id: str) -> ApprovalPolicy:
    return await owned(session, ApprovalPolicy, tenant_id, policy_id, "approval policy")


def matching(policies: list[ApprovalPolicy], agent_id: str | None, priority: int) -> ApprovalPolicy | None:
    """The first policy naming this agent (or any) and this priority (or any)."""
    name = Priority(priority).name
    for policy in policies:
        if policy.agent_ids and agent_id not in policy.agent_ids:
            continue
        if policy.priorities and name not in policy.priorities:
            continue
        return policy
    return None


_POLICY_FIELDS = ("name", "position", "agent_ids", "priorities", "approver_ids", "quorum",
                  "escalate_after_seconds", "escalate_to", "expires_after_seconds")  # fmt: skip
_REQUIRED_POLICY_FIELDS = (
    "name",
    "position",
    "agent_ids",
    "priorities",
    "approver_ids",
    "quorum",
    "escalate_to",
)


async def _check_policy(session: AsyncSession, tenant_id: str, values: dict[str, Any]) -> None:
    agent_ids = list(values.get("agent_ids") or [])
    if agent_ids:
        found = set((await session.execute(
            select(Agent.id).where(Agent.tenant_id == tenant_id, Agent.id.in_(agent_ids))
        )).scalars())  # fmt: skip
        missing = [i for i in agent_ids if i not in found]
        if missing:
            raise ValidationFailed(f"no agent {', '.join(missing)}", field="agent_ids")
    await check_approvers(session, tenant_id, list(values.get("approver_ids") or []), "approver_ids")
    await check_approvers(session, tenant_id, list(values.get("escalate_to") or []), "escalate_to")
    quorum = int(values.get("quorum") or 1)
    eligible = len(set(values.get("approver_ids") or []) | set(values.get("escalate_to") or []))
    if quorum > eligible:
        raise ValidationFailed(
            f"quorum {quorum} needs at least {quorum} approvers; the policy names {eligible}", field="quorum"
        )
    if values.get("escalate_to") and not values.get("escalate_after_seconds"):
        raise ValidationFailed("escalate_to needs escalate_after_seconds", field="escalate_after_seconds")


async def _audit(
    session: AsyncSession,
    principal: Principal,
    action: str,
    kind: str,
    object_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await session.execute(
        insert(AuditEntry), [audit_row(principal.tenant_id, principal.actor, action, kind, object_id, detail)]
    )
