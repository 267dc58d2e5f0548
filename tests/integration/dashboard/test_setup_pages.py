"""The first-run path on the overview, campaigns and the template library managed from the dashboard
(herald.web.dashboard.firstrun, setup_pages and the campaigns Resource): every form goes through the API in
this process, needs the session's CSRF token and our origin, and sees only the signed-in tenant's objects.
On SQLite and PostgreSQL, through the httpx ASGI client."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import httpx
import pytest

from herald.pipeline.library import BY_NAME
from herald.runtime import Runtime
from tests.conftest import make_agent, new_tenant
from tests.integration.dashboard.test_manage import field_errors
from tests.integration.test_campaigns import data_source, tenant_db
from tests.integration.test_dashboard import sign_in

CHECKIN_SMS = "/manage/templates/seven_day_checkin/sms/en"
CHECKIN_SMS_API = "/api/v1/templates/seven_day_checkin/sms/en"


def step_states(html: str) -> dict[str, str]:
    """Each first-run step's state as the overview shows it ("done" or "todo")."""
    return {
        key: state for state, key in re.findall(r'<li class="step (done|todo)" data-step="([a-z]+)">', html)
    }


def campaign_form(token: str, source_id: str, **changes: str) -> dict[str, str]:
    form = {
        "csrf_token": token, "name": "Spring reminder", "agent_id": "dealer-agent", "data_source_id": source_id,
        "audience_query": "SELECT customer_id, first_name, phone, email, timezone FROM customers ORDER BY 1",
        "schedule": "every day at 9am", "timezone": "America/Chicago", "event_type": "spring_reminder",
        "locale": "en", "channels.0.platform": "email", "channels.0.address_column": "email",
        "variables": '{"dealership_name": "Riverside Power", "dealership_phone": "(555) 010-2300", '
        '"equipment_model": "your mower", "booking_url": "https://dealer.example/book"}',
        "dedupe_key": "customer_id", "dedupe_period": "ever", "priority": "MEDIUM", "enabled": "on",
    }  # fmt: skip
    form.update(changes)
    return form


