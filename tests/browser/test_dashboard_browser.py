"""The dashboard in a real browser against a real Herald: sign in, approve (and see it delivered to the dev inbox),
reject, pause a schedule, watch an alert appear, answer a Telegram conversation, and every page free of console
errors at 1280 and 390 px."""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

import pytest

from herald.core.principal import Principal
from herald.fakes.inbound import message
from herald.producers.monitors import service as monitoring
from herald.runtime import Runtime
from tests.browser.conftest import Fakes, LiveHerald

pytestmark = pytest.mark.browser

PAGES = (
    "/", "/approvals", "/conversations", "/messages", "/schedules", "/monitors", "/devinbox", "/interfaces",
    "/agents", "/campaigns",
)  # fmt: skip
TELEGRAM = {"bot_token": "123456:" + "A" * 35, "secret_token": "tg-secret-token"}
_serial = itertools.count(1)


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture(scope="module", autouse=True)
def agents(live_herald: LiveHerald) -> None:
    for agent_id, level in (("intern", "INTERN"), ("agent_123", "AUTONOMOUS")):
        answer = live_herald.api.post("/api/v1/agents", json={"id": agent_id, "maturity_level": level})
        assert answer.status_code == 201, answer.text


def sign_in(page: Any, live: LiveHerald) -> None:
    page.goto("/login")
    page.get_by_label("API key").fill(live.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()


def pending(live: LiveHerald, text: str) -> str:
    body = {"agent_id": "intern", "platform": "slack", "recipient_id": "C0DASH", "content": text}
    answer = live.api.post("/api/v1/messaging/proactive/send", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "pending_approval"
    message_id: str = answer.json()["id"]
    return message_id


def schedule(live: LiveHerald, name: str) -> str:
    body = {"agent_id": "intern", "platform": "slack", "recipient_id": "C0DASH", "template": "Standup time",
            "cron_expression": "30 8 * * 1-5", "timezone": "Europe/Paris", "name": name}  # fmt: skip
    answer = live.api.post("/api/v1/messaging/schedule/create", json=body)
    assert answer.status_code == 201, answer.text
    schedule_id: str = answer.json()["id"]
    return schedule_id


def fast_monitor(live: LiveHerald, name: str, metric: str) -> str:
    """A monitor checked every second (the API's floor is 10 s; the service takes any interval)."""

    async def create(rt: Runtime) -> str:
        async with rt.sessions.begin() as session:
            tenant_id = (await rt_principal(rt, live.key)).tenant_id
            principal = Principal(tenant_id=tenant_id, key_id="browser-test", is_admin=True)
            spec = monitoring.MonitorSpec(
                agent_id="agent_123", name=name, check_interval_seconds=1, throttle_seconds=3600,
                condition={"condition_type": "metric",
                           "threshold_config": {"metric": metric, "operator": ">", "value": 10}},
                platforms=[{"platform": "slack", "recipient_id": "C0ALERTS"}],
            )  # fmt: skip
            return (await monitoring.create(rt, session, principal, spec)).id

    monitor_id: str = live.run(create)
    return monitor_id


async def rt_principal(rt: Runtime, key: str) -> Principal:
    from herald.admin.tenants import principal_for_key

    async with rt.sessions() as session:
        principal = await principal_for_key(session, key)
    assert principal is not None
    return principal


def reload_until(page: Any, path: str, found: Any, seconds: float = 10.0) -> None:
    """Open ``path`` again until ``found(page)`` holds: for pages that do not update themselves."""
    deadline = time.monotonic() + seconds
    while True:
        page.goto(path)
        if found(page):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{path} never showed what was expected")
        time.sleep(0.2)


def card(page: Any, message_id: str) -> Any:
    return page.locator(f'article[data-id="{message_id}"]')


def test_sign_in_then_every_page_is_clean_keyboard_usable_and_fits_390px(
    page: Any, live_herald: LiveHerald, console_errors: list[str]
) -> None:
    pending(live_herald, "Layout check message with a long unbroken word " + "x" * 120)
    schedule(live_herald, "layout")
    live_herald.api.post("/api/v1/monitoring/values", json={"name": "layout_metric", "value": 4})
    fast_monitor(live_herald, "Layout monitor", "layout_metric")

    page.goto("/login")
    page.get_by_label("API key").fill("hk_not_a_real_key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or was revoked")
    assert "hk_not_a_real_key" not in page.content()
    sign_in(page, live_herald)

    page.keyboard.press("Tab")  # the first stop is the skip link, and it leads to the content
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for path in PAGES:
            page.goto(path)
            expect(page.locator("h1")).to_be_visible()
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} is {overflow} px too wide at {width} px"
    assert console_errors == []


def test_approve_a_pending_message_and_see_it_delivered_to_the_dev_inbox(
    page: Any, live_herald: LiveHerald, console_errors: list[str]
) -> None:
    sign_in(page, live_herald)
    page.goto("/approvals")
    text = f"Quarterly numbers are in, batch {next(_serial)}"
    message_id = pending(live_herald, text)  # arrives while the page is open
    expect(card(page, message_id)).to_contain_text(text)  # shown without a reload
    expect(page.locator("[data-live-count=approvals]")).to_have_text(re.compile(r"\d+"))
    card(page, message_id).get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status").filter(has_text="Approved 1 message.")).to_be_visible()
    expect(card(page, message_id)).to_have_count(0)

    reload_until(page, "/devinbox", lambda p: p.locator(f'[data-message-id="{message_id}"]').count() == 1)
    bubble = page.locator(f'[data-message-id="{message_id}"]')
    expect(bubble).to_contain_text(text)
    bubble.get_by_role("link", name="message").click()
    expect(page.locator("h1")).to_contain_text("sent")
    expect(page.locator(".timeline").first).to_contain_text("Attempt 1")
    assert console_errors == []


def test_reject_a_message_with_a_reason(
    page: Any, live_herald: LiveHerald, console_errors: list[str]
) -> None:
    message_id = pending(live_herald, "Buy our stuff!!!")
    sign_in(page, live_herald)
    page.goto("/approvals")
    card(page, message_id).get_by_label("Reason").fill("too pushy")
    card(page, message_id).get_by_role("button", name="Reject").click()
    expect(page.get_by_role("status").filter(has_text="Rejected 1 message.")).to_be_visible()
    expect(card(page, message_id)).to_have_count(0)
    page.goto(f"/messages/{message_id}")
    expect(page.locator("h1")).to_contain_text("rejected")
    expect(page.locator("main")).to_contain_text("too pushy")
    assert live_herald.api.get(f"/api/v1/messages/{message_id}").json()["status"] == "rejected"
    assert console_errors == []


def test_approve_several_selected_at_once(
    page: Any, live_herald: LiveHerald, console_errors: list[str]
) -> None:
    ids = [pending(live_herald, f"Bulk {n}") for n in range(2)]
    sign_in(page, live_herald)
    page.goto("/approvals")
    for message_id in ids:
        card(page, message_id).get_by_role("checkbox").check()
    page.get_by_role("button", name="Approve selected").click()
    expect(page.get_by_role("status").filter(has_text="Approved 2 messages.")).to_be_visible()
    for message_id in ids:
        assert live_herald.api.get(f"/api/v1/messages/{message_id}").json()["status"] != "pending_approval"
    assert console_errors == []


def test_pause_a_schedule(page: Any, live_herald: LiveHerald, console_errors: list[str]) -> None:
    name = f"weekly-{next(_serial)}"
    schedule_id = schedule(live_herald, name)
    sign_in(page, live_herald)
    page.goto("/schedules")
    row = page.locator(f'tr[data-id="{schedule_id}"]')
    expect(row).to_contain_text("Weekdays at 8:30 AM")
    row.get_by_role("button", name=f"Pause {name}").click()
    expect(page.get_by_role("status").filter(has_text=f"Schedule {name} paused.")).to_be_visible()
    expect(row.locator(".status")).to_have_text("paused")
    expect(row.get_by_role("button", name=f"Resume {name}")).to_be_visible()
    assert live_herald.api.get(f"/api/v1/messaging/schedule/{schedule_id}").json()["status"] == "paused"
    assert console_errors == []


def test_a_pushed_value_fires_a_monitor_and_the_alert_appears(
    page: Any, live_herald: LiveHerald, console_errors: list[str]
) -> None:
    metric = f"queue_errors_{next(_serial)}"
    live_herald.api.post("/api/v1/monitoring/values", json={"name": metric, "value": 2})
    monitor_id = fast_monitor(live_herald, "Queue errors", metric)
    sign_in(page, live_herald)
    page.goto("/monitors")
    row = page.locator(f'tr[data-id="{monitor_id}"]')
    expect(row.locator(".status").first).to_have_text("ok")

    answer = live_herald.api.post("/api/v1/monitoring/values", json={"name": metric, "value": 42})
    assert answer.status_code == 201
    expect(row.locator(".status").first).to_have_text("firing")  # updated in place, no reload
    alert = page.locator("#alerts tr", has_text="Queue errors is firing: value 42")
    expect(alert).to_be_visible()
    expect(row).to_contain_text("42")

    row.get_by_role("button", name="Test Queue errors now").click()
    expect(page.get_by_role("status").filter(has_text="would fire")).to_be_visible()
    page.goto(f"/monitors/{monitor_id}")
    expect(page.locator("main table")).to_contain_text("Queue errors is firing: value 42")
    assert console_errors == []


def overflow_at_390(page: Any, path: str) -> None:
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(path)
    expect(page.locator("h1")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{path} is {overflow} px too wide at 390 px"


def test_answer_a_telegram_conversation_from_the_conversations_page(
    page: Any, live_herald: LiveHerald, fakes: Fakes, console_errors: list[str]
) -> None:
    api = live_herald.api
    agent = {"id": "concierge", "maturity_level": "AUTONOMOUS", "callback_url": fakes.agent_url}
    assert api.post("/api/v1/agents", json=agent).status_code == 201
    body = {"platform": "telegram", "provider": "telegram", "name": "Support bot", "credentials": TELEGRAM,
            "base_url": fakes.base_url}  # fmt: skip
    answer = api.post("/api/v1/channels", json=body)
    assert answer.status_code == 201, answer.text
    channel_id = answer.json()["id"]
    assert (
        api.post(
            "/api/v1/routing-rules", json={"agent_id": "concierge", "channel_id": channel_id}
        ).status_code
        == 201
    )
    fakes.reply = lambda data: f"Thanks {data['message']['sender_name']}, a person will look at it."

    # A person writes to the bot: Telegram's signed webhook; the live processor calls the agent, which answers.
    inbound = message("telegram", TELEGRAM, text="Is my parcel on its way? " + "z" * 90, sender_id="777001",
                      sender_name="Grace Hopper", message_id=4001)  # fmt: skip
    answer = api.post(
        f"/api/v1/interfaces/{channel_id}/webhook", content=inbound.body, headers=inbound.headers
    )
    assert answer.status_code == 200, answer.text

    sign_in(page, live_herald)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Conversations").click()
    row = page.locator("tr", has_text="Grace Hopper")
    expect(row).to_contain_text("telegram")
    expect(row).to_contain_text("Support bot")
    reload_until(
        page, "/conversations", lambda p: "concierge" in p.locator("tr", has_text="Grace Hopper").inner_text()
    )
    row.get_by_role("link", name="Grace Hopper").click()
    expect(page.locator("h1")).to_contain_text("Grace Hopper")

    thread = page.locator("#thread")
    expect(thread.locator(".bubble.inbound")).to_contain_text("Is my parcel on its way?")
    agent_reply = thread.locator(".bubble.outbound", has_text="Thanks Grace Hopper")
    expect(agent_reply.locator(".status")).to_have_text("sent")  # delivered while the page is open
    expect(page.locator(".session")).to_contain_text("Is my parcel on its way?")

    page.get_by_label("Reply text").fill("A courier picks it up at 3 pm today.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status").filter(has_text="Reply by concierge")).to_be_visible()
    ours = thread.locator(".bubble.outbound", has_text="A courier picks it up at 3 pm today.")
    expect(ours).to_be_visible()
    expect(ours.locator(".who")).to_contain_text("concierge")
    expect(ours.locator(".status")).to_have_text("sent")  # the live region follows it to the provider
    bubbles = thread.locator(".bubble")
    expect(bubbles).to_have_count(3)
    # what people sent on the left, what was answered on the right
    left = thread.locator(".bubble.inbound").bounding_box()
    right = ours.bounding_box()
    assert left is not None
    assert right is not None
    assert right["x"] + right["width"] > left["x"] + left["width"]
    assert right["x"] > left["x"]

    sent = [r for r in fakes.state.requests if "A courier picks it up" in r.body]
    assert len(sent) == 1
    assert sent[0].json["chat_id"] in (777001, "777001")
    assert sent[0].json["reply_parameters"]["message_id"] == 4001  # threaded to the last message

    conversation = page.url.removeprefix(live_herald.base_url)
    page.goto("/interfaces")
    interface = page.locator(f'tr[data-id="{channel_id}"]')
    expect(interface).to_contain_text("Support bot")
    expect(interface.locator(".status").first).to_have_text("enabled")
    for path in ("/conversations", conversation, "/interfaces"):
        overflow_at_390(page, path)
    assert console_errors == []
