"""Managing objects from the dashboard (herald.web.dashboard.manage): every form goes through the API in this
process, so it gets the API's validation and messages, its audit and its tenant scoping. On SQLite and
PostgreSQL, through the httpx ASGI client (the browser tests drive the same pages in Chromium)."""

from __future__ import annotations

import hashlib
import hmac
import re
from html import unescape

import httpx
import pytest
from sqlalchemy import select, update

from herald.runtime import Runtime
from herald.storage.models import ApiKey, AuditEntry
from herald.web.dashboard.manage import RESOURCES
from tests.conftest import make_agent, new_tenant
from tests.integration.test_dashboard import sign_in


def field_errors(html: str) -> dict[str, str]:
    """Each field's first error as the page shows it beside the field."""
    errors: dict[str, str] = {}
    for block in html.split('<div class="field ')[1:]:
        name = re.search(r'data-field="([^"]+)"', block)
        error = re.search(r'<p class="field-error"[^>]*>([^<]+)</p>', block)
        if name and error:
            errors[name.group(1)] = unescape(error.group(1))
    return errors


async def contact_id_named(client: httpx.AsyncClient, auth: dict[str, str], name: str) -> str:
    items = (await client.get("/api/v1/contacts", headers=auth)).json()["items"]
    return str(next(c["id"] for c in items if c["name"] == name))


