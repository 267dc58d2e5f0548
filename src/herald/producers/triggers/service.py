"""Triggers, webhook endpoints and firings.

A firing renders the trigger's task from the payload, records a firing (source, payload digest, outcome) and
acts: by default it calls the agent's ``callback_url`` with the task and payload (signed, retried) after the
firing is committed, and an agent answer ``{"reply": ...}`` is sent under the agent's governance; with a
``message`` action it sends the rendered task itself through the pipeline.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets as pysecrets
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from herald.core import jsonbody
from herald.core.errors import (
    Conflict,
    HeraldError,
    NotFound,
    RequestError,
    TooManyRequests,
    ValidationFailed,
)
from herald.core.ids import new_id
from herald.core.intent import Intent
from herald.core.platforms import PLATFORMS, recipient_problem
from herald.core.principal import Principal
from herald.core.security import new_webhook_secret
from herald.pipeline import accept as messages
from herald.pipeline.enrolment import require_agent
from herald.producers import callbacks
from herald.producers.triggers import payload as payloads
from herald.producers.triggers.verification import verify
from herald.storage import claims
from herald.storage.audit import audit_row, event_row
from herald.storage.models import (
    Agent,
    AuditEntry,
    Event,
    Monitor,
    Schedule,
    Trigger,
    TriggerFiring,
    WebhookDelivery,
    WebhookEndpoint,
)
from herald.storage.types import utcnow

if TYPE_CHECKING:
    from herald.runtime import Runtime

TRIGGER_TYPES = ("webhook", "github", "manual", "schedule", "monitor")
ACTION_KEYS = ("type", "platform", "recipient_id")
# How long a process has for an agent call before another takes it over: longer than a call with its retries.
CALL_LEASE = timedelta(minutes=5)


async def create_trigger(
    rt: Runtime,
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    trigger_type: str,
    config: dict[str, Any],
    agent_id: str,
    task_template: str,
    action: dict[str, Any],
    workspace_id: str | None,
) -> Trigger:
    if trigger_type not in TRIGGER_TYPES:
        raise ValidationFailed(f"must be one of {', '.join(TRIGGER_TYPES)}", field="trigger_type")
    await require_agent(rt, session, principal, agent_id)
    await _check_source(session, principal.tenant_id, trigger_type, config)
    for key, value in action.items():
        if key not in ACTION_KEYS:
            raise ValidationFailed(
                f"unknown key; an action has {', '.join(ACTION_KEYS)}", field=f"action.{key}"
            )
        if not isinstance(value, str):
            raise ValidationFailed("must be a string", field=f"action.{key}")
    kind = action.get("type", "agent")
    if kind not in ("agent", "message"):
        raise ValidationFailed("must be agent or message", field="action.type")
    if action.get("platform") is not None or kind == "message":
        platform, recipient = action.get("platform"), action.get("recipient_id")
        if platform not in PLATFORMS or not recipient:
            raise ValidationFailed(
                "a message action needs a known platform and a recipient_id", field="action.platform"
            )
        problem = recipient_problem(str(platform), str(recipient))
        if problem:
            raise ValidationFailed(problem, field="action.recipient_id")
    now = utcnow()
    trigger = Trigger(
        id=new_id("trg"), tenant_id=principal.tenant_id, name=name, workspace_id=workspace_id,
        trigger_type=trigger_type, config=config, agent_id=agent_id, task_template=task_template,
        action={"type": kind, **{k: v for k, v in action.items() if k != "type"}}, is_active=True,
        fire_count=0, deleted=False, created_at=now,
    )  # fmt: skip
    session.add(trigger)
    await session.flush()
    await _audit(session, principal, "trigger.created", "trigger", trigger.id)
    return trigger


async def _check_source(
    session: AsyncSession, tenant_id: str, trigger_type: str, config: dict[str, Any]
) -> None:
    """A schedule or monitor trigger may name the schedule or monitor it follows (none: every one)."""
    if trigger_type == "monitor":
        states = config.get("states", ["firing"])
        if not isinstance(states, list) or not states or any(s not in ("firing", "resolved") for s in states):
            raise ValidationFailed("must be a list of firing and/or resolved", field="config.states")
        await _check_exists(session, Monitor, tenant_id, config.get("monitor_id"), "config.monitor_id")
    elif trigger_type == "schedule":
        await _check_exists(session, Schedule, tenant_id, config.get("schedule_id"), "config.schedule_id")
    elif trigger_type == "github":
        _check_repository(config.get("repository"))


def _check_repository(repository: Any) -> None:
    """``config.repository`` of a GitHub trigger is ``owner/name`` (or absent: every repository's deliveries)."""
    if repository is None:
        return
    owner, slash, name = repository.partition("/") if isinstance(repository, str) else ("", "", "")
    if not (owner and slash and name) or "/" in name or any(c.isspace() for c in repository):
        raise ValidationFailed(
            "must be a repository's full name, owner/name (for example octo-org/octo-repo)",
            field="config.repository",
        )


async def _check_exists(
    session: AsyncSession, model: type[Monitor] | type[Schedule], tenant_id: str, object_id: Any, field: str
) -> None:
    if object_id is None:
        return
    found = (
        await session.execute(
            select(model.id).where(model.id == str(object_id), model.tenant_id == tenant_id)
        )
    ).scalar_one_or_none()
    if found is None:
        raise ValidationFailed(f"no {model.__tablename__[:-1]} {object_id!r}", field=field)


async def _audit(session: AsyncSession, principal: Principal, action: str, kind: str, object_id: str) -> None:
    await session.execute(
        insert(AuditEntry), [audit_row(principal.tenant_id, principal.actor, action, kind, object_id)]
    )


async def get_trigger(session: AsyncSession, tenant_id: str, trigger_id: str) -> Trigger:
    trigger = (
        await session.execute(
            select(Trigger).where(
                Trigger.id == trigger_id, Trigger.tenant_id == tenant_id, Trigger.deleted.is_(False)
            )
        )
    ).scalar_one_or_none()
    if trigger is None:
        raise NotFound(f"no trigger {trigger_id!r}")
    return trigger


async def list_triggers(
    session: AsyncSession, tenant_id: str, *, limit: int, cursor: str | None
) -> list[Trigger]:
    query = select(Trigger).where(Trigger.tenant_id == tenant_id, Trigger.deleted.is_(False))
    if cursor is not None:
        query = query.where(Trigger.id > cursor)
    return list((await session.execute(query.order_by(Trigger.id).limit(limit))).scalars())


async def delete_trigger(session: AsyncSession, principal: Principal, trigger_id: str) -> None:
    trigger = await get_trigger(session, principal.tenant_id, trigger_id)
    trigger.deleted = True
    trigger.is_active = False
    await _audit(session, principal, "trigger.deleted", "trigger", trigger_id)


async def history(
    session: AsyncSession, tenant_id: str, trigger_id: str, *, limit: int, cursor: str | None
) -> list[TriggerFiring]:
    await get_trigger(session, tenant_id, trigger_id)
    query = select(TriggerFiring).where(TriggerFiring.trigger_id == trigger_id)
    if cursor is not None:
        query = query.where(TriggerFiring.id < cursor)
    return list((await session.execute(query.order_by(TriggerFiring.id.desc()).limit(limit))).scalars())


# -- firing ---------------------------------------------------------------------------------------------------


def digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


async def fire(
    rt: Runtime, trigger: Trigger, payload: dict[str, Any], *, source: str, call_now: bool = True
) -> TriggerFiring:
    """Fire ``trigger`` with ``payload``: record the firing, then act (the agent call happens after commit).

    With ``call_now`` false the agent call is left owed, for :func:`recover` to make: event readers fire that
    way so they never wait on an agent while holding their cursor."""
    firing, data = _new_firing(trigger, payload, source)
    async with rt.sessions.begin() as session:
        await _record(rt, session, trigger, firing, data, source=source, call_now=call_now)
    if firing.outcome == "dispatching" and call_now:
        await _call_agent(rt, trigger, firing, data)
    return firing


async def fire_in(
    rt: Runtime, session: AsyncSession, trigger: Trigger, payload: dict[str, Any], *, source: str
) -> TriggerFiring:
    """Fire within the caller's transaction, the agent call left owed (:func:`recover` makes it after commit).

    An agent's ``fire_trigger`` tool fires this way, so the firing and the step that records it commit together.
    """
    firing, data = _new_firing(trigger, payload, source)
    await _record(rt, session, trigger, firing, data, source=source, call_now=False)
    return firing


def _new_firing(
    trigger: Trigger, payload: dict[str, Any], source: str
) -> tuple[TriggerFiring, dict[str, Any]]:
    """A firing with its task rendered from the payload (or the reason it could not be), and the data used."""
    data = payloads.flatten_github(payload) if trigger.trigger_type == "github" else payload
    firing = TriggerFiring(
        id=new_id("fir"), tenant_id=trigger.tenant_id, trigger_id=trigger.id, source=source,
        payload_digest=digest(payload), fired_at=utcnow(), outcome="failed",
    )  # fmt: skip
    try:
        firing.task = payloads.render(trigger.task_template, data)
    except payloads.MissingField as exc:
        firing.error = f"task_template: {exc}"
    return firing, data


async def _record(
    rt: Runtime,
    session: AsyncSession,
    trigger: Trigger,
    firing: TriggerFiring,
    data: dict[str, Any],
    *,
    source: str,
    call_now: bool,
) -> None:
    """Store a firing with its immediate effect (a message action's message), the count, audit and event."""
    now = firing.fired_at
    if firing.task is not None and trigger.action.get("type") == "message":
        firing.outcome, firing.message_id, firing.error = await _send(rt, session, trigger, firing.task)
    elif firing.task is not None:
        # The agent call is owed until settled: this process makes it at once, and should it die first,
        # the lease runs out and :func:`recover` makes it from the sealed payload.
        firing.outcome = "dispatching"
        firing.payload = rt.credentials.seal({"data": data})
        firing.next_attempt_at = now + CALL_LEASE if call_now else now
    session.add(firing)
    await session.execute(
        update(Trigger)
        .where(Trigger.id == trigger.id)
        .values(fire_count=Trigger.fire_count + 1, last_fired_at=now)
    )
    await session.execute(
        insert(AuditEntry),
        [audit_row(trigger.tenant_id, f"trigger:{trigger.id}", "trigger.fired", "trigger", trigger.id,
                   {"source": source, "outcome": firing.outcome, "firing_id": firing.id}, at=now)],
    )  # fmt: skip
    detail = {
        "source": source,
        "firing_id": firing.id,
        "task": firing.task,
        "payload_digest": firing.payload_digest,
    }
    await session.execute(
        insert(Event), [event_row(trigger.tenant_id, "trigger.fired", trigger.id, detail, at=now)]
    )


async def _send(
    rt: Runtime,
    session: AsyncSession,
    trigger: Trigger,
    content: str,
    target: dict[str, str] | None = None,
    *,
    metadata: dict[str, Any] | None = None,
) -> tuple[str, str | None, str | None]:
    """One message as the trigger's agent, to ``target`` (default: the trigger's own ``action`` recipient)."""
    target = target or {
        "platform": str(trigger.action.get("platform") or ""),
        "recipient_id": str(trigger.action.get("recipient_id") or ""),
    }
    principal = Principal(tenant_id=trigger.tenant_id, key_id=trigger.id, is_admin=False, kind="trigger")
    intent = Intent(agent_id=trigger.agent_id, platform=target.get("platform") or None,
                    recipient_id=target.get("recipient_id") or None, contact_id=target.get("contact_id"),
                    content=content, governance_metadata=dict(metadata or {}))  # fmt: skip
    try:
        async with session.begin_nested():
            prepared = await messages.prepare(rt, session, principal, intent)
            await messages.write(rt, session, [prepared])
    except RequestError as exc:
        return "failed", None, f"{exc.field + ': ' if exc.field else ''}{exc.detail}"
    return str(prepared.values["status"]), str(prepared.values["id"]), None


class _AlreadySettled(HeraldError):
    """Another process settled this firing while our call was out: our outcome must not be written twice."""


async def _call_agent(rt: Runtime, trigger: Trigger, firing: TriggerFiring, data: dict[str, Any]) -> None:
    async with rt.sessions() as session:
        agent = await session.get(Agent, (trigger.tenant_id, trigger.agent_id))
    body = {"trigger_id": trigger.id, "firing_id": firing.id, "name": trigger.name, "trigger_type": trigger.trigger_type,
            "workspace_id": trigger.workspace_id, "task": firing.task, "payload": data}  # fmt: skip
    answer: callbacks.AgentAnswer | None = None
    outcome, error = "completed", None
    try:
        answer = await rt.agents.ask(agent, "trigger.fired", body, origin=f"trigger_firing:{firing.id}",
                                     message_id=firing.id, task=firing.task or trigger.name)  # fmt: skip
    except callbacks.CallbackFailed as exc:
        outcome, error = "callback_failed", str(exc)
    try:
        outcome, message_id, error = await _settle(rt, trigger, firing.id, answer, outcome, error)
    except _AlreadySettled:
        return
    firing.outcome, firing.error, firing.message_id = outcome, error, message_id
    firing.answer = answer.answer if answer else None


def _answer_target(trigger: Trigger, answer: callbacks.AgentAnswer) -> dict[str, str] | None:
    """The trigger's own recipient (``action.platform``), else the agent's default recipient."""
    if trigger.action.get("platform"):
        return {"platform": str(trigger.action["platform"]),
                "recipient_id": str(trigger.action.get("recipient_id") or "")}  # fmt: skip
    return answer.default_target


async def _settle(
    rt: Runtime,
    trigger: Trigger,
    firing_id: str,
    answer: callbacks.AgentAnswer | None,
    outcome: str,
    error: str | None,
) -> tuple[str, str | None, str | None]:
    """Send the answer's message and settle the firing in one transaction, so a firing is answered once.

    An answer with nowhere to go is kept on the firing, which ends ``answered``."""
    message_id = None
    async with rt.sessions.begin() as session:
        if answer is not None and answer.content is not None:
            target = _answer_target(trigger, answer)
            if target is None:
                outcome = "answered"
            else:
                outcome, message_id, error = await _send(rt, session, trigger, answer.content, target,
                                                         metadata=answer.metadata)  # fmt: skip
        settled = await session.execute(
            update(TriggerFiring)
            .where(TriggerFiring.id == firing_id, TriggerFiring.outcome == "dispatching")
            .values(outcome=outcome, error=error, message_id=message_id, payload=None, next_attempt_at=None,
                    answer=answer.answer if answer else None)
        )  # fmt: skip
        if settled.rowcount == 0:  # type: ignore[attr-defined]
            raise _AlreadySettled
    return outcome, message_id, error


async def recover(rt: Runtime, *, limit: int = 20) -> int:
    """Make the agent calls of firings whose process died before settling them; returns how many."""
    now = utcnow()
    async with rt.sessions.begin() as session:
        owed = await claims.claim(
            session,
            select(TriggerFiring)
            .where(TriggerFiring.outcome == "dispatching", TriggerFiring.next_attempt_at <= now)
            .order_by(TriggerFiring.next_attempt_at)
            .limit(limit),
            lease=claims.hold(TriggerFiring.next_attempt_at, CALL_LEASE),
        )
        triggers = {
            t.id: t
            for t in (
                await session.execute(select(Trigger).where(Trigger.id.in_({f.trigger_id for f in owed})))
            ).scalars()
        }
    calls = []
    for firing in owed:
        trigger = triggers.get(firing.trigger_id)
        if trigger is None or firing.payload is None:
            async with rt.sessions.begin() as session:
                await session.execute(
                    update(TriggerFiring)
                    .where(TriggerFiring.id == firing.id)
                    .values(
                        outcome="failed", error="the trigger or its payload is gone", next_attempt_at=None
                    )
                )
            continue
        data = rt.credentials.open(firing.payload)["data"]
        calls.append(_call_agent(rt, trigger, firing, data))
    await asyncio.gather(*calls)
    return len(owed)


# -- webhook endpoints ----------------------------------------------------------------------------------------


async def create_endpoint(
    rt: Runtime,
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    trigger_id: str,
    workspace_id: str | None,
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it and its secret (shown this once)."""
    try:
        await get_trigger(session, principal.tenant_id, trigger_id)
    except NotFound as exc:
        raise ValidationFailed(f"no trigger {trigger_id!r}", field="trigger_id") from exc
    secret = new_webhook_secret()
    endpoint = WebhookEndpoint(
        id=new_id("whk"), tenant_id=principal.tenant_id, name=name, workspace_id=workspace_id, trigger_id=trigger_id,
        url_path=pysecrets.token_urlsafe(24), secret=rt.credentials.seal({"secret": secret}), rate_per_minute=120,
        deleted=False, created_at=utcnow(),
    )  # fmt: skip
    session.add(endpoint)
    await session.flush()
    await _audit(session, principal, "webhook.created", "webhook", endpoint.id)
    return endpoint, secret


async def get_endpoint(session: AsyncSession, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    endpoint = (
        await session.execute(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id == endpoint_id,
                WebhookEndpoint.tenant_id == tenant_id,
                WebhookEndpoint.deleted.is_(False),
            )
        )
    ).scalar_one_or_none()
    if endpoint is None:
        raise NotFound(f"no webhook {endpoint_id!r}")
    return endpoint


async def list_endpoints(
    session: AsyncSession, tenant_id: str, *, limit: int, cursor: str | None
) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant_id, WebhookEndpoint.deleted.is_(False)
    )
    if cursor is not None:
        query = query.where(WebhookEndpoint.id > cursor)
    return list((await session.execute(query.order_by(WebhookEndpoint.id).limit(limit))).scalars())


async def regenerate_secret(
    rt: Runtime, session: AsyncSession, principal: Principal, endpoint_id: str
) -> tuple[WebhookEndpoint, str]:
    endpoint = await get_endpoint(session, principal.tenant_id, endpoint_id)
    secret = new_webhook_secret()
    endpoint.secret = rt.credentials.seal({"secret": secret})
    await _audit(session, principal, "webhook.secret_regenerated", "webhook", endpoint_id)
    return endpoint, secret


def _github_unwanted(config: dict[str, Any], event: str | None, payload: dict[str, Any]) -> str | None:
    """Why a GitHub delivery is not for this trigger, or None when it is.

    One GitHub App or organisation hook can send every repository's events to the same URL, so a trigger
    naming ``config.repository`` (``owner/name``) fires only for that repository. GitHub treats names
    case-insensitively (``Owner/Repo`` and ``owner/repo`` are one repository), so the comparison does too.
    """
    wanted_event = config.get("event")
    if wanted_event and event != wanted_event:
        return f"event {event!r} is not {wanted_event!r}"
    wanted_repo = config.get("repository")
    if wanted_repo:
        repository = payload.get("repository")
        name = repository.get("full_name") if isinstance(repository, dict) else None
        if not isinstance(name, str) or name.casefold() != str(wanted_repo).casefold():
            return f"repository {name!r} is not {wanted_repo!r}"
    return None


async def delete_endpoint(session: AsyncSession, principal: Principal, endpoint_id: str) -> None:
    endpoint = await get_endpoint(session, principal.tenant_id, endpoint_id)
    endpoint.deleted = True
    await _audit(session, principal, "webhook.deleted", "webhook", endpoint_id)


class _Window:
    """Requests per endpoint in the current minute (in-process; each API process limits its own share)."""

    def __init__(self) -> None:
        self.counts: dict[str, tuple[int, int]] = {}

    def allow(self, endpoint_id: str, per_minute: int) -> bool:
        minute = int(time.time() // 60)
        current_minute, count = self.counts.get(endpoint_id, (minute, 0))
        if current_minute != minute:
            count = 0
        if count >= per_minute:
            return False
        if len(self.counts) > 100_000:
            self.counts.clear()
        self.counts[endpoint_id] = (minute, count + 1)
        return True


RATE = _Window()


async def receive(rt: Runtime, url_path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """An incoming webhook: verify, refuse replays, then fire the endpoint's trigger."""
    async with rt.sessions() as session:
        endpoint = (
            await session.execute(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.url_path == url_path, WebhookEndpoint.deleted.is_(False)
                )
            )
        ).scalar_one_or_none()
    if endpoint is None:
        raise NotFound("no such webhook")
    if not RATE.allow(endpoint.id, endpoint.rate_per_minute):
        raise TooManyRequests(f"more than {endpoint.rate_per_minute} requests this minute")
    verified = verify(str(rt.credentials.open(endpoint.secret)["secret"]), headers, body)
    payload = jsonbody.parse(body or b"{}")
    if not isinstance(payload, dict):
        payload = {"data": payload}
    if verified.delivery_id:
        try:
            async with rt.sessions.begin() as session:
                session.add(
                    WebhookDelivery(
                        endpoint_id=endpoint.id, delivery_id=verified.delivery_id, received_at=utcnow()
                    )
                )
        except IntegrityError as exc:
            raise Conflict("this delivery id was already received (replay)", field="webhook-id") from exc
    async with rt.sessions() as session:
        trigger = await get_trigger(session, endpoint.tenant_id, endpoint.trigger_id)
    if not trigger.is_active:
        return {"accepted": False, "reason": "the trigger is not active"}
    if trigger.trigger_type == "github":
        unwanted = _github_unwanted(trigger.config, headers.get("x-github-event"), payload)
        if unwanted:
            return {"accepted": False, "reason": unwanted}
    try:
        firing = await fire(
            rt,
            trigger,
            payload,
            source=trigger.trigger_type if trigger.trigger_type == "github" else "webhook",
        )
    except Exception:
        # Not fired: forget the delivery id, so the sender's retry is taken rather than refused as a replay.
        if verified.delivery_id:
            async with rt.sessions.begin() as session:
                await session.execute(
                    delete(WebhookDelivery).where(
                        WebhookDelivery.endpoint_id == endpoint.id,
                        WebhookDelivery.delivery_id == verified.delivery_id,
                    )
                )
        raise
    return {"accepted": True, "firing_id": firing.id, "outcome": firing.outcome}
