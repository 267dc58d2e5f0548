"""Bad input on every endpoint is a 4xx RFC 9457 problem naming the field at fault: never a 500, never accepted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from herald.pipeline.worker import Worker
from herald.runtime import Runtime
from tests.conftest import in_production, make_agent, send_body

PROACTIVE = "/api/v1/messaging/proactive"
SEND = f"{PROACTIVE}/send"
SCHEDULE = f"{PROACTIVE}/schedule"
CREATE_ENDPOINTS = [SEND, SCHEDULE]
FUTURE = "2030-01-01T02:00:00Z"


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status``; when ``field`` is given, ``errors`` names it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert isinstance(problem["title"], str)
    assert problem["title"]
    assert isinstance(problem["detail"], str)
    assert problem["detail"]
    if field is not None:
        assert isinstance(problem.get("errors"), list), problem
        fields = [error["field"] for error in problem["errors"]]
        assert field in fields, problem
        assert all(error["message"] for error in problem["errors"])
    return problem


def create_body(endpoint: str, agent_id: str = "agent_ok", **overrides: Any) -> dict[str, Any]:
    """A valid body for ``endpoint`` (``/schedule`` needs ``scheduled_for``)."""
    body = send_body(agent_id, **overrides)
    if endpoint == SCHEDULE and "scheduled_for" not in overrides:
        body["scheduled_for"] = FUTURE
    return body


async def history_ids(client: httpx.AsyncClient, auth: dict[str, str]) -> list[str]:
    response = await client.get(f"{PROACTIVE}/history", headers=auth)
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["items"]]


@pytest.fixture
async def agent_ok(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    await make_agent(client, auth, "agent_ok", "AUTONOMOUS")
    return "agent_ok"


# --- send and schedule -------------------------------------------------------------------------------------


async def test_valid_body_is_accepted_on_both_endpoints(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str
) -> None:
    """The control for every test below: the bodies they break are valid as they stand."""
    for endpoint in CREATE_ENDPOINTS:
        response = await client.post(endpoint, json=create_body(endpoint), headers=auth)
        assert response.status_code == 201, response.text
        assert response.json()["agent_id"] == agent_ok
    assert len(await history_ids(client, auth)) == 2


async def test_missing_required_field_is_named(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str
) -> None:
    for endpoint in CREATE_ENDPOINTS:
        for missing in ("agent_id", "platform", "recipient_id", "content"):
            body = create_body(endpoint)
            del body[missing]
            problem = assert_problem(await client.post(endpoint, json=body, headers=auth), 422, missing)
            assert problem["title"] == "Unprocessable content"
    assert await history_ids(client, auth) == []


BAD_VALUES: list[tuple[dict[str, Any], str]] = [
    ({"platform": "myspace"}, "platform"),
    ({"platform": ""}, "platform"),
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"timezone": "../../etc/passwd"}, "timezone"),
    ({"timezone": "/etc/localtime"}, "timezone"),
    ({"timezone": ""}, "timezone"),
    ({"priority": "URGENT"}, "priority"),
    ({"priority": 1}, "priority"),
    ({"content": ""}, "content"),
    ({"content": 42}, "content"),
    ({"content": "x" * 100_001}, "content"),
    ({"recipient_id": ""}, "recipient_id"),
    ({"send_now": "maybe"}, "send_now"),
    ({"scheduled_for": "tomorrow"}, "scheduled_for"),
    ({"template_variables": ["not", "a", "dict"]}, "template_variables"),
    ({"governance_metadata": "nope"}, "governance_metadata"),
    ({"agent_id": "has spaces!"}, "agent_id"),
    ({"channel_id": "c" * 41}, "channel_id"),
    ({"colour": "blue"}, "colour"),  # an unknown field is refused, not ignored
]


@pytest.mark.parametrize("endpoint", CREATE_ENDPOINTS)
async def test_bad_value_is_named(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str, endpoint: str
) -> None:
    for overrides, field in BAD_VALUES:
        body = create_body(endpoint, **overrides)
        assert_problem(await client.post(endpoint, json=body, headers=auth), 422, field)
    assert await history_ids(client, auth) == []


async def test_lower_case_priority_is_accepted_and_normalised(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str
) -> None:
    for endpoint in CREATE_ENDPOINTS:
        response = await client.post(endpoint, json=create_body(endpoint, priority="high"), headers=auth)
        assert response.status_code == 201, response.text
        assert response.json()["priority"] == "HIGH"


async def test_unknown_agent_or_channel_is_422_naming_it(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str, rt: Runtime
) -> None:
    in_production(rt)  # development would register agent_nobody (tests/integration/test_enrolment.py)
    for endpoint in CREATE_ENDPOINTS:
        for overrides, field in (
            ({"agent_id": "agent_nobody"}, "agent_id"),
            ({"channel_id": "chn_doesnotexist"}, "channel_id"),
        ):
            body = create_body(endpoint, **overrides)
            problem = assert_problem(await client.post(endpoint, json=body, headers=auth), 422, field)
            assert overrides[field] in problem["detail"]
    assert await history_ids(client, auth) == []


async def test_channel_of_another_platform_is_422_on_channel_id(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str
) -> None:
    created = await client.post(
        "/api/v1/channels", json={"platform": "discord", "provider": "devinbox", "name": "d"}, headers=auth
    )
    assert created.status_code == 201, created.text
    body = send_body(agent_ok, platform="slack", channel_id=created.json()["id"])
    problem = assert_problem(await client.post(SEND, json=body, headers=auth), 422, "channel_id")
    assert "discord" in problem["detail"]


async def test_schedule_without_scheduled_for_is_422(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str
) -> None:
    body = send_body(agent_ok)
    assert "scheduled_for" not in body
    assert_problem(await client.post(SCHEDULE, json=body, headers=auth), 422, "scheduled_for")
    assert await history_ids(client, auth) == []


async def test_non_json_body_is_a_4xx_problem(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str
) -> None:
    bodies = [
        (b"this is not json", "application/json"),
        (b'{"agent_id": "agent_ok",', "application/json"),
        (b"agent_id=agent_ok", "application/x-www-form-urlencoded"),
        (b"[1, 2, 3]", "application/json"),
        (b"null", "application/json"),
        (b"", "application/json"),
    ]
    for endpoint in CREATE_ENDPOINTS:
        for content, content_type in bodies:
            response = await client.post(
                endpoint, content=content, headers={**auth, "content-type": content_type}
            )
            assert 400 <= response.status_code < 500, (content, response.text)
            problem = assert_problem(response, response.status_code)
            assert problem["errors"], problem
    assert await history_ids(client, auth) == []


async def test_malformed_json_names_the_body(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str
) -> None:
    response = await client.post(
        SEND, content=b"this is not json", headers={**auth, "content-type": "application/json"}
    )
    assert_problem(response, 422, "body")


@pytest.mark.parametrize("field", ["content", "recipient_id"])
async def test_nul_character_in_text_is_422(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str, field: str
) -> None:
    # platform "webhook" takes any recipient form, so only the NUL can be at fault
    body = send_body(agent_ok, platform="webhook", **{field: "before\x00after"})
    assert_problem(await client.post(SEND, json=body, headers=auth), 422, field)


# --- approve and reject ------------------------------------------------------------------------------------


async def test_decision_on_unknown_message_is_404(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for action in ("approve", "reject"):
        response = await client.post(f"{PROACTIVE}/{action}/msg_doesnotexist", json={}, headers=auth)
        problem = assert_problem(response, 404)
        assert "msg_doesnotexist" in problem["detail"]


async def _pending(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    await make_agent(client, auth, "agent_intern", "INTERN")
    response = await client.post(SEND, json=send_body("agent_intern"), headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending_approval"
    message_id: str = response.json()["id"]
    return message_id


async def test_approving_twice_is_409_and_changes_nothing(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    message_id = await _pending(client, auth)
    first = await client.post(
        f"{PROACTIVE}/approve/{message_id}", json={"approver_user_id": "alice"}, headers=auth
    )
    assert first.status_code == 200, first.text
    second = await client.post(
        f"{PROACTIVE}/approve/{message_id}", json={"approver_user_id": "bob"}, headers=auth
    )
    problem = assert_problem(second, 409)
    assert "queued" in problem["detail"]
    rejected = await client.post(f"{PROACTIVE}/reject/{message_id}", json={"reason": "late"}, headers=auth)
    assert_problem(rejected, 409)
    detail = (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()
    assert (detail["status"], detail["approved_by"]) == ("queued", "alice")
    approvals = (await client.get("/api/v1/audit?action=message.approved", headers=auth)).json()["items"]
    assert [e["object_id"] for e in approvals] == [message_id]


async def test_approving_a_rejected_message_is_409(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    message_id = await _pending(client, auth)
    rejected = await client.post(f"{PROACTIVE}/reject/{message_id}", json={"reason": "no"}, headers=auth)
    assert rejected.status_code == 200, rejected.text
    problem = assert_problem(await client.post(f"{PROACTIVE}/approve/{message_id}", headers=auth), 409)
    assert "rejected" in problem["detail"]
    detail = (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()
    assert detail["status"] == "rejected"


async def test_bad_decision_body_is_422_and_message_stays_pending(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    message_id = await _pending(client, auth)
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("approve", {"approver": "alice"}, "approver"),
        ("approve", {"approver_user_id": ""}, "approver_user_id"),
        ("reject", {"reason": "x" * 2001}, "reason"),
        ("reject", {"why": "spam"}, "why"),
    ]
    for action, body, field in cases:
        response = await client.post(f"{PROACTIVE}/{action}/{message_id}", json=body, headers=auth)
        assert_problem(response, 422, field)
    detail = (await client.get(f"/api/v1/messages/{message_id}", headers=auth)).json()
    assert (detail["status"], detail["approved_by"]) == ("pending_approval", None)


# --- queue and history -------------------------------------------------------------------------------------


async def test_bad_listing_parameters_are_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for path in ("queue", "history"):
        for query in ("limit=0", "limit=5000", "limit=-1", "limit=ten", "cursor=" + "x" * 101):
            field = query.split("=", 1)[0]
            assert_problem(await client.get(f"{PROACTIVE}/{path}?{query}", headers=auth), 422, field)


async def test_history_with_unknown_status_is_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    problem = assert_problem(
        await client.get(f"{PROACTIVE}/history?status=exploded", headers=auth), 422, "status"
    )
    assert "exploded" in problem["detail"]
    assert "pending_approval" in problem["detail"]


async def test_listing_limits_at_the_edges_are_accepted(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for path in ("queue", "history"):
        for limit in (1, 1000):
            response = await client.get(f"{PROACTIVE}/{path}?limit={limit}", headers=auth)
            assert response.status_code == 200, response.text
            assert response.json() == {"items": [], "next_cursor": None}


# --- agents ------------------------------------------------------------------------------------------------


BAD_AGENTS: list[tuple[dict[str, Any], str]] = [
    ({"id": "a1", "maturity_level": "GRANDMASTER"}, "maturity_level"),
    ({"id": "a1", "maturity_level": 3}, "maturity_level"),
    ({"id": "a1"}, "maturity_level"),
    ({"maturity_level": "INTERN"}, "id"),
    ({"id": "bad id!", "maturity_level": "INTERN"}, "id"),
    ({"id": "a/b", "maturity_level": "INTERN"}, "id"),
    ({"id": "agënt", "maturity_level": "INTERN"}, "id"),
    ({"id": "", "maturity_level": "INTERN"}, "id"),
    ({"id": "x" * 201, "maturity_level": "INTERN"}, "id"),
    ({"id": "a1", "maturity_level": "INTERN", "callback_url": "not a url"}, "callback_url"),
    ({"id": "a1", "maturity_level": "INTERN", "owner": "me"}, "owner"),
]


async def test_bad_agent_body_is_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for body, field in BAD_AGENTS:
        assert_problem(await client.post("/api/v1/agents", json=body, headers=auth), 422, field)
    listed = (await client.get("/api/v1/agents", headers=auth)).json()
    assert listed["items"] == []


async def test_duplicate_agent_is_409_and_keeps_the_original(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_dup", "INTERN")
    response = await client.post(
        "/api/v1/agents", json={"id": "agent_dup", "maturity_level": "AUTONOMOUS"}, headers=auth
    )
    problem = assert_problem(response, 409, "id")
    assert "agent_dup" in problem["detail"]
    agent = (await client.get("/api/v1/agents/agent_dup", headers=auth)).json()
    assert agent["maturity_level"] == "INTERN"
    created = (await client.get("/api/v1/audit?action=agent.created", headers=auth)).json()["items"]
    assert [e["object_id"] for e in created] == ["agent_dup"]


async def test_unknown_agent_is_404_on_get_and_patch(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    problem = assert_problem(await client.get("/api/v1/agents/agent_ghost", headers=auth), 404)
    assert "agent_ghost" in problem["detail"]
    patched = await client.patch(
        "/api/v1/agents/agent_ghost", json={"maturity_level": "STUDENT"}, headers=auth
    )
    assert_problem(patched, 404)
    assert (await client.get("/api/v1/agents", headers=auth)).json()["items"] == []


async def test_bad_agent_patch_is_422_and_changes_nothing(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "agent_p", "INTERN")
    patches: list[tuple[dict[str, Any], str]] = [
        ({"maturity_level": "GRANDMASTER"}, "maturity_level"),
        ({"name": ""}, "name"),
        ({"callback_url": "ftp:/nope"}, "callback_url"),
        ({"id": "renamed"}, "id"),
    ]
    for body, field in patches:
        assert_problem(await client.patch("/api/v1/agents/agent_p", json=body, headers=auth), 422, field)
    agent = (await client.get("/api/v1/agents/agent_p", headers=auth)).json()
    assert (agent["id"], agent["name"], agent["maturity_level"]) == ("agent_p", "agent_p", "INTERN")
    assert (await client.get("/api/v1/audit?action=agent.updated", headers=auth)).json()["items"] == []


async def test_agent_listing_limit_is_checked(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for query in ("limit=0", "limit=5000"):
        assert_problem(await client.get(f"/api/v1/agents?{query}", headers=auth), 422, "limit")


# --- channels ----------------------------------------------------------------------------------------------


HOOK = "http://127.0.0.1:9/hook"
WHSEC = "whsec_dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3ODkw"
BAD_CHANNELS: list[tuple[dict[str, Any], str]] = [
    ({"platform": "myspace", "name": "c"}, "platform"),
    ({"platform": "slack", "provider": "carrier_pigeon", "name": "c"}, "provider"),
    ({"platform": "webhook", "name": "c"}, "credentials.url"),
    ({"platform": "webhook", "name": "c", "credentials": {}}, "credentials.url"),
    ({"platform": "webhook", "name": "c", "credentials": {"secret": WHSEC}}, "credentials.url"),
    ({"platform": "webhook", "name": "c", "credentials": {"url": HOOK}}, "credentials.secret"),
    (
        {"platform": "webhook", "name": "c", "credentials": {"url": "not a url", "secret": WHSEC}},
        "credentials.url",
    ),
    (
        {"platform": "webhook", "name": "c", "credentials": {"url": HOOK, "secret": "short"}},
        "credentials.secret",
    ),
    (
        {"platform": "webhook", "name": "c", "credentials": {"url": HOOK, "secret": "s" * 20}},
        "credentials.secret",
    ),
    (
        {"platform": "webhook", "name": "c", "credentials": {"url": HOOK, "secret": "whsec_" + "*" * 40}},
        "credentials.secret",
    ),
    (
        {"platform": "webhook", "name": "c", "credentials": {"url": HOOK, "secret": "whsec_c2hvcnQ="}},
        "credentials.secret",
    ),
    (
        {"platform": "webhook", "name": "c", "credentials": {"url": HOOK, "secret": WHSEC, "x": 1}},
        "credentials.x",
    ),
    ({"platform": "webhook", "name": ""}, "name"),
    ({"platform": "webhook"}, "name"),
    ({"name": "c"}, "platform"),
    ({"platform": "slack", "provider": "devinbox", "name": "c", "colour": "red"}, "colour"),
    ({"platform": "slack", "provider": "devinbox", "name": "c", "base_url": "nope"}, "base_url"),
]


async def test_bad_channel_is_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for body, field in BAD_CHANNELS:
        assert_problem(await client.post("/api/v1/channels", json=body, headers=auth), 422, field)
    assert (await client.get("/api/v1/channels", headers=auth)).json()["items"] == []


async def test_unknown_channel_is_404(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    assert_problem(await client.get("/api/v1/channels/chn_ghost", headers=auth), 404)
    assert_problem(await client.delete("/api/v1/channels/chn_ghost", headers=auth), 404)


# --- messages ----------------------------------------------------------------------------------------------


async def test_unknown_message_is_404(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    problem = assert_problem(await client.get("/api/v1/messages/msg_ghost", headers=auth), 404)
    assert "msg_ghost" in problem["detail"]
    assert_problem(await client.post("/api/v1/messages/msg_ghost/cancel", headers=auth), 404)


async def test_cancelling_a_sent_message_is_409(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str, worker: Worker
) -> None:
    message = (await client.post(SEND, json=send_body(agent_ok), headers=auth)).json()
    assert await worker.drain() == 1
    problem = assert_problem(await client.post(f"/api/v1/messages/{message['id']}/cancel", headers=auth), 409)
    assert "sent" in problem["detail"]
    detail = (await client.get(f"/api/v1/messages/{message['id']}", headers=auth)).json()
    assert detail["status"] == "sent"
    assert (await client.get("/api/v1/audit?action=message.cancelled", headers=auth)).json()["items"] == []


async def test_cancelling_twice_is_409(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str
) -> None:
    body = send_body(agent_ok, scheduled_for=FUTURE)
    message = (await client.post(SEND, json=body, headers=auth)).json()
    first = await client.post(f"/api/v1/messages/{message['id']}/cancel", headers=auth)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "cancelled"
    problem = assert_problem(await client.post(f"/api/v1/messages/{message['id']}/cancel", headers=auth), 409)
    assert "cancelled" in problem["detail"]


# --- authentication ----------------------------------------------------------------------------------------

AUTHENTICATED = [
    ("POST", SEND),
    ("POST", SCHEDULE),
    ("POST", f"{PROACTIVE}/approve/msg_x"),
    ("POST", f"{PROACTIVE}/reject/msg_x"),
    ("GET", f"{PROACTIVE}/queue"),
    ("GET", f"{PROACTIVE}/history"),
    ("GET", "/api/v1/agents"),
    ("POST", "/api/v1/agents"),
    ("GET", "/api/v1/agents/agent_x"),
    ("PATCH", "/api/v1/agents/agent_x"),
    ("GET", "/api/v1/channels"),
    ("POST", "/api/v1/channels"),
    ("GET", "/api/v1/messages/msg_x"),
    ("POST", "/api/v1/messages/msg_x/cancel"),
    ("GET", "/api/v1/audit"),
    ("GET", "/api/v1/devinbox"),
]


BAD_AUTH: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "hk_no_scheme"},
    {"Authorization": "Bearer hk_this_is_not_a_real_key"},
]


async def test_unauthenticated_requests_are_401_with_www_authenticate(
    client: httpx.AsyncClient, auth: dict[str, str], agent_ok: str
) -> None:
    for headers in BAD_AUTH:
        for method, path in AUTHENTICATED:
            body = send_body(agent_ok, scheduled_for=FUTURE) if method == "POST" else None
            response = await client.request(method, path, json=body, headers=headers)
            assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer"), (method, path)
    assert await history_ids(client, auth) == []


async def test_wrong_key_detail_differs_from_missing_key(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    missing = assert_problem(await client.get("/api/v1/agents"), 401)
    wrong = assert_problem(
        await client.get("/api/v1/agents", headers={"Authorization": "Bearer hk_nope"}), 401
    )
    assert "Bearer" in missing["detail"]
    assert "unknown" in wrong["detail"]
    assert (await client.get("/api/v1/agents", headers=auth)).status_code == 200
