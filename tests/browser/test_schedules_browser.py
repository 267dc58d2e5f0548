"""A schedule's rule typed in a real browser: its next five runs previewed live (static/dashboard.js asks
/manage/schedules/preview), in the zone chosen; the same preview by the Preview button without JavaScript."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import LiveHerald
from tests.browser.test_dashboard_browser import expect, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def agent(live_herald: LiveHerald) -> None:
    answer = live_herald.api.post("/api/v1/agents", json={"id": "planner", "maturity_level": "AUTONOMOUS"})
    assert answer.status_code in (201, 409), answer.text


def fill_message(page: Any, name: str) -> None:
    page.locator("#f-agent-id").fill("planner")
    page.locator("#f-platform").fill("slack")
    page.locator("#f-recipient-id").fill("C0PLAN")
    page.locator("#f-template").fill("Standup in 5")
    page.locator("#f-name").fill(name)


def schedule_named(live: LiveHerald, name: str) -> dict[str, Any] | None:
    items = live.api.get("/api/v1/messaging/schedule/list", params={"limit": 1000}).json()["items"]
    return next((s for s in items if s["name"] == name), None)


def test_typing_a_rule_previews_its_next_runs_live(
    page: Any, live_herald: LiveHerald, console_errors: list[str]
) -> None:
    sign_in(page, live_herald)
    page.goto("/schedules")
    page.get_by_role("link", name="New schedule").click()
    fill_message(page, "weekday standup")
    preview = page.locator("#preview")
    expect(preview).to_contain_text("Write a rule")

    page.locator("#f-timezone").fill("Europe/London")
    page.locator("#f-natural-language-schedule").fill("every weekday at 9:30am")
    expect(preview.locator(".preview-title")).to_have_text("Next 5 runs (Europe/London)")
    expect(preview.locator(".preview-lines li")).to_have_count(5)
    expect(preview.locator(".preview-description")).to_contain_text("cron 30 9 * * 1-5")
    for line in preview.locator(".preview-lines li").all_inner_texts():
        assert " 09:30 " in line, line
        assert line.split()[0] in ("Mon", "Tue", "Wed", "Thu", "Fri"), line

    page.locator("#f-timezone").fill("Asia/Tokyo")  # the same rule, read in another zone
    expect(preview.locator(".preview-title")).to_have_text("Next 5 runs (Asia/Tokyo)")
    expect(preview.locator(".preview-lines li").first).to_contain_text("JST")

    page.locator("#f-natural-language-schedule").fill("every monday at 2:30pm")
    expect(preview.locator(".preview-description")).to_contain_text("cron 30 14 * * 1")
    expect(preview.locator(".preview-lines li").first).to_contain_text("Mon")

    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("status")).to_contain_text("Created schedule weekday standup.")
    made = schedule_named(live_herald, "weekday standup")
    assert made is not None
    assert (made["cron_expression"], made["timezone"]) == ("30 14 * * 1", "Asia/Tokyo")
    assert console_errors == []


def test_a_rule_not_understood_says_why_as_it_is_typed(
    page: Any, live_herald: LiveHerald, console_errors: list[str]
) -> None:
    sign_in(page, live_herald)
    page.goto("/manage/schedules/new")
    page.locator("#f-cron-expression").fill("61 * * * *")
    preview = page.locator("#preview")
    expect(preview.locator(".preview-title")).to_have_text("Not a rule yet")
    expect(preview).to_contain_text("minute")
    page.locator("#f-cron-expression").fill("*/15 * * * *")
    expect(preview.locator(".preview-title")).to_have_text("Next 5 runs (UTC)")
    assert console_errors == []  # a half-typed rule is no error of the page


def test_the_preview_button_without_javascript(browser: Any, live_herald: LiveHerald) -> None:
    context = browser.new_context(base_url=live_herald.base_url, java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        sign_in(page, live_herald)
        page.goto("/manage/schedules/new")
        fill_message(page, "nightly")
        page.locator("#f-cron-expression").fill("0 2 * * *")
        page.locator("#f-timezone").fill("America/New_York")
        page.get_by_role("button", name="Preview").click()
        expect(page.locator("#preview .preview-title")).to_have_text("Next 5 runs (America/New_York)")
        expect(page.locator("#preview .preview-lines li")).to_have_count(5)
        assert schedule_named(live_herald, "nightly") is None
        page.get_by_role("button", name="Create").click()
        expect(page.get_by_role("status")).to_contain_text("Created schedule nightly.")
    finally:
        context.close()
