"""The template library over the API and the resolver campaigns call: Herald's defaults, a tenant's overrides
winning and removed again, validation as 422s naming the field, tenant isolation, locale fallback, and the
cache seeing a change at once in the process that made it and within its time to live in any other."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from herald.admin.tenants import get_or_create_tenant
from herald.core.errors import NotFound
from herald.pipeline.library import BY_NAME, EVENT_TYPES, TemplateCache, render_template, resolve_template
from herald.runtime import Runtime
from herald.storage.models import TemplateOverride
from tests.conftest import new_tenant

TEMPLATES = "/api/v1/templates"
CHECKIN_SMS = f"{TEMPLATES}/seven_day_checkin/sms/en"
CHECKIN_EMAIL = f"{TEMPLATES}/seven_day_checkin/email/en"
SAMPLE = BY_NAME["seven_day_checkin"].sample


async def tenant_id(rt: Runtime, name: str = "acme") -> str:
    async with rt.sessions.begin() as session:
        return (await get_or_create_tenant(session, name)).id


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem
    return problem


async def test_the_list_shows_every_shipped_default(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    answer = await client.get(TEMPLATES, params={"limit": 1000}, headers=auth)
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    shipped = {f"{e.name}/{c}/{loc}" for e in EVENT_TYPES for c, loc in e.texts}
    assert {i["key"] for i in items} == shipped
    assert {i["source"] for i in items} == {"default"}
    assert [i["key"] for i in items] == sorted(shipped)
    email = next(i for i in items if i["key"] == "seven_day_checkin/email/en")
    assert email["default"] == {"subject": email["subject"], "body": email["body"]}
    assert "first_name" in email["variables"]


async def test_the_list_pages_and_filters(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    # Keys whose order as tuples and as paths differ ('-' sorts before '/'): the cursor must follow the paths.
    for own in ("zz", "zz-a", "zz.b"):
        assert (
            await client.put(f"{TEMPLATES}/{own}/sms/en", json={"body": own}, headers=auth)
        ).status_code == 201
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        body = (await client.get(TEMPLATES, params=params, headers=auth)).json()
        seen += [i["key"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == sum(len(e.texts) for e in EVENT_TYPES) + 3
    assert seen == sorted(seen)
    sms = (await client.get(TEMPLATES, params={"channel": "sms", "locale": "EN"}, headers=auth)).json()[
        "items"
    ]
    assert len(sms) == len(EVENT_TYPES) + 3  # the three of the tenant's own above
    assert {i["channel"] for i in sms} == {"sms"}
    one = (await client.get(TEMPLATES, params={"event_type": "trade_in_alert"}, headers=auth)).json()["items"]
    assert {i["key"] for i in one} == {"trade_in_alert/email/en", "trade_in_alert/sms/en"}


async def test_event_types_are_listed_with_variables_and_samples(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    answer = await client.get(f"{TEMPLATES}/event-types", headers=auth)
    assert answer.status_code == 200, answer.text
    items = {i["event_type"]: i for i in answer.json()["items"]}
    assert set(items) == set(BY_NAME)
    assert items["first_service_alert"]["channels"] == ["email", "sms"]
    assert "machine_hours" in items["first_service_alert"]["variables"]
    assert items["first_service_alert"]["sample_variables"]["machine_hours"]


async def test_an_override_wins_and_deleting_it_restores_the_default(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    tid = await tenant_id(rt)
    before = await render_template(rt, tid, "seven_day_checkin", "sms", "en", SAMPLE)
    assert before.template.source == "default"
    assert "Dana" in before.body

    body = {"body": "Hey {{ first_name }}! Loving the {{ equipment_model }}? Text us any time."}
    created = await client.put(CHECKIN_SMS, json=body, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "tenant"
    assert created.json()["variables"] == ["equipment_model", "first_name"]
    assert created.json()["default"]["body"] == BY_NAME["seven_day_checkin"].texts[("sms", "en")].body
    # The same process sees the override at once, through the resolver campaigns call.
    after = await render_template(rt, tid, "seven_day_checkin", "sms", "en", SAMPLE)
    assert after.body == "Hey Dana! Loving the Husqvarna YTH18542? Text us any time."
    assert after.template.source == "tenant"
    shown = (await client.get(CHECKIN_SMS, headers=auth)).json()
    assert (shown["source"], shown["body"]) == ("tenant", body["body"])

    replaced = await client.put(CHECKIN_SMS, json={"body": "v2 {{ first_name }}"}, headers=auth)
    assert replaced.status_code == 200, replaced.text
    assert (await render_template(rt, tid, "seven_day_checkin", "sms", "en", SAMPLE)).body == "v2 Dana"
    listed = (await client.get(TEMPLATES, params={"event_type": "seven_day_checkin"}, headers=auth)).json()
    assert {i["key"]: i["source"] for i in listed["items"]} == {
        "seven_day_checkin/email/en": "default",
        "seven_day_checkin/sms/en": "tenant",
    }

    deleted = await client.delete(CHECKIN_SMS, headers=auth)
    assert deleted.status_code == 204
    restored = await render_template(rt, tid, "seven_day_checkin", "sms", "en", SAMPLE)
    assert restored.template.source == "default"
    assert restored.body == before.body
    assert (await client.get(CHECKIN_SMS, headers=auth)).json()["source"] == "default"
    assert_problem(await client.delete(CHECKIN_SMS, headers=auth), 404)  # nothing left to remove


async def test_an_email_override_renders_subject_and_body(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {
        "subject": "{{ first_name }}, a week with your {{ equipment_model }}",
        "body": "Hi {{ first_name }}",
    }
    assert (await client.put(CHECKIN_EMAIL, json=body, headers=auth)).status_code == 201
    rendered = await client.post(
        f"{CHECKIN_EMAIL}/render", json={"variables": {"first_name": "Lee"}}, headers=auth
    )
    assert rendered.status_code == 200, rendered.text
    assert rendered.json() == {
        "subject": "Lee, a week with your Husqvarna YTH18542",  # the sample fills what is left out
        "body": "Hi Lee",
        "locale": "en",
        "source": "tenant",
    }


async def test_a_change_from_another_process_shows_within_the_cache_lifetime(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """Another process's write is not announced here: this process keeps what it read until the entry expires."""
    tid = await tenant_id(rt)
    rt.templates = TemplateCache(ttl=0.5)
    assert (await resolve_template(rt, tid, "annual_tuneup", "sms", "en")).source == "default"
    async with rt.sessions.begin() as session:  # as another process would: no forget() in this one
        session.add(TemplateOverride(id="tpl_other", tenant_id=tid, event_type="annual_tuneup", channel="sms",
                                     locale="en", body="elsewhere", variables=[]))  # fmt: skip
    assert (await resolve_template(rt, tid, "annual_tuneup", "sms", "en")).source == "default"  # cached
    await asyncio.sleep(0.6)
    seen = await resolve_template(rt, tid, "annual_tuneup", "sms", "en")
    assert (seen.source, seen.body) == ("tenant", "elsewhere")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (CHECKIN_SMS, {"body": "Hi {{ first_name "}, "body"),
        (CHECKIN_SMS, {"body": "Hi {% if %}"}, "body"),
        (CHECKIN_SMS, {"body": "Hi {{ nickname }}"}, "body"),
        (CHECKIN_EMAIL, {"subject": "For {{ nickname }}", "body": "Hi"}, "subject"),
        (CHECKIN_EMAIL, {"subject": "Hi {{ first_name", "body": "Hi"}, "subject"),
        (CHECKIN_EMAIL, {"body": "Hi"}, "subject"),
        (CHECKIN_SMS, {"subject": "SMS has none", "body": "Hi"}, "subject"),
        (CHECKIN_SMS, {"body": "Hi {{ first_name() }}"}, "body"),
        (CHECKIN_SMS, {"body": "   "}, "body"),
        (CHECKIN_SMS, {"body": "x", "variables": ["not a name"]}, "variables.0"),
        (CHECKIN_SMS, {"body": "x", "colour": "red"}, "colour"),
        (f"{TEMPLATES}/seven_day_checkin/pager/en", {"body": "Hi"}, "channel"),
        (f"{TEMPLATES}/seven_day_checkin/sms/en_GB", {"body": "Hi"}, "locale"),
        (f"{TEMPLATES}/Bad%20Event/sms/en", {"body": "Hi"}, "event_type"),
    ],
)
async def test_bad_templates_are_422s_naming_the_field(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], path: str, body: dict[str, Any], field: str
) -> None:
    assert_problem(await client.put(path, json=body, headers=auth), 422, field)
    tid = await tenant_id(rt)
    assert (await resolve_template(rt, tid, "seven_day_checkin", "sms", "en")).source == "default"


