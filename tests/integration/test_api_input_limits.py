"""Bad input the fuzzer found: never a 5xx, never silently accepted, refused before anything is written.

Nested values deeper than the limit, numbers that are not finite, objects where a string belongs, unknown keys in
nested objects, time zones that are not IANA zones, null for a field that cannot be empty, and ids of another
tenant's objects are each a 422 naming the field.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from herald.core.jsonbody import MAX_FIELD_DEPTH
from herald.runtime import Runtime
from tests.conftest import make_agent, new_tenant, send_body
from tests.integration.test_api_validation import assert_problem

MONITORS = "/api/v1/monitoring"
TRIGGERS = "/api/proactive/triggers"
SEND = "/api/v1/messaging/proactive/send"


def nested(levels: int) -> dict[str, Any]:
    """An object ``levels`` deep: {"a": {"a": ... {} ...}}."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def monitor_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agent_id": "agent_ok", "name": "Inbox", "condition_type": "inbox_volume",
        "threshold_config": {"metric": "unread_count", "operator": ">", "value": 100},
        "platforms": [{"platform": "slack", "recipient_id": "C12345"}],
    }  # fmt: skip
    body.update(overrides)
    return body


def trigger_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Manual", "trigger_type": "manual", "agent_id": "agent_ok",
                            "task_template": "Look at {thing}"}  # fmt: skip
    body.update(overrides)
    return body


