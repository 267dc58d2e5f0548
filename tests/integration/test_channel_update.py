"""``PATCH /api/v1/channels/{id}``: a channel changed in place, its id kept. Credentials are partial (merged over
the stored ones, validated whole by the provider), never answered back, audited by name only; another tenant's
channel is a 404. On SQLite and PostgreSQL; the provider is a transport that checks the token it is sent."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import select

from herald.runtime import Runtime
from herald.storage.models import AuditEntry, Channel
from tests.conftest import new_tenant, use_transport

OLD_TOKEN = "xoxb-old-token-rotated-away-0001"
NEW_TOKEN = "xoxb-new-token-after-rotation-0002"
SIGNING = "slack-signing-secret-kept-0003"
SECRETS = (OLD_TOKEN, NEW_TOKEN, SIGNING)


def slack_answer(request: httpx.Request) -> httpx.Response:
    assert request.url.host == "slack.com"
    return httpx.Response(200, json={"ok": True, "ts": "1700000000.000200"})


async def slack_channel(client: httpx.AsyncClient, auth: dict[str, str], **extra: Any) -> dict[str, Any]:
    body = {"platform": "slack", "provider": "slack", "name": "Ops", "is_default": True,
            "credentials": {"bot_token": OLD_TOKEN, "signing_secret": SIGNING}, **extra}  # fmt: skip
    created = await client.post("/api/v1/channels", json=body, headers=auth)
    assert created.status_code == 201, created.text
    made: dict[str, Any] = created.json()
    return made


async def stored(rt: Runtime, channel_id: str) -> tuple[Channel, dict[str, Any]]:
    async with rt.sessions() as session:
        row = (await session.execute(select(Channel).where(Channel.id == channel_id))).scalar_one()
    return row, rt.credentials.open(row.credentials)


async def test_one_secret_is_rotated_and_the_others_stay(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    seen = use_transport(rt, slack_answer)
    channel = await slack_channel(client, auth)
    cached = await rt.channel(channel["id"])  # the adapter this process keeps for sends
    assert cached.config.credentials["bot_token"] == OLD_TOKEN

    patched = await client.patch(
        f"/api/v1/channels/{channel['id']}", json={"credentials": {"bot_token": NEW_TOKEN}}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    answer = patched.json()
    assert answer["id"] == channel["id"]
    assert answer["credentials_set"] == ["bot_token", "signing_secret"]
    assert (answer["name"], answer["is_default"], answer["platform"]) == ("Ops", True, "slack")
    for secret in SECRETS:
        assert secret not in patched.text

    row, opened = await stored(rt, channel["id"])
    assert opened == {"bot_token": NEW_TOKEN, "signing_secret": SIGNING}
    assert NEW_TOKEN.encode() not in row.credentials
    assert (await rt.channel(channel["id"])).config.credentials["bot_token"] == NEW_TOKEN  # cache dropped

    tested = await client.post(
        f"/api/v1/channels/{channel['id']}/test", json={"recipient_id": "C0OPS"}, headers=auth
    )
    assert tested.json()["ok"] is True, tested.text
    assert [r.headers["authorization"] for r in seen] == [f"Bearer {NEW_TOKEN}"]


async def test_the_other_fields_change_and_the_default_moves(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await slack_channel(client, auth, rate_per_second=5)
    second = await slack_channel(client, auth, name="Second", is_default=False)
    path = f"/api/v1/channels/{first['id']}"
    renamed = await client.patch(
        path, json={"name": "Ops renamed", "cost_per_message": 0.25, "rate_per_second": None}, headers=auth
    )
    assert renamed.status_code == 200, renamed.text
    body = renamed.json()
    assert (body["name"], body["cost_per_message"], body["rate_per_second"]) == ("Ops renamed", 0.25, None)
    assert body["is_default"] is True  # not sent: kept
    assert (await rt.channel(first["id"])).config.cost_per_message == 0.25

    moved = await client.patch(f"/api/v1/channels/{second['id']}", json={"is_default": True}, headers=auth)
    assert moved.json()["is_default"] is True
    assert (await client.get(path, headers=auth)).json()["is_default"] is False
    _, opened = await stored(rt, first["id"])
    assert opened == {"bot_token": OLD_TOKEN, "signing_secret": SIGNING}  # untouched when not sent
    assert (await client.patch(path, json={}, headers=auth)).status_code == 200  # nothing to change


async def test_bad_input_is_422_naming_the_field_and_changes_nothing(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    channel = await slack_channel(client, auth)
    path = f"/api/v1/channels/{channel['id']}"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"credentials": {"bot_token": "short"}}, "credentials.bot_token"),
        ({"credentials": {"bot_token": None}}, "credentials.bot_token"),  # a required one cannot be dropped
        ({"credentials": {"webhook_url": "https://example.com/x"}}, "credentials.webhook_url"),
        ({"name": ""}, "name"),
        ({"cost_per_message": -1}, "cost_per_message"),
        ({"platform": "sms"}, "platform"),  # not changeable: another platform is another channel
        ({"base_url": "not a url"}, "base_url"),
    ]
    for body, field in cases:
        refused = await client.patch(path, json=body, headers=auth)
        assert refused.status_code == 422, (body, refused.text)
        assert [e["field"] for e in refused.json()["errors"]][0] == field, (body, refused.text)
        for secret in SECRETS:
            assert secret not in refused.text
    row, opened = await stored(rt, channel["id"])
    assert opened == {"bot_token": OLD_TOKEN, "signing_secret": SIGNING}
    assert row.name == "Ops"

    signal = await client.post(
        "/api/v1/channels",
        json={"platform": "signal", "provider": "signal_cli_rest", "name": "sig",
              "credentials": {"number": "+4412345678"}, "base_url": "http://127.0.0.1:8080"},
        headers=auth,
    )  # fmt: skip
    assert signal.status_code == 201, signal.text
    cleared = await client.patch(
        f"/api/v1/channels/{signal.json()['id']}", json={"base_url": None}, headers=auth
    )
    assert cleared.status_code == 422
    assert cleared.json()["errors"][0]["field"] == "base_url"


async def test_another_tenants_channel_is_not_found(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    channel = await slack_channel(client, auth)
    globex = await new_tenant(rt, "globex")
    for body in ({"credentials": {"bot_token": NEW_TOKEN}}, {"name": "stolen"}):
        answer = await client.patch(f"/api/v1/channels/{channel['id']}", json=body, headers=globex)
        assert answer.status_code == 404, answer.text
    missing = await client.patch("/api/v1/channels/chn_missing", json={"name": "x"}, headers=auth)
    assert missing.status_code == 404
    row, opened = await stored(rt, channel["id"])
    assert (row.name, opened["bot_token"]) == ("Ops", OLD_TOKEN)


async def test_the_change_is_audited_by_field_names_never_values(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    channel = await slack_channel(client, auth)
    patched = await client.patch(
        f"/api/v1/channels/{channel['id']}",
        json={"name": "Ops 2", "credentials": {"bot_token": NEW_TOKEN, "signing_secret": SIGNING}},
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    async with rt.sessions() as session:
        rows = list(
            (
                await session.execute(select(AuditEntry).where(AuditEntry.action == "channel.updated"))
            ).scalars()
        )
    assert len(rows) == 1
    assert rows[0].object_id == channel["id"]
    # signing_secret was sent with its stored value: unchanged, so not named.
    assert rows[0].detail == {"changed": ["name", "credentials.bot_token"]}
    text = json.dumps(rows[0].detail) + (await client.get("/api/v1/audit", headers=auth)).text
    for secret in SECRETS:
        assert secret not in text
