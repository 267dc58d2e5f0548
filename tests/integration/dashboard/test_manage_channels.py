"""Channels from the dashboard (herald.web.dashboard.channels): a credentials form per provider, built from the
provider's own credentials model; secrets written, never shown; "Send test" through the API with the provider's
answer as a notice. On SQLite and PostgreSQL, through the httpx ASGI client; providers answered by a transport
that checks the requests Herald makes."""

from __future__ import annotations

import json
import re

import httpx
from sqlalchemy import select

from herald.providers import provider_class
from herald.runtime import Runtime
from herald.storage.models import Channel as ChannelRow
from herald.web.api.schemas import ChannelCreate
from tests.conftest import new_tenant, use_transport
from tests.integration.dashboard.test_manage import field_errors
from tests.integration.test_dashboard import sign_in

SLACK_TOKEN = "xoxb-dashboard-secret-0001"
SLACK_SIGNING = "slack-signing-secret-0002"
TELEGRAM_TOKEN = "123456:" + "T" * 35
TELEGRAM_SECRET = "tg-secret-token-0003"
SECRETS = (SLACK_TOKEN, SLACK_SIGNING, TELEGRAM_TOKEN, TELEGRAM_SECRET)


def providers_answer(request: httpx.Request) -> httpx.Response:
    """Slack's chat.postMessage and Telegram's sendMessage, each checking the token it was given."""
    body = json.loads(request.content)
    if request.url.host == "slack.com":
        assert request.url.path == "/api/chat.postMessage"
        assert request.headers["authorization"] == f"Bearer {SLACK_TOKEN}"
        if body["channel"] == "C0MISSING":
            return httpx.Response(200, json={"ok": False, "error": "channel_not_found"})
        return httpx.Response(200, json={"ok": True, "ts": "1700000000.000100"})
    assert request.url.host == "api.telegram.org"
    assert request.url.path == f"/bot{TELEGRAM_TOKEN}/sendMessage"
    assert body["text"] == "Herald test message"
    return httpx.Response(200, json={"ok": True, "result": {"message_id": 77}})


def notice(html: str) -> str:
    found = re.search(r'<div class="flash flash-(\w+)"[^>]*>([^<]*)</div>', html)
    assert found, html[:2000]
    return f"{found.group(1)}: {found.group(2)}"


async def channel_named(client: httpx.AsyncClient, auth: dict[str, str], name: str) -> dict[str, object]:
    items = (await client.get("/api/v1/channels", headers=auth)).json()["items"]
    found: dict[str, object] = next(c for c in items if c["name"] == name)
    return found