@pytest.fixture
async def agent_ok(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    await make_agent(client, auth, "agent_ok", "AUTONOMOUS")
    return "agent_ok"


async def monitor_count(client: httpx.AsyncClient, auth: dict[str, str]) -> int:
    response = await client.get(f"{MONITORS}/condition/list", headers=auth)
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


# --- null where the schema has no room for it ----------------------------------------------------------------


async def test_patching_a_contact_with_null_is_refused_or_clears(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    """``name``, ``addresses`` and ``opt_outs`` cannot be empty: null is a 422 naming the field (leave the key
    out to keep the value); ``timezone``, ``quiet_hours`` and ``channel_order`` are cleared by null."""
    body = {
        "name": "Ada",
        "addresses": {"email": "ada@example.com"},
        "opt_outs": ["sms"],
        "timezone": "Europe/Paris",
    }
    created = await client.post("/api/v1/contacts", json=body, headers=auth)
    assert created.status_code == 201, created.text
    url = f"/api/v1/contacts/{created.json()['id']}"
    for field in ("opt_outs", "addresses", "name"):
        assert_problem(await client.patch(url, json={field: None}, headers=auth), 422, field)
    unchanged = (await client.get(url, headers=auth)).json()
    assert (unchanged["name"], unchanged["addresses"], unchanged["opt_outs"]) == (
        "Ada",
        body["addresses"],
        ["sms"],
    )
    cleared = await client.patch(url, json={"timezone": None, "channel_order": None}, headers=auth)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["timezone"] is None


# --- depth, finite numbers, wrong types ----------------------------------------------------------------------


@pytest.mark.usefixtures("agent_ok")
@pytest.mark.parametrize("levels", [MAX_FIELD_DEPTH + 1, 600, 900])
async def test_deeply_nested_values_are_refused_naming_the_field(
    client: httpx.AsyncClient, auth: dict[str, str], levels: int
) -> None:
    deep = nested(levels)
    cases = [
        (SEND, send_body("agent_ok", template_variables=deep), "template_variables"),
        ("/api/v1/channels", {"platform": "slack", "provider": "webhook", "name": "deep", "credentials": deep},
         "credentials"),
        (f"{MONITORS}/condition/create", monitor_body(threshold_config=deep), "threshold_config"),
        (TRIGGERS, trigger_body(config=deep), "config"),
    ]  # fmt: skip
    for url, body, field in cases:
        problem = assert_problem(await client.post(url, json=body, headers=auth), 422, field)
        assert f"deeper than {MAX_FIELD_DEPTH}" in problem["detail"]
    assert await monitor_count(client, auth) == 0


@pytest.mark.usefixtures("agent_ok")
async def test_values_at_the_depth_limit_are_accepted(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post(
        SEND, json=send_body("agent_ok", template_variables=nested(MAX_FIELD_DEPTH)), headers=auth
    )
    assert response.status_code == 201, response.text


@pytest.mark.usefixtures("agent_ok")
@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN"])
async def test_non_finite_numbers_are_refused_before_anything_is_written(
    client: httpx.AsyncClient, auth: dict[str, str], literal: str
) -> None:
    """Python's JSON parser reads these bare literals; they are not JSON numbers and no monitor may be kept."""
    raw = (
        '{"agent_id": "agent_ok", "name": "Inbox", "condition_type": "inbox_volume", '
        f'"threshold_config": {{"metric": "unread_count", "operator": ">", "value": {literal}}}, '
        '"platforms": [{"platform": "slack", "recipient_id": "C12345"}]}'
    )
    headers = {**auth, "Content-Type": "application/json"}
    for _ in range(2):  # a client retrying after the 422 creates nothing either
        response = await client.post(f"{MONITORS}/condition/create", content=raw, headers=headers)
        problem = assert_problem(response, 422, "threshold_config")
        assert "finite" in problem["detail"]
    assert await monitor_count(client, auth) == 0
    value_push = await client.post(f"{MONITORS}/values", content=f'{{"name": "cpu", "value": {literal}}}',
                                   headers=headers)  # fmt: skip
    assert_problem(value_push, 422)  # the body is one value or a list: the error names both readings
    for text in ("inf", "-Infinity", "nan"):  # a number given as a string is read as one: finite too
        body = monitor_body(threshold_config={"metric": "unread_count", "operator": ">", "value": text})
        response = await client.post(f"{MONITORS}/condition/create", json=body, headers=auth)
        assert_problem(response, 422, "threshold_config.value")


@pytest.mark.usefixtures("agent_ok")
async def test_an_object_where_a_name_belongs_is_a_422(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    threshold = {"metric": "unread_count", "operator": {"gt": 1}, "value": 100}
    response = await client.post(
        f"{MONITORS}/condition/create", json=monitor_body(threshold_config=threshold), headers=auth
    )
    assert_problem(response, 422, "threshold_config.operator")
    action = {"type": "message", "platform": {"name": "slack"}, "recipient_id": "C12345"}
    assert_problem(
        await client.post(TRIGGERS, json=trigger_body(action=action), headers=auth), 422, "action.platform"
    )
    monitor_trigger = trigger_body(trigger_type="monitor", config={"states": [{"firing": True}]})
    assert_problem(await client.post(TRIGGERS, json=monitor_trigger, headers=auth), 422, "config.states")


# --- unknown keys in nested objects ------------------------------------------------------------------------


@pytest.mark.usefixtures("agent_ok")
async def test_unknown_keys_in_nested_objects_are_refused(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    threshold = {"metric": "unread_count", "operator": ">", "value": 100, "treshold": 5}
    cases = [
        (f"{MONITORS}/condition/create", monitor_body(threshold_config=threshold), "threshold_config.treshold"),
        (f"{MONITORS}/condition/create",
         monitor_body(platforms=[{"platform": "slack", "recipient_id": "C1", "channel": "x"}]), "platforms.0.channel"),
        ("/api/proactive/monitors",
         {"name": "cpu", "agent_id": "agent_ok", "condition": "cpu > 80",
          "platforms": [{"platform": "slack", "recipient": "C1"}]}, "platforms.0.recipient"),
        (TRIGGERS, trigger_body(action={"type": "message", "platform": "slack", "recipient_id": "C1", "to": "x"}),
         "action.to"),
    ]  # fmt: skip
    for url, body, field in cases:
        assert_problem(await client.post(url, json=body, headers=auth), 422, field)
    assert await monitor_count(client, auth) == 0


# --- time zones --------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("agent_ok")
@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/localtime", "localtime", "Europe", "x" * 100])
async def test_time_zones_are_checked_wherever_they_appear(
    client: httpx.AsyncClient, auth: dict[str, str], zone: str
) -> None:
    window = {"start": "22:00", "end": "06:00", "timezone": zone}
    cases = [
        (f"{MONITORS}/condition/create", monitor_body(mute_windows=[window]), "mute_windows.0.timezone"),
        ("/api/v1/contacts", {"name": "Ada", "timezone": zone}, "timezone"),
        ("/api/v1/messaging/schedule/create",
         {"agent_id": "agent_ok", "platform": "slack", "recipient_id": "C1", "template": "hi",
          "cron_expression": "0 9 * * *", "timezone": zone}, "timezone"),
        ("/api/proactive/schedules",
         {"name": "daily", "agent_id": "agent_ok", "task_description": "sum up", "cron_expression": "0 9 * * *",
          "timezone": zone}, "timezone"),
    ]  # fmt: skip
    for url, body, field in cases:
        assert_problem(await client.post(url, json=body, headers=auth), 422, field)
    policy = await client.put("/api/v1/delivery-policy", json={"timezone": zone}, headers=auth)
    assert 400 <= policy.status_code < 500, policy.text
    assert await monitor_count(client, auth) == 0


# --- references to another tenant's objects ----------------------------------------------------------------


async def test_another_tenants_objects_cannot_be_named(
    client: httpx.AsyncClient, auth: dict[str, str], rt: Runtime
) -> None:
    """Tenant B naming tenant A's contact or channel (or a missing one) is a 422 naming the field."""
    contact = await client.post(
        "/api/v1/contacts", json={"name": "A's", "addresses": {"slack": "C12345"}}, headers=auth
    )
    channel = await client.post("/api/v1/channels", json={
        "platform": "slack", "provider": "webhook", "name": "A's",
        "credentials": {"url": "https://relay.example/a", "secret": "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3ODkw"},
    }, headers=auth)  # fmt: skip
    assert contact.status_code == channel.status_code == 201, (contact.text, channel.text)
    theirs_contact, theirs_channel = contact.json()["id"], channel.json()["id"]
    b = await new_tenant(rt, "globex")
    await make_agent(client, b, "agent_b", "AUTONOMOUS")
    approver = {"platform": "slack", "recipient_id": "C99999", "channel_id": theirs_channel}
    cases = [
        ("/api/v1/messaging/schedule/create",
         {"agent_id": "agent_b", "contact_id": theirs_contact, "template": "hi", "cron_expression": "0 9 * * *"},
         "contact_id"),
        (f"{MONITORS}/condition/create",
         monitor_body(agent_id="agent_b", platforms=[{"contact_id": theirs_contact}]), "platforms.0.contact_id"),
        (f"{MONITORS}/condition/create",
         monitor_body(agent_id="agent_b", condition_type="api_metrics", channel_id=theirs_channel,
                      threshold_config={"metric": "error_rate", "operator": ">", "value": 5}), "channel_id"),
        (SEND, send_body("agent_b", channel_id=theirs_channel), "channel_id"),
        (SEND, {**send_body("agent_b", contact_id=theirs_contact), "platform": None, "recipient_id": None},
         "contact_id"),
        ("/api/v1/approvers", {"name": "Bob", "addresses": [approver]}, "addresses.0.channel_id"),
        ("/api/v1/questions",
         {"agent_id": "agent_b", "question": "ok?", "platform": "slack", "recipient_id": "C99999",
          "channel_id": theirs_channel}, "channel_id"),
        ("/api/v1/questions", {"agent_id": "agent_b", "question": "ok?", "contact_id": theirs_contact},
         "contact_id"),
        ("/api/v1/agents",
         {"id": "agent_c", "maturity_level": "AUTONOMOUS", "default_recipient": {"contact_id": theirs_contact}},
         "default_recipient.contact_id"),
    ]  # fmt: skip
    await make_agent(client, auth, "agent_a", "AUTONOMOUS")
    policy = {"name": "p", "agent_ids": ["agent_a"], "approver_ids": ["apv_missing"]}
    cases.append(("/api/v1/approval-policies", policy, "agent_ids"))
    for url, body, field in cases:
        assert_problem(await client.post(url, json=body, headers=b), 422, field)
    patched = await client.patch(
        "/api/v1/agents/agent_b", json={"default_recipient": {"contact_id": "con_missing"}}, headers=b
    )
    assert_problem(patched, 422, "default_recipient.contact_id")
    assert await monitor_count(client, b) == 0


async def test_patching_an_approval_policy_with_null_is_refused_or_clears(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    approver = await client.post(
        "/api/v1/approvers",
        json={"name": "Bob", "addresses": [{"platform": "slack", "recipient_id": "C12345"}]},
        headers=auth,
    )
    assert approver.status_code == 201, approver.text
    body = {"name": "p", "approver_ids": [approver.json()["id"]], "expires_after_seconds": 600}
    policy = await client.post("/api/v1/approval-policies", json=body, headers=auth)
    assert policy.status_code == 201, policy.text
    url = f"/api/v1/approval-policies/{policy.json()['id']}"
    for field in ("agent_ids", "escalate_to", "priorities", "approver_ids", "name", "quorum", "position"):
        assert_problem(await client.patch(url, json={field: None}, headers=auth), 422, field)
    cleared = await client.patch(url, json={"expires_after_seconds": None}, headers=auth)
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["expires_after_seconds"] is None
