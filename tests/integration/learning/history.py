"""Constructed histories, written as real rows: for each pattern kind one that shows it and a control one that
comes close without showing it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, text

from herald.admin.tenants import get_or_create_tenant
from herald.core.ids import new_id
from herald.runtime import Runtime
from herald.storage import responses
from herald.storage.models import (
    Agent,
    Approval,
    Attempt,
    Channel,
    Conversation,
    Event,
    InboundMessage,
    Message,
    Monitor,
    MonitorAlert,
)
from herald.storage.types import utcnow

# Recent enough for the API, which looks back from the real clock.
NOW = utcnow().replace(second=0, microsecond=0)


def day(n: int, hour: int, minute: int = 0) -> datetime:
    """``n`` days before NOW's date, at hour:minute UTC."""
    return (NOW - timedelta(days=n)).replace(hour=hour, minute=minute, second=0)


class History:
    """Rows for one tenant, written together by :meth:`write`."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.rows: dict[Any, list[dict[str, Any]]] = {}

    def add(self, model: Any, **values: Any) -> dict[str, Any]:
        values.setdefault("tenant_id", self.tenant_id)
        self.rows.setdefault(model, []).append(values)
        return values

    def agent(self, agent_id: str, level: str = "AUTONOMOUS") -> None:
        self.add(Agent, id=agent_id, name=agent_id, maturity_level=level)

    def channel(self, platform: str = "slack") -> str:
        row = self.add(Channel, id=new_id("chn"), platform=platform, provider=platform, name=platform,
                       credentials=b"x")  # fmt: skip
        return str(row["id"])

    def message(self, at: datetime, **values: Any) -> str:
        row = {
            "id": new_id("msg"), "agent_id": "ops", "platform": "slack", "recipient_id": "C1",
            "content": "hello", "status": "sent", "priority": 5, "run_at": at, "attempts": 1, "max_attempts": 5,
            "governance_metadata": {}, "route_plan": [{"platform": "slack", "recipient_id": "C1"}],
            "created_at": at, "updated_at": at, "sent_at": at,
        }  # fmt: skip
        row.update(values)
        return str(self.add(Message, **row)["id"])

    def event(self, type_: str, subject_id: str, at: datetime) -> None:
        self.add(Event, id=new_id("evt"), type=type_, subject_id=subject_id, data={}, created_at=at)

    def attempt(self, message_id: str, channel_id: str, outcome: str, at: datetime) -> None:
        self.add(Attempt, id=new_id("att"), message_id=message_id, channel_id=channel_id, provider="twilio",
                 number=1, started_at=at, duration_ms=5.0, outcome=outcome)  # fmt: skip

    def monitor(self, name: str, agent_id: str | None = None) -> str:
        row = self.add(Monitor, id=new_id("mon"), name=name, agent_id=agent_id, condition={"metric": "x"},
                       status="active", state="ok", state_since=NOW)  # fmt: skip
        return str(row["id"])

    def alert(self, monitor_id: str, kind: str, at: datetime) -> str:
        row = self.add(MonitorAlert, id=new_id("alr"), monitor_id=monitor_id, kind=kind, status="sent",
                       triggered_at=at)  # fmt: skip
        return str(row["id"])

    def conversation(self, channel_id: str, user: str, agent_id: str | None = "ops") -> str:
        row = self.add(Conversation, id=new_id("cnv"), channel_id=channel_id, platform="slack", external_id=user,
                       agent_id=agent_id, created_at=NOW - timedelta(days=2))  # fmt: skip
        return str(row["id"])

    def inbound(self, conversation_id: str, channel_id: str, user: str, at: datetime) -> str:
        row = self.add(InboundMessage, id=new_id("inb"), channel_id=channel_id, conversation_id=conversation_id,
                       provider_message_id=new_id("p"), sender_id=user, body="hi?", sent_at=at, received_at=at,
                       status="routed")  # fmt: skip
        return str(row["id"])

    def approval(self, message_id: str, decision: str, at: datetime) -> str:
        row = self.add(Approval, id=new_id("apr"), message_id=message_id, decision=decision, approver="dana",
                       created_at=at)  # fmt: skip
        return str(row["id"])

    async def write(self, rt: Runtime) -> None:
        order = (Agent, Channel, Monitor, Conversation, Message, Event, Attempt, MonitorAlert, InboundMessage,
                 Approval)  # fmt: skip
        async with rt.sessions.begin() as session:
            for model in order:
                if self.rows.get(model):
                    await session.execute(insert(model), self.rows[model])
            # Rows inserted directly carry no answer times: fill them from the receipts and replies written
            # here, as migration 0028 does for history older than the columns (herald.storage.responses).
            for statement in responses.backfill_statements(rt.dialect):
                await session.execute(text(statement))


async def tenant(rt: Runtime, name: str) -> History:
    async with rt.sessions.begin() as session:
        row = await get_or_create_tenant(session, name)
    return History(row.id)


def showing(h: History) -> dict[str, Any]:
    """Every kind shown once; returns what the assertions need to know."""
    out: dict[str, Any] = {}
    h.agent("ops")
    # repeated send: the same report, numbers aside, around 09:00 on four days
    out["repeated"] = [
        h.message(day(n, hour, minute), content=f"Daily report: {n * 3} open tickets on 2026-03-{20 - n:02d}")
        for n, hour, minute in ((1, 9, 0), (2, 9, 4), (3, 8, 58), (4, 9, 2))
    ]
    # best hour: U2 reads messages sent at 08:00 within a minute, those sent at 15:00 after an hour
    out["best_hour"] = []
    for n in range(1, 6):  # four fast samples: an even count has its median at the lower middle
        if n < 5:
            fast = h.message(day(n, 8), recipient_id="U2", content=f"morning {'abcde'[n - 1]}", status="read")
            h.event("message.read", fast, day(n, 8, 1))
            out["best_hour"].append(fast)
        slow = h.message(day(n, 15), recipient_id="U2", content=f"afternoon {'abcde'[n - 1]}", status="read")
        h.event("message.read", slow, day(n, 16))
    # noisy monitor: four fire-and-resolve cycles of five minutes within four hours
    monitor = h.monitor("disk", agent_id="ops")
    for k in range(4):
        h.alert(monitor, "firing", day(2, 10 + k))
        h.alert(monitor, "resolved", day(2, 10 + k, 5))
    out["monitor"] = monitor
    # failing channels: sms fails overall; email fails for one recipient only
    sms, email = h.channel("sms"), h.channel("email")
    for k in range(10):
        m = h.message(day(3, 9, k), platform="sms", recipient_id=f"+1555000{k}", content=f"sms {'abcdefghij'[k]}",
                      channel_id=sms, route_plan=[{"platform": "sms"}])  # fmt: skip
        h.attempt(m, sms, "failed" if k < 8 else "sent", day(3, 9, k))
    for k in range(26):
        who = "bad@example.com" if k < 6 else f"ok{k}@example.com"
        m = h.message(day(4, 10, k), platform="email", recipient_id=who, content=f"mail {'abcdefghijklmnopqrstuvwxyz'[k]}",
                      channel_id=email, route_plan=[{"platform": "email"}])  # fmt: skip
        h.attempt(m, email, "failed" if k < 5 else "sent", day(4, 10, k))
    out["sms"], out["email"] = sms, email
    # unanswered: a person wrote three hours ago and nobody answered
    slack = h.channel("slack")
    conversation = h.conversation(slack, "U9")
    h.inbound(conversation, slack, "U9", NOW - timedelta(hours=3))
    out["conversation"] = conversation
    # promotion: an INTERN whose last 20 messages were all approved
    h.agent("intern1", "INTERN")
    for k in range(20):
        m = h.message(
            day(5, 9, k), agent_id="intern1", recipient_id="C7", content=f"draft {'abcdefghijklmnopqrst'[k]}"
        )
        h.approval(m, "approved", day(5, 10, k))
    return out


def control(h: History) -> None:
    """Near misses of every kind: none of them is a pattern."""
    h.agent("ops")
    # the same report at scattered hours; the same hour with different words; a campaign's regular sends
    for n, hour in ((1, 3), (2, 9), (3, 15), (4, 21)):
        h.message(day(n, hour), content=f"Daily report: {n} open tickets")
    for n, words in ((1, "alpha"), (2, "beta"), (3, "gamma")):
        h.message(day(n, 9), content=f"note {words}")
    for n in range(1, 5):
        h.message(day(n, 9), content="Weekly digest", governance_metadata={"campaign_id": "cmp_1"})
    # ... and a status sent at all hours, three times by chance at 09:00
    for n, hour in enumerate((9, 9, 9, 3, 5, 12, 14, 17, 20, 22), start=1):
        h.message(day(n, hour), recipient_id="C3", content=f"Status ping {n}")
    # best hour: as fast at 08:00 as at 15:00
    for n in range(1, 6):
        fast = h.message(day(n, 8), recipient_id="U2", content=f"morning {'abcde'[n - 1]}", status="read")
        h.event("message.read", fast, day(n, 8, 10))
        slow = h.message(day(n, 15), recipient_id="U2", content=f"afternoon {'abcde'[n - 1]}", status="read")
        h.event("message.read", slow, day(n, 15, 10))
    # monitors: alerts firing for hours; short flaps a day and more apart
    steady, rare = h.monitor("cpu"), h.monitor("queue")
    for k in range(3):
        h.alert(steady, "firing", day(k + 1, 1))
        h.alert(steady, "resolved", day(k + 1, 6))
        h.alert(rare, "firing", day(2 * k + 1, 10))
        h.alert(rare, "resolved", day(2 * k + 1, 10, 5))
    # channels: failures covered by a fallback; a channel failing rarely
    sms, email = h.channel("sms"), h.channel("email")
    for k in range(10):
        m = h.message(day(3, 9, k), platform="sms", recipient_id="+15550001", content=f"sms {'abcdefghij'[k]}",
                      channel_id=sms, route_plan=[{"platform": "sms"}, {"platform": "email"}])  # fmt: skip
        h.attempt(m, sms, "failed", day(3, 9, k))
        m = h.message(day(4, 9, k), platform="email", recipient_id="a@example.com", content=f"mail {'abcdefghij'[k]}",
                      channel_id=email, route_plan=[{"platform": "email"}])  # fmt: skip
        h.attempt(m, email, "failed" if k == 0 else "sent", day(4, 9, k))
    # conversations: one answered, one that has waited ten minutes only
    slack = h.channel("slack")
    answered, fresh = h.conversation(slack, "U8"), h.conversation(slack, "U9")
    h.inbound(answered, slack, "U8", NOW - timedelta(hours=3))
    h.message(NOW - timedelta(hours=2), conversation_id=answered, recipient_id="U8", content="answer")
    h.inbound(fresh, slack, "U9", NOW - timedelta(minutes=10))
    # approvals: the last 20 include a rejection; 19 approvals only; an AUTONOMOUS agent's old approvals
    for agent_id, level, decisions in (
        ("intern2", "INTERN", ["approved"] * 10 + ["rejected"] + ["approved"] * 9),
        ("intern3", "INTERN", ["approved"] * 19),
        ("senior", "AUTONOMOUS", ["approved"] * 20),
    ):
        h.agent(agent_id, level)
        for k, decision in enumerate(decisions):
            m = h.message(day(5, 9, k), agent_id=agent_id, recipient_id="C7",
                          content=f"draft {'abcdefghijklmnopqrst'[k]}")  # fmt: skip
            h.approval(m, decision, day(5, 10, k))