async def test_an_event_type_of_the_tenants_own_declares_its_variables(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    path = f"{TEMPLATES}/loyalty_points/sms/en"
    assert_problem(await client.get(path, headers=auth), 404)
    assert_problem(
        await client.put(path, json={"body": "You have {{ points }} points"}, headers=auth), 422, "body"
    )
    body = {
        "body": "You have {{ points }} points, {{ first_name }} ({{ date }})",
        "variables": ["points", "first_name"],
    }
    assert (await client.put(path, json=body, headers=auth)).status_code == 201
    tid = await tenant_id(rt)
    rendered = await render_template(
        rt, tid, "loyalty_points", "sms", "en-US", {"points": 120, "first_name": "Jo"}
    )
    assert rendered.body.startswith("You have 120 points, Jo (")
    assert rendered.template.locale == "en"
    listed = (await client.get(TEMPLATES, params={"event_type": "loyalty_points"}, headers=auth)).json()[
        "items"
    ]
    assert [(i["key"], i["source"], i["default"]) for i in listed] == [
        ("loyalty_points/sms/en", "tenant", None)
    ]


async def test_another_tenants_override_is_invisible(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    other = await new_tenant(rt, "globex")
    assert (
        await client.put(CHECKIN_SMS, json={"body": "acme only {{ first_name }}"}, headers=auth)
    ).status_code == 201
    own_path = f"{TEMPLATES}/acme_event/sms/en"
    assert (await client.put(own_path, json={"body": "secret"}, headers=auth)).status_code == 201

    assert (await client.get(CHECKIN_SMS, headers=other)).json()["source"] == "default"
    listed = (await client.get(TEMPLATES, params={"limit": 1000}, headers=other)).json()["items"]
    assert {i["source"] for i in listed} == {"default"}
    assert "acme_event/sms/en" not in {i["key"] for i in listed}
    assert_problem(await client.get(own_path, headers=other), 404)
    assert_problem(await client.delete(CHECKIN_SMS, headers=other), 404)
    globex = await tenant_id(rt, "globex")
    assert (await resolve_template(rt, globex, "seven_day_checkin", "sms", "en")).source == "default"
    with pytest.raises(NotFound):
        await resolve_template(rt, globex, "acme_event", "sms", "en")
    # acme's override survived globex's attempt to delete it.
    assert (await client.get(CHECKIN_SMS, headers=auth)).json()["source"] == "tenant"


async def test_locales_fall_back_to_the_language_then_the_default(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    fr = f"{TEMPLATES}/seven_day_checkin/sms/FR"
    made = await client.put(fr, json={"body": "Bonjour {{ first_name }} !"}, headers=auth)
    assert made.status_code == 201, made.text
    assert made.json()["locale"] == "fr"  # stored normalised
    canadian = await client.get(f"{TEMPLATES}/seven_day_checkin/sms/fr-ca", headers=auth)
    assert canadian.status_code == 200, canadian.text
    assert (canadian.json()["locale"], canadian.json()["requested_locale"]) == ("fr", "fr-CA")
    assert (canadian.json()["source"], canadian.json()["default"]) == ("tenant", None)
    tid = await tenant_id(rt)
    assert (
        await render_template(rt, tid, "seven_day_checkin", "sms", "fr-CA", SAMPLE)
    ).body == "Bonjour Dana !"
    german = await resolve_template(rt, tid, "seven_day_checkin", "sms", "de-AT")
    assert (german.locale, german.source) == ("en", "default")
    british = (await client.get(f"{TEMPLATES}/seven_day_checkin/email/en-GB", headers=auth)).json()
    assert (british["locale"], british["requested_locale"], british["source"]) == ("en", "en-GB", "default")
    # Deleting names the exact key: en-GB has no override of its own.
    assert_problem(await client.delete(f"{TEMPLATES}/seven_day_checkin/sms/fr-CA", headers=auth), 404)


async def test_saving_is_audited(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await client.put(CHECKIN_SMS, json={"body": "x"}, headers=auth)
    await client.delete(CHECKIN_SMS, headers=auth)
    answer = await client.get("/api/v1/audit", params={"object_id": "seven_day_checkin/sms/en"}, headers=auth)
    assert answer.status_code == 200, answer.text
    actions = [e["action"] for e in answer.json()["items"]]
    assert sorted(actions) == ["template.created", "template.deleted"]
