"""Channels in Chromium: choose Slack, fill its own credentials form (pointed at the Slack fake), create the
channel, then press Send test and read the provider's answer in the notice, delivered and refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import Fakes, LiveHerald
from tests.browser.test_dashboard_browser import expect, sign_in

pytestmark = pytest.mark.browser

BOT_TOKEN = "xoxb-browser-secret-token-42"


def test_create_a_slack_channel_from_its_form_and_send_a_test(
    page: Any, live_herald: LiveHerald, fakes: Fakes, console_errors: list[str]
) -> None:
    sign_in(page, live_herald)
    page.goto("/manage/channels")
    page.get_by_role("link", name="New channel").click()
    page.get_by_label("Provider").select_option("slack")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#chosen-provider")).to_have_text("slack")
    expect(page.get_by_label("Platform")).to_have_value("slack")
    page.get_by_label("Name").fill("Browser Slack")
    page.get_by_label("Base url").fill(fakes.base_url)
    token = page.get_by_label("Bot token")
    expect(token).to_have_attribute("type", "password")
    token.fill(BOT_TOKEN)
    page.get_by_role("button", name="Create").click()

    expect(page.get_by_role("status")).to_contain_text("Created channel Browser Slack.")
    row = page.locator("tr", has_text="Browser Slack")
    expect(row).to_contain_text("bot_token")
    assert BOT_TOKEN not in page.content()

    page.get_by_label("Test recipient for Browser Slack").fill("C0BROWSER")
    page.get_by_role("button", name="Send test through Browser Slack").click()
    expect(page.get_by_role("status")).to_contain_text("Test delivered by slack (message id ")
    sent = [r for r in fakes.state.requests if r.path == "/api/chat.postMessage" and "C0BROWSER" in r.body]
    assert len(sent) == 1
    assert sent[0].headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert sent[0].json == {"channel": "C0BROWSER", "text": "Herald test message"}

    page.get_by_label("Test recipient for Browser Slack").fill("UNKNOWN1")  # the fake's unknown channel
    page.get_by_role("button", name="Send test through Browser Slack").click()
    expect(page.get_by_role("alert")).to_contain_text("Test not delivered: slack answered: ")
    expect(page.get_by_role("alert")).to_contain_text("channel_not_found")
    assert console_errors == []
