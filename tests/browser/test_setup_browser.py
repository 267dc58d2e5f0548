"""Setup in Chromium: a brand-new tenant walked from sign-in to its first message delivered to the dev inbox
using the dashboard alone, and every Setup page (each managed object's list and form, the template library,
the first message) free of console errors and of horizontal overflow at 1280 and 390 px."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from herald.runtime import Runtime
from herald.web.dashboard.manage import RESOURCES
from tests.browser.conftest import LiveHerald
from tests.browser.test_dashboard_browser import expect, reload_until, sign_in
from tests.conftest import new_tenant

pytestmark = pytest.mark.browser
_serial = itertools.count(1)

SETUP_PAGES = (
    "/manage",
    *(f"/manage/{r.key}" for r in RESOURCES),
    *(f"/manage/{r.key}/new" for r in RESOURCES if r.create is not None),
    "/manage/templates",
    "/manage/templates/seven_day_checkin/email/en",
    "/manage/templates/my_own_event/sms/en",
    "/manage/first-message",
    "/campaigns",
)


def fresh_key(live: LiveHerald) -> str:
    """A tenant of its own, with nothing in it: no agent, no channel, no message."""

    async def create(rt: Runtime) -> str:
        headers = await new_tenant(rt, f"first-run-{next(_serial)}")
        return headers["Authorization"].removeprefix("Bearer ")

    key: str = live.run(create)
    return key


def step(page: Any, key: str) -> Any:
    return page.locator(f'[data-step="{key}"]')


def test_an_empty_tenant_reaches_a_delivered_first_message_from_the_dashboard_alone(
    page: Any, live_herald: LiveHerald, console_errors: list[str]
) -> None:
    key = fresh_key(live_herald)
    page.goto("/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name="Get started")).to_be_visible()
    expect(step(page, "channel")).to_contain_text("Done")  # development: the dev inbox needs no channel
    expect(step(page, "agent")).to_contain_text("Not done")
    expect(step(page, "message")).to_contain_text("Not done")

    step(page, "agent").get_by_role("link", name="Register an agent").click()
    page.locator("#f-id").fill("first-agent")
    page.locator("#f-maturity-level").select_option("AUTONOMOUS")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("status").filter(has_text="Created agent")).to_be_visible()

    page.goto("/")
    expect(step(page, "agent")).to_contain_text("Done")
    step(page, "message").get_by_role("link", name="Send a first message").click()
    expect(page.get_by_role("heading", name="Send a first message")).to_be_visible()
    text = "Hello from a brand-new tenant"
    page.locator("#f-agent-id").select_option("first-agent")
    page.locator("#f-content").fill(text)
    page.get_by_role("button", name="Send").click()
    expect(page.locator("h1")).to_contain_text("Message accepted")
    page.get_by_role("link", name="Open the dev inbox").click()
    reload_until(page, "/devinbox", lambda p: p.locator(".bubble").filter(has_text=text).count() == 1)
    expect(page.locator(".bubble").filter(has_text=text)).to_be_visible()

    page.goto("/")
    expect(page.get_by_role("heading", name="Get started")).to_have_count(0)  # all three steps done
    assert console_errors == []


def test_every_setup_page_is_clean_and_fits_390px(
    page: Any, live_herald: LiveHerald, console_errors: list[str]
) -> None:
    sign_in(page, live_herald)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for path in SETUP_PAGES:
            answer = page.goto(path)
            assert answer is not None
            assert answer.status == 200, (path, answer.status)
            expect(page.locator("h1")).to_be_visible()
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{path} is {overflow} px too wide at {width} px"
    assert console_errors == []
