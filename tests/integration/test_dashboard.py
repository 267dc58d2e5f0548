"""The dashboard without a browser: sign-in, cookie flags, CSRF refusal, tenant isolation, every page, and the
actions (approve, reject, pause, maturity) through the httpx ASGI client, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import update

from herald.pipeline.worker import Worker
from herald.producers.monitors import engine
from herald.runtime import Runtime
from herald.storage.models import ApiKey, Message
from herald.web.api.app import create_app
from herald.web.dashboard.charts import Series, sparkline, stacked_bars
from herald.web.dashboard.session import SESSION_COOKIE, Signer, safe_next
from tests.conftest import SECRET, make_agent, new_tenant, send_body

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def token_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def key_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


async def sign_in(client: httpx.AsyncClient, headers: dict[str, str], next_path: str = "/") -> str:
    """Sign in through the form; returns the session's CSRF token."""
    form = await client.get("/login")
    assert form.status_code == 200
    answer = await client.post(
        "/login", data={"csrf_token": token_of(form.text), "api_key": key_of(headers), "next": next_path}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == next_path
    home = await client.get("/")
    assert home.status_code == 200
    return token_of(home.text)


@pytest.fixture
async def browser_b(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser (its own cookie jar) on the same Herald."""
    app = create_app(rt.settings, runtime=rt, run_worker=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as c:
        yield c


async def pending_message(client: httpx.AsyncClient, headers: dict[str, str], text: str) -> str:
    response = await client.post(
        "/api/v1/messaging/proactive/send", json=send_body("intern", content=text), headers=headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending_approval"
    message_id: str = response.json()["id"]
    return message_id


async def a_schedule(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    body = {"agent_id": "intern", "platform": "slack", "recipient_id": "C12345", "template": "Standup!",
            "cron_expression": "0 9 * * 1-5", "timezone": "Europe/London", "name": "standup"}  # fmt: skip
    response = await client.post("/api/v1/messaging/schedule/create", json=body, headers=headers)
    assert response.status_code == 201, response.text
    schedule_id: str = response.json()["id"]
    return schedule_id


async def a_monitor(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    body = {"agent_id": "intern", "name": "Backlog", "condition_type": "metric",
            "threshold_config": {"metric": "backlog", "operator": ">", "value": 10},
            "platforms": [{"platform": "slack", "recipient_id": "C12345"}], "check_interval_seconds": 10}  # fmt: skip
    response = await client.post("/api/v1/monitoring/condition/create", json=body, headers=headers)
    assert response.status_code == 201, response.text
    monitor_id: str = response.json()["id"]
    return monitor_id


# -- sign-in and the session cookie ---------------------------------------------------------------------------


async def test_pages_need_a_session_and_api_routes_keep_working(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    answer = await client.get("/approvals?agent=intern")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fapprovals%3Fagent%3Dintern"
    assert (await client.get("/")).headers["location"] == "/login"
    live = await client.get("/approvals/live")
    assert live.status_code == 401
    assert live.headers["content-type"].startswith("application/json")
    assert (await client.get("/api/v1/agents", headers=auth)).status_code == 200
    assert (await client.get("/api/v1/agents")).status_code == 401
    assert (await client.get("/metrics")).status_code == 200
    assert (await client.get("/health")).status_code in (200, 503)  # no worker runs here
    assert (await client.get("/static/dashboard.css")).status_code == 200


async def test_sign_in_sets_a_signed_httponly_samesite_cookie_and_never_shows_the_key(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    form = await client.get("/login")
    assert "HttpOnly" in form.headers["set-cookie"]
    assert form.headers["content-security-policy"].startswith("default-src 'self'")
    answer = await client.post(
        "/login", data={"csrf_token": token_of(form.text), "api_key": key_of(auth), "next": "/messages"}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/messages"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert "path=/" in flags
    assert "secure" not in flags  # plain http here; https below
    value = cookie.split(";")[0].split("=", 1)[1]
    assert key_of(auth) not in value
    for path in ("/", "/approvals", "/messages", "/schedules", "/monitors", "/devinbox", "/agents"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert key_of(auth) not in page.text
        assert page.headers["x-frame-options"] == "DENY"


async def test_the_cookie_is_secure_over_https(rt: Runtime, auth: dict[str, str]) -> None:
    app = create_app(rt.settings, runtime=rt, run_worker=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://herald.test") as c:
        form = await c.get("/login")
        answer = await c.post("/login", data={"csrf_token": token_of(form.text), "api_key": key_of(auth)})
    cookie = next(x for x in answer.headers.get_list("set-cookie") if x.startswith(SESSION_COOKIE + "="))
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


async def test_a_wrong_key_is_refused_without_echoing_it(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    form = await client.get("/login")
    answer = await client.post(
        "/login", data={"csrf_token": token_of(form.text), "api_key": "hk_wrong_key_1"}
    )
    assert answer.status_code == 200
    assert "unknown or was revoked" in answer.text
    assert "hk_wrong_key_1" not in answer.text
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


async def test_sign_in_itself_needs_the_form_token(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    await client.get("/login")
    answer = await client.post("/login", data={"api_key": key_of(auth)})
    assert answer.status_code == 403
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


async def test_sign_out_ends_the_session(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    token = await sign_in(client, auth)
    answer = await client.post("/logout", data={"csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    assert (await client.get("/")).status_code == 303


async def test_a_revoked_key_ends_its_sessions(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await sign_in(client, auth)
    async with rt.sessions.begin() as session:
        await session.execute(update(ApiKey).values(revoked_at=datetime.now(UTC)))
    assert (await client.get("/agents")).status_code == 303


async def test_a_tampered_or_expired_cookie_is_no_session(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await sign_in(client, auth)
    value = client.cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert (await client.get("/")).status_code == 303
    signer = Signer(SECRET)
    payload = signer.unsign(value)
    assert payload is not None
    client.cookies.set(SESSION_COOKIE, signer.sign({**payload, "exp": int(time.time()) - 1}))
    assert (await client.get("/")).status_code == 303
    client.cookies.set(SESSION_COOKIE, Signer("another-secret-key-that-is-long-enough-000").sign(payload))
    assert (await client.get("/")).status_code == 303


# -- CSRF -----------------------------------------------------------------------------------------------------


async def test_posts_without_the_token_or_from_another_origin_are_refused(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    message_id = await pending_message(client, auth, "Please approve me")
    token = await sign_in(client, auth)
    without = await client.post("/approvals/approve", data={"ids": message_id})
    assert without.status_code == 403
    wrong = await client.post("/approvals/approve", data={"ids": message_id, "csrf_token": token[:-1] + "x"})
    assert wrong.status_code == 403
    elsewhere = await client.post(
        "/approvals/approve", data={"ids": message_id, "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )  # fmt: skip
    assert elsewhere.status_code == 403
    as_json = await client.post("/approvals/approve", json={"ids": message_id, "csrf_token": token})
    assert as_json.status_code == 403
    assert (await client.post("/logout")).status_code == 403
    async with rt.sessions() as session:
        assert (await session.get(Message, message_id)).status == "pending_approval"  # type: ignore[union-attr]
    ok = await client.post(
        "/approvals/approve", data={"ids": message_id, "csrf_token": token},
        headers={"Origin": "http://herald.test"},
    )  # fmt: skip
    assert ok.status_code == 303
    async with rt.sessions() as session:
        assert (await session.get(Message, message_id)).status == "queued"  # type: ignore[union-attr]


# -- tenant isolation -----------------------------------------------------------------------------------------


async def test_another_tenant_sees_nothing_of_ours(
    rt: Runtime, client: httpx.AsyncClient, browser_b: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    message_id = await pending_message(client, auth, "Secret plans of tenant A")
    schedule_id = await a_schedule(client, auth)
    monitor_id = await a_monitor(client, auth)
    other = await new_tenant(rt, "globex")
    token_b = await sign_in(browser_b, other)

    for path in (f"/messages/{message_id}", f"/schedules/{schedule_id}", f"/monitors/{monitor_id}"):
        page = await browser_b.get(path)
        assert page.status_code == 404, path
        assert "Secret plans" not in page.text
    for path in ("/", "/approvals", "/approvals/live", "/messages", "/schedules", "/monitors", "/devinbox"):
        page = await browser_b.get(path)
        assert page.status_code == 200, path
        assert "Secret plans" not in page.text, path
        assert message_id not in page.text
        assert schedule_id not in page.text
        assert monitor_id not in page.text

    async def post_as_b(path: str, **data: object) -> int:
        return (await browser_b.post(path, data={**data, "csrf_token": token_b})).status_code

    assert await post_as_b("/approvals/approve", ids=message_id) == 303
    assert "could not be: no message" in (await browser_b.get("/approvals")).text
    assert await post_as_b("/approvals/reject", ids=message_id, reason="mine now") == 303
    assert await post_as_b(f"/messages/{message_id}/cancel") == 404
    assert await post_as_b(f"/schedules/{schedule_id}/pause") == 404
    assert await post_as_b(f"/monitors/{monitor_id}/pause") == 404
    assert await post_as_b(f"/monitors/{monitor_id}/test") == 404
    assert await post_as_b("/agents/intern/maturity", maturity_level="AUTONOMOUS") == 404
    detail = await client.get(f"/api/v1/messages/{message_id}", headers=auth)
    assert detail.json()["status"] == "pending_approval"
    schedule = await client.get(f"/api/v1/messaging/schedule/{schedule_id}", headers=auth)
    assert schedule.json()["status"] == "active"
    assert (await client.get("/api/v1/agents/intern", headers=auth)).json()["maturity_level"] == "INTERN"


# -- pages and actions ----------------------------------------------------------------------------------------


async def test_approve_and_reject_one_by_one_and_in_bulk(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    ids = [await pending_message(client, auth, f"Draft number {n}") for n in range(4)]
    token = await sign_in(client, auth)
    page = await client.get("/approvals")
    assert all(f'data-id="{i}"' in page.text for i in ids)
    assert '<span class="badge" data-live-count="approvals">4</span>' in page.text
    live = (await client.get("/approvals/live")).json()
    assert live["count"] == 4
    assert {item["id"] for item in live["items"]} == set(ids)
    assert 'name="csrf_token"' in live["items"][0]["html"]

    no_reason = await client.post(
        "/approvals/reject", data={"ids": ids[0], "csrf_token": token, "back": "/approvals"}
    )
    assert no_reason.status_code == 303
    notice = await client.get("/approvals")
    assert "Give a reason for rejecting." in notice.text
    assert "Give a reason" not in (await client.get("/approvals")).text  # the notice shows once

    await client.post("/approvals/reject", data={"ids": ids[0], "reason": "wrong tone", "csrf_token": token})
    await client.post("/approvals/approve", data={"ids": [ids[1], ids[2]], "csrf_token": token})
    both = await client.post("/approvals/approve", data={"ids": [ids[0], ids[3]], "csrf_token": token})
    notice = await client.get(both.headers["location"])
    assert "Approved 1 message. 1 message could not be" in notice.text
    await worker.drain()

    rejected = await client.get(f"/messages/{ids[0]}")
    assert "wrong tone" in rejected.text
    assert "message.rejected" in rejected.text
    sent = await client.get(f"/messages/{ids[1]}")
    assert "Attempt 1" in sent.text
    assert "accepted as dev_" in sent.text  # the provider's answer, here the dev inbox's id
    assert "dashboard:" in sent.text  # the audit names the dashboard session's key
    inbox = await client.get("/devinbox")
    assert "Draft number 1" in inbox.text
    assert "Draft number 2" in inbox.text
    assert "Draft number 0" not in inbox.text
    assert "Nothing is waiting for approval." in (await client.get("/approvals")).text


async def test_messages_filter_by_status_agent_platform_and_time(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    await make_agent(client, auth, "agent_123", "SUPERVISED")
    await pending_message(client, auth, "From the intern")
    sent = await client.post(
        "/api/v1/messaging/proactive/send", json=send_body(content="From the supervised", platform="discord",
                                                           recipient_id="123456789012345678"), headers=auth,
    )  # fmt: skip
    assert sent.status_code == 201, sent.text
    await sign_in(client, auth)
    everything = await client.get("/messages")
    assert "From the intern" in everything.text
    assert "From the supervised" in everything.text
    by_status = await client.get("/messages?status=pending_approval")
    assert "From the intern" in by_status.text
    assert "From the supervised" not in by_status.text
    by_agent = await client.get("/messages?agent=agent_123")
    assert "From the intern" not in by_agent.text
    assert "From the supervised" in by_agent.text
    by_platform = await client.get("/messages?platform=discord")
    assert "From the supervised" in by_platform.text
    assert "From the intern" not in by_platform.text
    future = await client.get("/messages?since=2999-01-01T00:00")
    assert "No messages match these filters." in future.text
    past = await client.get("/messages?until=2000-01-01T00:00")
    assert "No messages match these filters." in past.text
    bad = await client.get("/messages?since=yesterday&status=nonsense")
    assert bad.status_code == 200
    assert "not a date and time" in bad.text
    assert "unknown status" in bad.text


async def test_schedules_pause_and_resume_with_rule_in_words(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    schedule_id = await a_schedule(client, auth)
    token = await sign_in(client, auth)
    page = await client.get("/schedules")
    assert "Weekdays at 9:00 AM" in page.text
    assert "Europe/London" in page.text
    assert page.text.count("<time") >= 3  # the next three runs
    answer = await client.post(
        f"/schedules/{schedule_id}/pause", data={"csrf_token": token, "back": f"/schedules/{schedule_id}"}
    )
    assert answer.headers["location"] == f"/schedules/{schedule_id}"
    detail = await client.get(answer.headers["location"])
    assert "Schedule standup paused." in detail.text
    assert ">Resume<" in detail.text
    again = await client.post(f"/schedules/{schedule_id}/pause", data={"csrf_token": token})
    assert "only an active schedule can be paused" in (await client.get(again.headers["location"])).text
    await client.post(f"/schedules/{schedule_id}/resume", data={"csrf_token": token})
    state = await client.get(f"/api/v1/messaging/schedule/{schedule_id}", headers=auth)
    assert state.json()["status"] == "active"


async def test_monitors_show_state_value_chart_and_alerts(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    monitor_id = await a_monitor(client, auth)
    for value in (3, 50):
        pushed = await client.post(
            "/api/v1/monitoring/values", json={"name": "backlog", "value": value}, headers=auth
        )
        assert pushed.status_code == 201
    await engine.run_due(rt)
    token = await sign_in(client, auth)
    page = await client.get("/monitors")
    assert "backlog &gt; 10" in page.text
    assert "status-firing" in page.text
    assert "recent values 3, 50; threshold 10" in page.text
    assert 'class="spark-threshold"' in page.text
    live = (await client.get("/monitors/alerts/live")).json()
    assert live["count"] == 1
    assert "Backlog is firing: value 50" in live["items"][0]["html"]
    assert "firing" in (await client.get("/")).text  # open alerts on the overview

    tested = await client.post(f"/monitors/{monitor_id}/test", data={"csrf_token": token})
    assert "would fire" in (await client.get(tested.headers["location"])).text
    await client.post(f"/monitors/{monitor_id}/pause", data={"csrf_token": token})
    detail = await client.get(f"/monitors/{monitor_id}")
    assert "status-paused" in detail.text
    assert "Alert history" in detail.text
    await client.post(f"/monitors/{monitor_id}/resume", data={"csrf_token": token})
    assert "status-paused" not in (await client.get(f"/monitors/{monitor_id}")).text


async def test_agent_levels_change_only_with_an_admin_key_and_are_audited(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    token = await sign_in(client, auth)
    answer = await client.post(
        "/agents/intern/maturity", data={"csrf_token": token, "maturity_level": "SUPERVISED"}
    )
    assert answer.status_code == 303
    page = await client.get("/agents")
    assert "intern is now SUPERVISED (was INTERN)." in page.text
    assert "agent.updated" in page.text
    assert "INTERN → SUPERVISED" in page.text
    assert (await client.get("/api/v1/agents/intern", headers=auth)).json()["maturity_level"] == "SUPERVISED"
    bad = await client.post("/agents/intern/maturity", data={"csrf_token": token, "maturity_level": "BOSS"})
    assert bad.status_code == 422

    async with rt.sessions.begin() as session:
        await session.execute(update(ApiKey).values(is_admin=False))
    page = await client.get("/agents")
    assert "needs an admin API key" in page.text
    assert 'name="maturity_level"' not in page.text
    refused = await client.post(
        "/agents/intern/maturity", data={"csrf_token": token, "maturity_level": "STUDENT"}
    )
    assert refused.status_code == 403
    assert (await client.get("/api/v1/agents/intern", headers=auth)).json()["maturity_level"] == "SUPERVISED"


async def test_overview_counts_and_chart(
    client: httpx.AsyncClient, auth: dict[str, str], worker: Worker
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    await make_agent(client, auth, "agent_123", "AUTONOMOUS")
    await pending_message(client, auth, "Waiting")
    for n in range(3):
        sent = await client.post(
            "/api/v1/messaging/proactive/send", json=send_body(content=f"n{n}"), headers=auth
        )
        assert sent.status_code == 201
    await worker.drain()
    await sign_in(client, auth)
    page = await client.get("/")
    assert '<svg class="chart"' in page.text
    assert "4 messages in 24 hours. sent: 3; failed: 0; waiting: 1" in page.text
    assert "dev inbox (simulated)" in page.text
    assert "100.0 %" in page.text


def test_safe_next_keeps_redirects_on_this_site() -> None:
    assert safe_next("/approvals?agent=x") == "/approvals?agent=x"
    for bad in (
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
        "",
        None,
    ):
        assert safe_next(bad) == "/"


def test_charts_escape_their_text_and_scale() -> None:
    hours = [datetime(2026, 2, 4, h, tzinfo=UTC) for h in range(3)]
    svg = stacked_bars(hours, [Series("sent", "<sent>", [1, 0, 7])], title="A & B", chart_id="c")
    assert "A &amp; B" in svg
    assert "&lt;sent&gt; 7" in svg
    assert "<sent>" not in svg
    assert 'aria-labelledby="c-t c-d"' in svg
    assert ">10<" in svg  # a round axis above the peak of 7
    assert "no values yet" in sparkline([], threshold=None, title="x")
    line = sparkline([1.0, 2.0, 3.0], threshold=2.5, title="<m>")
    assert "&lt;m&gt;" in line
    assert "spark-threshold" in line


async def test_origin_may_be_the_forwarded_host_or_the_public_url_and_forms_stay_small(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    token = await sign_in(client, auth)
    forwarded = await client.post(
        "/approvals/approve", data={"ids": "msg_x", "csrf_token": token},
        headers={"Origin": "https://herald.example.com", "X-Forwarded-Host": "herald.example.com"},
    )  # fmt: skip
    assert forwarded.status_code == 303
    public = rt.settings.model_copy(update={"public_url": "https://public.example.com/herald"})
    behind_proxy = Runtime(public, engine=rt.engine)
    app = create_app(public, runtime=behind_proxy, run_worker=False)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://herald.test") as c:
        c.cookies.update(client.cookies)
        ok = await c.post(
            "/approvals/approve", data={"ids": "msg_x", "csrf_token": token},
            headers={"Origin": "https://public.example.com"},
        )  # fmt: skip
        assert ok.status_code == 303
        null = await c.post(
            "/approvals/approve", data={"ids": "msg_x", "csrf_token": token}, headers={"Origin": "null"}
        )
        assert null.status_code == 403
    await behind_proxy.close()
    flood = await client.post("/approvals/approve", content="&".join(f"ids=m{n}" for n in range(1200)),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert flood.status_code == 403


async def test_a_monitor_of_herald_figures_charts_the_values_its_alerts_saw(
    rt: Runtime, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_agent(client, auth, "intern", "INTERN")
    body = {"agent_id": "intern", "name": "Queue", "condition_type": "api_metrics",
            "threshold_config": {"metric": "queue_depth", "operator": ">=", "value": 0}}  # fmt: skip
    created = await client.post("/api/v1/monitoring/condition/create", json=body, headers=auth)
    assert created.status_code == 201, created.text
    await engine.run_due(rt)
    await sign_in(client, auth)
    page = await client.get(f"/monitors/{created.json()['id']}")
    assert "status-firing" in page.text
    assert "Queue: recent values 0, 0; threshold 0" in page.text  # the last value, then the alert's