async def test_an_empty_tenant_is_walked_to_its_first_message(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    token = await sign_in(client, auth)
    home = await client.get("/")
    assert "Get started" in home.text
    # Development delivers to the dev inbox without a channel, so the first step is already satisfied.
    assert step_states(home.text) == {"channel": "done", "agent": "todo", "message": "todo"}
    assert 'href="/manage/agents/new"' in home.text
    assert 'href="/manage/first-message"' in home.text

    without_agent = await client.get("/manage/first-message")
    assert without_agent.status_code == 200
    assert "register one first" in without_agent.text
    made = await client.post(
        "/manage/agents/new", data={"csrf_token": token, "id": "helper", "maturity_level": "AUTONOMOUS"}
    )
    assert made.status_code == 303, made.text
    assert step_states((await client.get("/")).text)["agent"] == "done"

    form = await client.get("/manage/first-message")
    assert '<option value="helper"' in form.text  # the tenant's own agents to choose from
    refused = await client.post(
        "/manage/first-message",
        data={"csrf_token": token, "agent_id": "helper", "platform": "slack", "recipient_id": "C0FIRST",
              "content": ""},
    )  # fmt: skip
    assert refused.status_code == 200
    assert "content" in field_errors(refused.text)

    sent = await client.post(
        "/manage/first-message",
        data={"csrf_token": token, "agent_id": "helper", "platform": "slack", "recipient_id": "C0FIRST",
              "content": "Hello from the first-run path"},
    )  # fmt: skip
    assert sent.status_code == 200, sent.text
    assert 'href="/devinbox"' in sent.text
    message_id = re.search(r'href="/messages/([^"]+)"', sent.text)
    assert message_id
    message = await client.get(f"/api/v1/messages/{message_id.group(1)}", headers=auth)
    assert message.status_code == 200, message.text
    assert message.json()["content"] == "Hello from the first-run path"
    assert message.json()["status"] in ("queued", "sending", "sent", "delivered")
    assert "Get started" not in (await client.get("/")).text  # all three done: the steps make way


async def test_the_channel_step_is_not_done_outside_development(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(client, auth)
    monkeypatch.setattr(type(rt.settings), "is_development", property(lambda self: False))
    assert step_states((await client.get("/")).text)["channel"] == "todo"


async def test_a_campaign_created_from_the_form_opens_on_its_preview_then_is_edited_and_removed(
    client: httpx.AsyncClient, auth: dict[str, str], tmp_path: Path
) -> None:
    await make_agent(client, auth, "dealer-agent", "AUTONOMOUS")
    source_id = await data_source(client, auth, tenant_db(tmp_path / "dealer.db"))
    token = await sign_in(client, auth)
    listed = await client.get("/campaigns")
    assert 'href="/manage/campaigns/new"' in listed.text

    bad = await client.post(
        "/manage/campaigns/new", data=campaign_form(token, source_id, timezone="Mars/Base")
    )
    assert bad.status_code == 200
    assert "timezone" in field_errors(bad.text)
    created = await client.post("/manage/campaigns/new", data=campaign_form(token, source_id))
    assert created.status_code == 303, created.text
    campaign_id = (await client.get("/api/v1/campaigns", headers=auth)).json()["items"][0]["id"]
    assert created.headers["location"] == f"/campaigns/{campaign_id}?preview=1"
    page = await client.get(created.headers["location"])
    assert page.status_code == 200
    assert "Created campaign Spring reminder." in page.text
    preview = unescape(page.text)
    assert "4 in the audience" in preview
    assert "Nothing was sent." in preview
    assert "ada@example.com" in preview
    assert f'href="/manage/campaigns/{campaign_id}/edit"' in page.text

    edit = await client.get(f"/manage/campaigns/{campaign_id}/edit")
    assert "Spring reminder" in edit.text
    saved = await client.post(
        f"/manage/campaigns/{campaign_id}/edit", data={"csrf_token": token, "name": "Autumn reminder"}
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"/campaigns/{campaign_id}?preview=1"
    after = (await client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth)).json()
    assert after["name"] == "Autumn reminder"
    assert after["timezone"] == "America/Chicago"  # blank fields keep what is there
    gone = await client.post(f"/manage/campaigns/{campaign_id}/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    assert (await client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth)).status_code == 404


async def test_a_template_override_beside_the_default_previewed_and_removed(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    token = await sign_in(client, auth)
    listed = await client.get("/manage/templates")
    assert listed.status_code == 200
    for name in BY_NAME:
        assert f'data-event-type="{name}"' in listed.text
    assert f'href="{CHECKIN_SMS}"' in listed.text
    default_body = BY_NAME["seven_day_checkin"].texts[("sms", "en")].body

    page = await client.get(CHECKIN_SMS)
    assert page.status_code == 200
    assert "Herald's default is in effect" in unescape(page.text)
    assert "Remove override" not in page.text

    bad = await client.post(CHECKIN_SMS, data={"csrf_token": token, "body": "Hi {{ nobody_knows_me }}"})
    assert bad.status_code == 200
    assert "body" in field_errors(bad.text)
    assert (await client.get(CHECKIN_SMS_API, headers=auth)).json()["source"] == "default"

    text = "Hey {{ first_name }}, text us any time."
    saved = await client.post(CHECKIN_SMS, data={"csrf_token": token, "body": text})
    assert saved.status_code == 303, saved.text
    api = (await client.get(CHECKIN_SMS_API, headers=auth)).json()
    assert (api["source"], api["body"]) == ("tenant", text)
    page = await client.get(CHECKIN_SMS)
    assert "Your override is in effect" in page.text
    default_box = page.text.split('id="default-text"', 1)[1].split("</section>", 1)[0]
    assert unescape(default_box).count(default_body.strip()[:30]) == 1  # the default beside the override

    rendered = await client.post(
        f"{CHECKIN_SMS}/render", data={"csrf_token": token, "variables": "first_name: Grace"}
    )
    assert rendered.status_code == 200, rendered.text
    assert "Hey Grace, text us any time." in unescape(rendered.text)

    removed = await client.post(f"{CHECKIN_SMS}/delete", data={"csrf_token": token})
    assert removed.status_code == 303
    assert (await client.get(CHECKIN_SMS_API, headers=auth)).json()["source"] == "default"
    again = await client.post(f"{CHECKIN_SMS}/delete", data={"csrf_token": token})
    assert again.status_code == 404


NEW_FORMS = (
    "/manage/first-message", "/manage/campaigns/new", CHECKIN_SMS, f"{CHECKIN_SMS}/delete",
    f"{CHECKIN_SMS}/render",
)  # fmt: skip


@pytest.mark.parametrize("path", NEW_FORMS)
async def test_the_new_forms_need_the_token_and_our_origin(
    client: httpx.AsyncClient, auth: dict[str, str], path: str
) -> None:
    await make_agent(client, auth, "helper", "AUTONOMOUS")
    token = await sign_in(client, auth)
    data = {"agent_id": "helper", "platform": "slack", "recipient_id": "C0", "content": "x", "body": "x",
            "name": "x"}  # fmt: skip
    assert (await client.post(path, data=data)).status_code == 403
    elsewhere = await client.post(
        path, data={**data, "csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert elsewhere.status_code == 403
    assert (await client.get("/api/v1/campaigns", headers=auth)).json()["items"] == []
    assert (await client.get(CHECKIN_SMS_API, headers=auth)).json()["source"] == "default"
    assert (await client.get("/api/v1/messaging/proactive/history", headers=auth)).json()["items"] == []


async def test_another_tenant_neither_sees_nor_changes_our_campaigns_templates_or_agents(
    rt: Runtime, client: httpx.AsyncClient, browser_b: httpx.AsyncClient, auth: dict[str, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    await make_agent(client, auth, "dealer-agent", "AUTONOMOUS")
    source_id = await data_source(client, auth, tenant_db(tmp_path / "dealer.db"))
    token = await sign_in(client, auth)
    assert (
        await client.post("/manage/campaigns/new", data=campaign_form(token, source_id))
    ).status_code == 303
    campaign_id = (await client.get("/api/v1/campaigns", headers=auth)).json()["items"][0]["id"]
    ours = "Acme only {{ first_name }}"
    assert (await client.post(CHECKIN_SMS, data={"csrf_token": token, "body": ours})).status_code == 303

    token_b = await sign_in(browser_b, await new_tenant(rt, "globex"))
    home_b = await browser_b.get("/")
    assert step_states(home_b.text)["agent"] == "todo"  # our agent is not theirs
    for path in (
        "/manage/campaigns",
        "/campaigns",
        "/manage/templates",
        CHECKIN_SMS,
        "/manage/first-message",
    ):
        page = await browser_b.get(path)
        assert page.status_code == 200, path
        for private in ("Acme only", campaign_id, "dealer-agent", "Spring reminder"):
            assert private not in page.text, (path, private)
    assert (await browser_b.get(f"/manage/campaigns/{campaign_id}/edit")).status_code == 404
    changed = await browser_b.post(
        f"/manage/campaigns/{campaign_id}/edit", data={"csrf_token": token_b, "name": "Mine now"}
    )
    assert changed.status_code == 404
    assert (
        await browser_b.post(f"/manage/campaigns/{campaign_id}/delete", data={"csrf_token": token_b})
    ).status_code == 404
    assert (await browser_b.post(f"{CHECKIN_SMS}/delete", data={"csrf_token": token_b})).status_code == 404
    rendered = await browser_b.post(f"{CHECKIN_SMS}/render", data={"csrf_token": token_b, "variables": ""})
    assert "Acme only" not in rendered.text
    sent = await browser_b.post(
        "/manage/first-message",
        data={"csrf_token": token_b, "agent_id": "dealer-agent", "platform": "slack", "recipient_id": "C0",
              "content": "as someone else's agent"},
    )  # fmt: skip
    assert sent.status_code == 200
    assert 'id="form-errors"' in sent.text  # refused, with the API's reason
    assert "Message accepted" not in sent.text
    assert (await client.get(f"/api/v1/campaigns/{campaign_id}", headers=auth)).json()[
        "name"
    ] == "Spring reminder"
    assert (await client.get(CHECKIN_SMS_API, headers=auth)).json()["body"] == ours
    assert (await client.get("/api/v1/messaging/proactive/history", headers=auth)).json()["items"] == []