async def test_every_managed_object_has_a_list_and_a_form(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await sign_in(client, auth)
    setup = await client.get("/manage")
    assert setup.status_code == 200
    for res in RESOURCES:
        assert f'href="/manage/{res.key}"' in setup.text
        listed = await client.get(f"/manage/{res.key}")
        assert listed.status_code == 200, (res.key, listed.text[:500])
        if res.create is not None:
            form = await client.get(f"/manage/{res.key}/new")
            assert form.status_code == 200, res.key
            assert 'name="csrf_token"' in form.text
            for name in res.create.model_fields:
                if name not in res.exclude:
                    assert f'data-field="{name}' in form.text, (res.key, name)
    assert (await client.get("/manage/nothing-here")).status_code == 404


async def test_a_contact_created_and_edited_from_forms_is_the_apis_and_audited_with_the_key(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    token = await sign_in(client, auth)
    form = {
        "csrf_token": token, "name": "Ada Lovelace", "addresses": "sms: +15550100\nemail: ada@example.com",
        "timezone": "Europe/London", "quiet_hours.start": "22:00", "quiet_hours.end": "07:00",
        "channel_order": "sms\nemail", "opt_outs": "",
    }  # fmt: skip
    created = await client.post("/manage/contacts/new", data=form)
    assert created.status_code == 303, created.text
    assert created.headers["location"] == "/manage/contacts"
    listed = await client.get("/manage/contacts")
    assert "Created contact Ada Lovelace." in listed.text
    contact_id = await contact_id_named(client, auth, "Ada Lovelace")
    contact = (await client.get(f"/api/v1/contacts/{contact_id}", headers=auth)).json()
    assert contact["addresses"] == {"sms": "+15550100", "email": "ada@example.com"}
    assert contact["channel_order"] == ["sms", "email"]
    assert contact["quiet_hours"]["start"] == "22:00"

    edit = await client.get(f"/manage/contacts/{contact_id}/edit")
    assert edit.status_code == 200
    assert "sms: +15550100" in edit.text  # filled from the API's answer
    saved = await client.post(
        f"/manage/contacts/{contact_id}/edit", data={"csrf_token": token, "timezone": "America/New_York"}
    )
    assert saved.status_code == 303, saved.text
    after = (await client.get(f"/api/v1/contacts/{contact_id}", headers=auth)).json()
    assert after["timezone"] == "America/New_York"
    assert after["addresses"] == contact["addresses"]  # blank fields keep what is there

    key_id = (await client.get("/api/v1/keys", headers=auth)).json()["items"][0]["id"]
    async with rt.sessions() as session:
        actors = (
            await session.scalars(select(AuditEntry.actor).where(AuditEntry.object_id == contact_id))
        ).all()
    assert actors
    assert all(key_id in actor for actor in actors), actors


async def test_a_refused_field_is_shown_beside_it_in_the_apis_own_words(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    token = await sign_in(client, auth)
    api = await client.post(
        "/api/v1/contacts", json={"name": "Bob", "timezone": "Mars/Olympus_Mons"}, headers=auth
    )
    assert api.status_code == 422
    api_message = next(e["message"] for e in api.json()["errors"] if e["field"] == "timezone")

    page = await client.post(
        "/manage/contacts/new", data={"csrf_token": token, "name": "Bob", "timezone": "Mars/Olympus_Mons"}
    )
    assert page.status_code == 200
    assert field_errors(page.text) == {"timezone": api_message}
    assert 'value="Mars/Olympus_Mons"' in page.text  # what was typed stays
    assert 'aria-invalid="true"' in page.text
    bad_pairs = await client.post(
        "/manage/contacts/new", data={"csrf_token": token, "name": "Bob", "addresses": "no colon here"}
    )
    assert bad_pairs.status_code == 200
    assert "name: value" in field_errors(bad_pairs.text)["addresses"]
    nested = await client.post(
        "/manage/contacts/new",
        data={"csrf_token": token, "name": "Bob", "escalation.after_minutes": "0"},
    )
    assert nested.status_code == 200
    assert "escalation.after_minutes" in field_errors(nested.text)
    items = (await client.get("/api/v1/contacts", headers=auth)).json()["items"]
    assert [c for c in items if c["name"] == "Bob"] == []


async def test_admin_only_changes_are_refused_for_other_keys_with_the_apis_reason(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    token = await sign_in(client, auth)
    made = await client.post(
        "/manage/agents/new",
        data={"csrf_token": token, "id": "helper", "maturity_level": "INTERN", "kind": "external"},
    )
    assert made.status_code == 303, made.text
    assert (await client.get("/api/v1/agents/helper", headers=auth)).json()["maturity_level"] == "INTERN"
    async with rt.sessions.begin() as session:
        await session.execute(update(ApiKey).values(is_admin=False))
    refused = await client.post(
        "/manage/agents/helper/edit", data={"csrf_token": token, "maturity_level": "AUTONOMOUS"}
    )
    assert refused.status_code == 200
    assert "admin" in refused.text
    assert (await client.get("/api/v1/agents/helper", headers=auth)).json()["maturity_level"] == "INTERN"


async def test_a_webhook_secret_is_shown_once_then_never(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "ops", "AUTONOMOUS")
    token = await sign_in(client, auth)
    trigger = await client.post(
        "/manage/triggers/new",
        data={"csrf_token": token, "name": "deploys", "trigger_type": "webhook", "agent_id": "ops",
              "task_template": "A deploy happened: {{ payload }}"},
    )  # fmt: skip
    assert trigger.status_code == 303, trigger.text
    trigger_id = (await client.get("/api/proactive/triggers", headers=auth)).json()["items"][0]["id"]
    created = await client.post(
        "/manage/webhooks/new", data={"csrf_token": token, "name": "ci", "trigger_id": trigger_id}
    )
    assert created.status_code == 200, created.text
    secret = re.search(r'<code class="secret" data-copy>([^<]+)</code>', created.text)
    assert secret
    assert len(secret.group(1)) >= 16
    assert "shown once" in created.text
    listed = await client.get("/manage/webhooks")
    assert "ci" in listed.text
    assert secret.group(1) not in listed.text

    # The signing example on that page, followed as written: the body, GitHub's HMAC of it, the URL shown.
    example = unescape(
        re.search(r'<pre class="example" data-copy><code>(.*?)</code></pre>', created.text, re.S).group(1)
    )  # type: ignore[union-attr]
    body = re.search(r"body='([^']+)'", example).group(1)  # type: ignore[union-attr]
    url = re.search(r"curl -s -X POST '([^']+)'", example).group(1)  # type: ignore[union-attr]
    assert f"-hmac '{secret.group(1)}'" in example
    signature = "sha256=" + hmac.new(secret.group(1).encode(), body.encode(), hashlib.sha256).hexdigest()
    path = "/" + url.split("/", 3)[3]
    signed = await client.post(
        path, content=body, headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    )
    assert signed.status_code == 200, signed.text
    unsigned = await client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401


async def test_removing_asks_first_and_then_removes(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await make_agent(client, auth, "ops", "AUTONOMOUS")
    token = await sign_in(client, auth)
    made = await client.post(
        "/manage/routing-rules/new", data={"csrf_token": token, "agent_id": "ops", "priority": "5"}
    )
    assert made.status_code == 303, made.text
    rule_id = (await client.get("/api/v1/routing-rules", headers=auth)).json()["items"][0]["id"]
    confirm = await client.get(f"/manage/routing-rules/{rule_id}/delete")
    assert confirm.status_code == 200
    assert (await client.get("/api/v1/routing-rules", headers=auth)).json()["items"]  # asking removes nothing
    gone = await client.post(f"/manage/routing-rules/{rule_id}/delete", data={"csrf_token": token})
    assert gone.status_code == 303
    assert (await client.get("/api/v1/routing-rules", headers=auth)).json()["items"] == []
    again = await client.post(f"/manage/routing-rules/{rule_id}/delete", data={"csrf_token": token})
    assert again.status_code == 404


async def test_forms_need_the_token_and_our_origin(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    token = await sign_in(client, auth)
    for res in RESOURCES:
        if res.create is None:
            continue
        without = await client.post(f"/manage/{res.key}/new", data={"name": "x"})
        assert without.status_code == 403, res.key
        elsewhere = await client.post(
            f"/manage/{res.key}/new", data={"name": "x", "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )  # fmt: skip
        assert elsewhere.status_code == 403, res.key
    assert (await client.get("/api/v1/contacts", headers=auth)).json()["items"] == []
    assert (await client.get("/api/v1/agents", headers=auth)).json()["items"] == []


async def test_another_tenant_can_neither_see_nor_change_ours(
    rt: Runtime,
    client: httpx.AsyncClient,
    browser_b: httpx.AsyncClient,
    auth: dict[str, str],
) -> None:
    await make_agent(client, auth, "ops", "AUTONOMOUS")
    contact = await client.post("/api/v1/contacts", json={"name": "Secret Sam"}, headers=auth)
    contact_id = contact.json()["id"]
    rule = await client.post("/api/v1/routing-rules", json={"agent_id": "ops"}, headers=auth)
    assert rule.status_code == 201, rule.text
    rule_id = rule.json()["id"]
    token_b = await sign_in(browser_b, await new_tenant(rt, "globex"))

    for res in RESOURCES:
        page = await browser_b.get(f"/manage/{res.key}")
        assert page.status_code == 200
        for private in ("Secret Sam", contact_id, rule_id):
            assert private not in page.text, (res.key, private)
    assert (await browser_b.get(f"/manage/contacts/{contact_id}/edit")).status_code == 404
    changed = await browser_b.post(
        f"/manage/contacts/{contact_id}/edit", data={"csrf_token": token_b, "name": "Mine now"}
    )
    assert changed.status_code == 404
    removed = await browser_b.post(f"/manage/routing-rules/{rule_id}/delete", data={"csrf_token": token_b})
    assert removed.status_code == 404
    assert (await client.get(f"/api/v1/contacts/{contact_id}", headers=auth)).json()["name"] == "Secret Sam"
    assert len((await client.get("/api/v1/routing-rules", headers=auth)).json()["items"]) == 1


@pytest.mark.parametrize("path", ["/manage", "/manage/contacts", "/manage/contacts/new"])
async def test_pages_need_a_session(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
