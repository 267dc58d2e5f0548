"""Setup in a real browser: a contact created from its form (the API's error shown beside the field first,
then fixed), edited and found through the API; the same with JavaScript turned off."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import LiveHerald
from tests.browser.test_dashboard_browser import expect, sign_in

pytestmark = pytest.mark.browser


def contact_named(live: LiveHerald, name: str) -> dict[str, Any] | None:
    items = live.api.get("/api/v1/contacts", params={"limit": 1000}).json()["items"]
    return next((c for c in items if c["name"] == name), None)


def create_contact_through_the_form(page: Any, name: str) -> None:
    page.goto("/manage")
    page.get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="New contact").click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Addresses").fill("sms: +15550199\nemail: grace@example.com")
    page.get_by_label("Timezone").fill("Mars/Olympus_Mons")
    page.get_by_role("button", name="Create").click()

    timezone = page.locator('[data-field="timezone"]')
    expect(timezone.locator(".field-error")).to_be_visible()
    expect(timezone.locator(".field-error")).to_contain_text("time zone")
    expect(page.get_by_label("Timezone")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Addresses")).to_have_value("sms: +15550199\nemail: grace@example.com")

    page.get_by_label("Timezone").fill("Europe/London")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("status")).to_contain_text(f"Created contact {name}.")


def test_a_contact_from_its_form_with_an_error_beside_its_field_then_edited(
    page: Any, live_herald: LiveHerald, console_errors: list[str]
) -> None:
    sign_in(page, live_herald)
    create_contact_through_the_form(page, "Grace Hopper")
    made = contact_named(live_herald, "Grace Hopper")
    assert made is not None
    assert made["addresses"] == {"sms": "+15550199", "email": "grace@example.com"}
    assert made["timezone"] == "Europe/London"

    page.locator(f'tr[data-id="{made["id"]}"]').get_by_role("link", name="Edit").click()
    page.get_by_label("Channel order").fill("email\nsms")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Saved contact")
    assert contact_named(live_herald, "Grace Hopper")["channel_order"] == ["email", "sms"]  # type: ignore[index]
    assert console_errors == []


def test_the_forms_work_without_javascript(browser: Any, live_herald: LiveHerald) -> None:
    context = browser.new_context(base_url=live_herald.base_url, java_script_enabled=False)
    context.set_default_timeout(10_000)
    try:
        page = context.new_page()
        sign_in(page, live_herald)
        create_contact_through_the_form(page, "Katherine Johnson")
        assert contact_named(live_herald, "Katherine Johnson") is not None
    finally:
        context.close()