async def test_the_provider_comes_first_then_its_own_credentials_form(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await sign_in(client, auth)
    chooser = await client.get("/manage/channels/new")
    assert chooser.status_code == 200
    assert '<form method="get" action="/manage/channels/new"' in chooser.text
    assert '<option value="slack">' in chooser.text
    assert 'name="credentials.' not in chooser.text  # no credentials before a provider is chosen

    for provider in ("slack", "telegram", "smtp", "webhook"):
        page = await client.get("/manage/channels/new", params={"provider": provider})
        assert page.status_code == 200, provider
        model = provider_class(provider).credentials_model  # type: ignore[union-attr]
        for name, info in model.model_fields.items():
            assert f'data-field="credentials.{name}"' in page.text, (provider, name)
            control = re.search(rf'<(input|select)[^>]*name="credentials\.{name}"[^>]*>', page.text)
            assert control, (provider, name)
            if not info.repr:  # the provider keeps it out of repr: a write-only secret
                assert 'type="password"' in control.group(0), (provider, name)
        for name in ChannelCreate.model_fields:
            assert f'data-field="{name}' in page.text, (provider, name)
    slack = (await client.get("/manage/channels/new?provider=slack")).text
    assert 'name="credentials.host"' not in slack  # another provider's fields are not there
    assert (await client.get("/manage/channels/new?provider=carrier-pigeon")).status_code == 404


async def test_channels_created_from_two_providers_forms_keep_their_secrets_out_of_every_page(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    seen = use_transport(rt, providers_answer)
    token = await sign_in(client, auth)
    slack = await client.post(
        "/manage/channels/new",
        data={"csrf_token": token, "provider": "slack", "platform": "slack", "name": "Ops Slack",
              "credentials.bot_token": SLACK_TOKEN, "credentials.signing_secret": SLACK_SIGNING,
              "is_default.shown": "1", "is_default": "on", "cost_per_message": "0"},
    )  # fmt: skip
    assert slack.status_code == 303, slack.text
    assert slack.headers["location"] == "/manage/channels"
    telegram = await client.post(
        "/manage/channels/new",
        data={"csrf_token": token, "provider": "telegram", "platform": "telegram", "name": "Bot",
              "credentials.bot_token": TELEGRAM_TOKEN, "credentials.secret_token": TELEGRAM_SECRET},
    )  # fmt: skip
    assert telegram.status_code == 303, telegram.text

    made = await channel_named(client, auth, "Ops Slack")
    assert (made["provider"], made["platform"], made["is_default"]) == ("slack", "slack", True)
    assert made["credentials_set"] == ["bot_token", "signing_secret"]
    bot = await channel_named(client, auth, "Bot")
    assert bot["credentials_set"] == ["bot_token", "secret_token"]

    listed = await client.get("/manage/channels")
    assert "Created channel Bot." in listed.text
    assert "Ops Slack" in listed.text
    assert "bot_token, signing_secret" in listed.text
    pages = [listed.text, (await client.get("/interfaces")).text, (await client.get("/manage")).text]
    for page in pages:
        for secret in SECRETS:
            assert secret not in page

    # The stored credentials are the ones typed: Send test reaches each provider with them.
    tested = await client.post(
        f"/manage/channels/{bot['id']}/test", data={"csrf_token": token, "recipient_id": "4242"}
    )
    assert tested.status_code == 303
    assert notice((await client.get(tested.headers["location"])).text) == (
        "info: Test delivered by telegram (message id 77)."
    )
    delivered = await client.post(
        f"/manage/channels/{made['id']}/test", data={"csrf_token": token, "recipient_id": "C0OPS"}
    )
    assert notice((await client.get(delivered.headers["location"])).text) == (
        "info: Test delivered by slack (message id 1700000000.000100)."
    )
    refused = await client.post(
        f"/manage/channels/{made['id']}/test", data={"csrf_token": token, "recipient_id": "C0MISSING"}
    )
    shown = notice((await client.get(refused.headers["location"])).text)
    assert shown.startswith("error: Test not delivered: slack answered: "), shown
    assert "channel_not_found" in shown
    assert [r.url.host for r in seen] == ["api.telegram.org", "slack.com", "slack.com"]
    bad = await client.post(
        f"/manage/channels/{made['id']}/test", data={"csrf_token": token, "recipient_id": "not a channel"}
    )
    assert notice((await client.get(bad.headers["location"])).text).startswith(
        "error: Test not sent: recipient"
    )
    assert len(seen) == 3  # refused by the API before any provider was called


async def test_a_refused_credential_is_shown_beside_it_and_secrets_are_not_filled_back(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    token = await sign_in(client, auth)
    api = await client.post(
        "/api/v1/channels",
        json={"platform": "telegram", "provider": "telegram", "name": "x",
              "credentials": {"bot_token": "has/slash/in/it", "secret_token": TELEGRAM_SECRET}},
        headers=auth,
    )  # fmt: skip
    assert api.status_code == 422
    message = next(e["message"] for e in api.json()["errors"] if e["field"] == "credentials.bot_token")
    page = await client.post(
        "/manage/channels/new",
        data={"csrf_token": token, "provider": "telegram", "platform": "telegram", "name": "Typo bot",
              "credentials.bot_token": "has/slash/in/it", "credentials.secret_token": TELEGRAM_SECRET},
    )  # fmt: skip
    assert page.status_code == 200  # shown again with its errors (a 4xx page load is a console error)
    assert field_errors(page.text) == {"credentials.bot_token": message}
    assert 'value="Typo bot"' in page.text  # what was typed stays, except the secrets
    assert TELEGRAM_SECRET not in page.text
    assert "has/slash/in/it" not in page.text
    assert 'name="provider" value="telegram"' in page.text
    assert (await client.get("/api/v1/channels", headers=auth)).json()["items"] == []


async def test_channel_forms_need_the_token(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    token = await sign_in(client, auth)
    form = {"provider": "slack", "platform": "slack", "name": "x", "credentials.bot_token": SLACK_TOKEN}
    assert (await client.post("/manage/channels/new", data=form)).status_code == 403
    assert (await client.post("/api/v1/channels", json={}, headers=auth)).status_code == 422
    made = await client.post("/manage/channels/new", data={**form, "csrf_token": token})
    assert made.status_code == 303, made.text
    channel = await channel_named(client, auth, "x")
    without = await client.post(f"/manage/channels/{channel['id']}/test", data={"recipient_id": "C1"})
    assert without.status_code == 403
    elsewhere = await client.post(
        f"/manage/channels/{channel['id']}/test", data={"recipient_id": "C1", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )  # fmt: skip
    assert elsewhere.status_code == 403


async def test_another_tenant_cannot_see_test_or_remove_our_channel(
    rt: Runtime,
    client: httpx.AsyncClient,
    browser_b: httpx.AsyncClient,
    auth: dict[str, str],
) -> None:
    seen = use_transport(rt, providers_answer)
    token = await sign_in(client, auth)
    made = await client.post(
        "/manage/channels/new",
        data={"csrf_token": token, "provider": "slack", "platform": "slack", "name": "Acme private",
              "credentials.bot_token": SLACK_TOKEN},
    )  # fmt: skip
    assert made.status_code == 303, made.text
    channel = await channel_named(client, auth, "Acme private")
    token_b = await sign_in(browser_b, await new_tenant(rt, "globex"))

    listed = await browser_b.get("/manage/channels")
    assert listed.status_code == 200
    assert "Acme private" not in listed.text
    assert str(channel["id"]) not in listed.text
    tested = await browser_b.post(
        f"/manage/channels/{channel['id']}/test", data={"csrf_token": token_b, "recipient_id": "C1"}
    )
    assert tested.status_code == 404
    removed = await browser_b.post(f"/manage/channels/{channel['id']}/delete", data={"csrf_token": token_b})
    assert removed.status_code == 404
    assert seen == []
    assert (await channel_named(client, auth, "Acme private"))["id"] == channel["id"]


async def stored_credentials(rt: Runtime, channel_id: str) -> dict[str, object]:
    async with rt.sessions() as session:
        row = (await session.execute(select(ChannelRow).where(ChannelRow.id == channel_id))).scalar_one()
    return rt.credentials.open(row.credentials)


async def test_editing_rotates_one_secret_and_keeps_the_others_never_filling_them_back(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    seen = use_transport(rt, providers_answer)
    token = await sign_in(client, auth)
    old_token = "xoxb-dashboard-old-token-0009"
    made = await client.post(
        "/manage/channels/new",
        data={"csrf_token": token, "provider": "slack", "platform": "slack", "name": "Ops Slack",
              "credentials.bot_token": old_token, "credentials.signing_secret": SLACK_SIGNING},
    )  # fmt: skip
    assert made.status_code == 303, made.text
    channel = await channel_named(client, auth, "Ops Slack")
    edit = f"/manage/channels/{channel['id']}/edit"
    assert f'href="{edit}"' in (await client.get("/manage/channels")).text

    form = await client.get(edit)
    assert form.status_code == 200
    assert 'value="Ops Slack"' in form.text
    assert 'data-field="platform"' not in form.text  # another platform is another channel
    for name in ("bot_token", "signing_secret"):
        control = re.search(rf'<input[^>]*name="credentials\.{name}"[^>]*>', form.text)
        assert control, name
        assert 'type="password"' in control.group(0)
        assert 'value=""' in control.group(0)
    for secret in (old_token, SLACK_SIGNING):
        assert secret not in form.text

    saved = await client.post(
        edit, data={"csrf_token": token, "name": "Ops Slack", "credentials.bot_token": SLACK_TOKEN,
                    "credentials.signing_secret": "", "is_default.shown": "1"},
    )  # fmt: skip
    assert saved.status_code == 303, saved.text
    assert (
        notice((await client.get(saved.headers["location"])).text) == f"info: Saved channel {channel['id']}."
    )
    assert await stored_credentials(rt, str(channel["id"])) == {
        "bot_token": SLACK_TOKEN, "signing_secret": SLACK_SIGNING,
    }  # fmt: skip
    after = await channel_named(client, auth, "Ops Slack")
    assert (after["id"], after["credentials_set"]) == (channel["id"], ["bot_token", "signing_secret"])

    # Send test reaches Slack with the new token (providers_answer checks it).
    tested = await client.post(
        f"/manage/channels/{channel['id']}/test", data={"csrf_token": token, "recipient_id": "C0OPS"}
    )
    assert notice((await client.get(tested.headers["location"])).text).startswith(
        "info: Test delivered by slack"
    )
    assert len(seen) == 1
    for page in (await client.get(edit)).text, (await client.get("/manage/channels")).text:
        for secret in (old_token, SLACK_TOKEN, SLACK_SIGNING):
            assert secret not in page


async def test_an_edit_refused_by_the_api_shows_the_error_beside_the_credential(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    token = await sign_in(client, auth)
    made = await client.post(
        "/manage/channels/new",
        data={"csrf_token": token, "provider": "telegram", "platform": "telegram", "name": "Bot",
              "credentials.bot_token": TELEGRAM_TOKEN, "credentials.secret_token": TELEGRAM_SECRET},
    )  # fmt: skip
    assert made.status_code == 303, made.text
    channel = await channel_named(client, auth, "Bot")
    api = await client.patch(
        f"/api/v1/channels/{channel['id']}",
        json={"credentials": {"bot_token": "has/slash/in/it"}},
        headers=auth,
    )
    assert api.status_code == 422
    message = next(e["message"] for e in api.json()["errors"] if e["field"] == "credentials.bot_token")
    page = await client.post(
        f"/manage/channels/{channel['id']}/edit",
        data={"csrf_token": token, "name": "Bot renamed", "credentials.bot_token": "has/slash/in/it"},
    )
    assert page.status_code == 200
    assert field_errors(page.text) == {"credentials.bot_token": message}
    assert 'value="Bot renamed"' in page.text
    assert "has/slash/in/it" not in page.text
    assert (await channel_named(client, auth, "Bot"))["id"] == channel["id"]  # nothing saved
    assert await stored_credentials(rt, str(channel["id"])) == {
        "bot_token": TELEGRAM_TOKEN, "secret_token": TELEGRAM_SECRET,
    }  # fmt: skip
    without = await client.post(f"/manage/channels/{channel['id']}/edit", data={"name": "x"})
    assert without.status_code == 403


async def test_another_tenant_cannot_edit_our_channel(
    rt: Runtime, client: httpx.AsyncClient, browser_b: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    token = await sign_in(client, auth)
    made = await client.post(
        "/manage/channels/new",
        data={"csrf_token": token, "provider": "slack", "platform": "slack", "name": "Acme private",
              "credentials.bot_token": SLACK_TOKEN},
    )  # fmt: skip
    assert made.status_code == 303, made.text
    channel = await channel_named(client, auth, "Acme private")
    token_b = await sign_in(browser_b, await new_tenant(rt, "globex"))
    edit = f"/manage/channels/{channel['id']}/edit"
    assert (await browser_b.get(edit)).status_code == 404
    changed = await browser_b.post(
        edit, data={"csrf_token": token_b, "name": "Mine now", "credentials.bot_token": "xoxb-globex-token-1"}
    )
    assert changed.status_code == 404
    assert (await channel_named(client, auth, "Acme private"))["id"] == channel["id"]
    assert (await stored_credentials(rt, str(channel["id"])))["bot_token"] == SLACK_TOKEN
