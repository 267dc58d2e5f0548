"""Every pattern kind found in a constructed history, and nothing in a control history of near misses."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from herald.core.errors import ValidationFailed
from herald.learning import model, patterns
from herald.runtime import Runtime
from herald.storage.fingerprint import PG_SQL, content_fingerprint
from herald.storage.models import Message
from tests.integration.learning.history import NOW, control, day, showing, tenant


async def _detect(rt: Runtime, tenant_id: str, **kwargs: object) -> list[model.Pattern]:
    return await patterns.detect(rt.sessions, tenant_id, now=NOW, **kwargs)  # type: ignore[arg-type]


async def test_each_kind_is_found_in_its_history(rt: Runtime) -> None:
    h = await tenant(rt, "learner")
    out = showing(h)
    await h.write(rt)
    found: dict[str, list[model.Pattern]] = {}
    for p in await _detect(rt, h.tenant_id):
        found.setdefault(p.kind, []).append(p)
    assert sorted(found) == sorted(model.KINDS)

    [repeated] = found[model.REPEATED_SEND]
    weekdays = sorted({day(n, 9).isoweekday() for n in range(1, 5)})
    cron_days = ",".join(str(d) for d in sorted(w % 7 for w in weekdays))
    assert repeated.evidence == {"messages": out["repeated"][::-1]}  # oldest first
    assert repeated.facts == {
        "agent_id": "ops", "platform": "slack", "recipient_id": "C1", "contact_id": None,
        "content": "Daily report: 3 open tickets on 2026-03-19", "subject": None, "hour": 9, "minute": 0,
        "weekdays": weekdays, "timezone": "UTC", "cron": f"0 9 * * {cron_days}", "count": 4,
    }  # fmt: skip
    assert repeated.agent_id == "ops"
    assert 0 < repeated.confidence <= 1

    [best] = found[model.BEST_HOUR]
    assert best.facts == {"platform": "slack", "recipient_id": "U2", "contact_id": None, "hour": 8,
                          "timezone": "UTC", "samples": 4, "median_response_seconds": 60.0}  # fmt: skip
    assert len(best.evidence["messages"]) == 3
    assert set(best.evidence["messages"]) < set(out["best_hour"])

    [noisy] = found[model.NOISY_MONITOR]
    assert noisy.facts == {"monitor_id": out["monitor"], "name": "disk", "flaps": 4,
                           "window_seconds": 3 * 3600 + 300, "median_firing_seconds": 300.0}  # fmt: skip
    assert noisy.evidence["monitors"] == [out["monitor"]]
    assert len(noisy.evidence["alerts"]) == 8

    failing = {(p.facts["scope"], p.facts["channel_id"]): p.facts for p in found[model.FAILING_CHANNEL]}
    assert failing == {
        ("overall", out["sms"]): {"scope": "overall", "channel_id": out["sms"], "platform": "sms",
                                  "recipient_id": None, "contact_id": None, "attempts": 10, "failures": 8,
                                  "failure_rate": 0.8},
        ("recipient", out["email"]): {"scope": "recipient", "channel_id": out["email"], "platform": "email",
                                      "recipient_id": "bad@example.com", "contact_id": None, "attempts": 6,
                                      "failures": 5, "failure_rate": 0.833},
    }  # fmt: skip

    [waiting] = found[model.UNANSWERED_CONVERSATION]
    assert waiting.facts["conversation_id"] == out["conversation"]
    assert waiting.facts["waiting_seconds"] == 3 * 3600
    assert waiting.facts["user_id"] == "U9"

    [promotion] = found[model.PROMOTION_CANDIDATE]
    assert promotion.facts == {"agent_id": "intern1", "level": "INTERN", "next_level": "SUPERVISED",
                               "approved_unchanged": 20}  # fmt: skip
    assert len(promotion.evidence["approvals"]) == 20


async def test_a_control_history_shows_nothing(rt: Runtime) -> None:
    h = await tenant(rt, "control")
    control(h)
    await h.write(rt)
    assert await _detect(rt, h.tenant_id) == []


async def test_filters_by_kind_and_agent_and_stays_in_its_tenant(rt: Runtime) -> None:
    h, other = await tenant(rt, "learner"), await tenant(rt, "bystander")
    showing(h)
    await h.write(rt)
    only = await _detect(rt, h.tenant_id, kinds=[model.PROMOTION_CANDIDATE])
    assert [p.kind for p in only] == [model.PROMOTION_CANDIDATE]
    mine = await _detect(rt, h.tenant_id, agent_id="intern1")
    assert [p.kind for p in mine] == [model.PROMOTION_CANDIDATE]
    assert await _detect(rt, other.tenant_id) == []
    with pytest.raises(ValidationFailed):
        await _detect(rt, h.tenant_id, kinds=["nonsense"])


async def test_lanes_find_what_one_session_finds(rt: Runtime) -> None:
    """PostgreSQL runs the detectors in concurrent sessions of their own; SQLite one after the other. Either
    way the answer is the same as one lane's."""
    h = await tenant(rt, "learner")
    showing(h)
    await h.write(rt)
    one = await _detect(rt, h.tenant_id, settings=patterns.PatternSettings(lanes=1))
    assert {p.kind for p in one} == set(model.KINDS)
    assert await _detect(rt, h.tenant_id, settings=patterns.PatternSettings(lanes=3)) == one
    assert await _detect(rt, h.tenant_id) == one


async def test_each_message_carries_its_content_fingerprint(rt: Runtime) -> None:
    """Written with the row by the column default (the history inserts with insert(Message)); on PostgreSQL
    the SQL the migration and the benchmark use computes the same number."""
    h = await tenant(rt, "learner")
    out = showing(h)
    await h.write(rt)
    async with rt.sessions() as session:
        rows = (
            await session.execute(
                select(Message.content, Message.content_fingerprint).where(Message.id.in_(out["repeated"]))
            )
        ).all()
        assert rows
        assert all(f == content_fingerprint(c) for c, f in rows)
        assert len({f for _, f in rows}) == 1  # the same report with other numbers
        if session.get_bind().dialect.name == "postgresql":
            sql = text(
                f"SELECT content, {PG_SQL.format(column='content')} FROM messages WHERE tenant_id = :t"
            )
            computed = (await session.execute(sql, {"t": h.tenant_id})).all()
            assert computed
            assert all(f == content_fingerprint(c) for c, f in computed)
