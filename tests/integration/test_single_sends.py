"""Single sends without an Idempotency-Key arriving together share one transaction (group commit), and each is
answered only once its own message is stored; one message the database refuses fails alone."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from herald.pipeline import accept
from herald.runtime import Runtime
from herald.storage.models import AuditEntry, Message
from tests.conftest import webhook_channel

BODY = {"agent_id": "bot", "platform": "slack", "recipient_id": "C12345", "content": "hello"}


@pytest.fixture
async def ready(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await webhook_channel(client, auth, "slack")
    r = await client.post("/api/v1/agents", json={"id": "bot", "maturity_level": "AUTONOMOUS"}, headers=auth)
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/messaging/proactive/send", json=BODY, headers=auth)  # caches warm
    assert r.status_code == 201, r.text


async def stored(rt: Runtime) -> dict[str, str]:
    async with rt.sessions() as session:
        rows = await session.execute(select(Message.id, Message.content))
        return dict(rows.all())


async def test_sends_arriving_together_share_a_transaction(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, ready: None
) -> None:
    commits: list[int] = []

    def committed(conn: Any) -> None:
        commits.append(1)

    event.listen(rt.engine.sync_engine, "commit", committed)
    try:
        answers = await asyncio.gather(*(
            client.post("/api/v1/messaging/proactive/send", json={**BODY, "content": f"n{i}"}, headers=auth)
            for i in range(20)
        ))  # fmt: skip
    finally:
        event.remove(rt.engine.sync_engine, "commit", committed)
    assert [a.status_code for a in answers] == [201] * 20
    found = await stored(rt)
    assert {found[a.json()["id"]] for a in answers} == {f"n{i}" for i in range(20)}  # each answer is its row
    assert len(commits) <= 10, f"{len(commits)} transactions for 20 sends"
    async with rt.sessions() as session:
        audited = set((await session.execute(select(AuditEntry.object_id))).scalars())
    assert {a.json()["id"] for a in answers} <= audited


async def test_a_message_the_database_refuses_fails_alone(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, ready: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = accept.prepare

    async def prepare(*args: Any, **kwargs: Any) -> accept.Prepared:
        prepared = await real(*args, **kwargs)
        if prepared.values["content"] == "bad":
            prepared.values["status"] = None  # NOT NULL: this row alone cannot be written
        return prepared

    monkeypatch.setattr(accept, "prepare", prepare)
    contents = ["ok1", "bad", "ok2", "ok3"]
    answers = await asyncio.gather(*(
        client.post("/api/v1/messaging/proactive/send", json={**BODY, "content": c}, headers=auth) for c in contents
    ))  # fmt: skip
    codes = dict(zip(contents, [a.status_code for a in answers], strict=True))
    assert codes["bad"] != 201
    assert [codes[c] for c in ("ok1", "ok2", "ok3")] == [201] * 3
    assert {"ok1", "ok2", "ok3"} <= set((await stored(rt)).values())
    assert "bad" not in (await stored(rt)).values()


async def test_a_prepared_message_is_made_into_an_orm_object_once(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime, ready: None
) -> None:
    made: list[str] = []

    def counted(target: Message, args: Any, kwargs: dict[str, Any]) -> None:
        made.append(kwargs["id"])

    event.listen(Message, "init", counted)
    try:
        r = await client.post("/api/v1/messaging/proactive/send", json=BODY, headers=auth)
    finally:
        event.remove(Message, "init", counted)
    assert r.status_code == 201, r.text
    assert made == [r.json()["id"]]  # the answer is built from it; logging reads the row's values
