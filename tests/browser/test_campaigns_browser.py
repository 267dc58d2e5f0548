"""The Campaigns pages in Chromium: an INTERN's campaign run held with its preview, approved with one press,
and its messages delivered to the dev inbox; pausing a campaign from its page."""

from __future__ import annotations

import itertools
import sqlite3
from typing import Any

import pytest

from tests.browser.conftest import LiveHerald
from tests.browser.test_dashboard_browser import expect, sign_in

pytestmark = pytest.mark.browser
_serial = itertools.count(1)


@pytest.fixture(scope="module")
def source(live_herald: LiveHerald, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A dealership's own database (SQLite) registered as a data source, and the campaign's INTERN agent."""
    path = tmp_path_factory.mktemp("dealer") / "dealer.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, first_name TEXT, email TEXT)")
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?)",
            [(1, "Ada", "ada@example.com"), (2, "Bob", "bob@example.com")],
        )
    conn.close()
    answer = live_herald.api.post("/api/v1/data-sources", json={"name": "dealer", "url": f"sqlite:///{path}"})
    assert answer.status_code == 201, answer.text
    agent = live_herald.api.post("/api/v1/agents", json={"id": "dealer-intern", "maturity_level": "INTERN"})
    assert agent.status_code in (201, 409), agent.text
    source_id: str = answer.json()["id"]
    return source_id


def campaign(live: LiveHerald, source_id: str) -> dict[str, Any]:
    body = {
        "name": f"Spring {next(_serial)}", "agent_id": "dealer-intern", "data_source_id": source_id,
        "audience_query": "SELECT customer_id, first_name, email FROM customers ORDER BY customer_id",
        "schedule": "0 9 1 3 *", "timezone": "America/Chicago", "event_type": "spring_reminder",
        "channels": [{"platform": "email", "address_column": "email"}],
        "variables": {"dealership_name": "Riverside Power", "dealership_phone": "(555) 010-2300",
                      "equipment_model": "mower", "booking_url": "https://dealer.example/book"},
        "dedupe_key": ["customer_id"], "dedupe_period": "year",
    }  # fmt: skip
    answer = live.api.post("/api/v1/campaigns", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def test_approve_a_held_run_from_its_preview_and_see_the_messages_delivered(
    page: Any, live_herald: LiveHerald, source: str, console_errors: list[str]
) -> None:
    created = campaign(live_herald, source)
    held = live_herald.api.post(f"/api/v1/campaigns/{created['id']}/run").json()
    assert held["status"] == "pending_approval"
    sign_in(page, live_herald)

    page.goto("/campaigns")
    page.get_by_role("link", name=created["name"]).click()
    run = page.locator(f'article[data-id="{held["id"]}"]')
    expect(run).to_contain_text("Nothing is sent until this run is approved")
    expect(run).to_contain_text("Get your mower ready for spring")  # the email template's subject, rendered
    expect(run).to_contain_text("ada@example.com")
    run.get_by_role("button", name="Approve run").click()

    expect(page.get_by_role("status").filter(has_text="Run approved: 2 messages created.")).to_be_visible()
    expect(page.locator(f'article[data-id="{held["id"]}"]')).to_have_count(0)
    page.goto("/devinbox")
    expect(page.locator("main")).to_contain_text("Hi Ada,")
    expect(page.locator("main")).to_contain_text("Hi Bob,")
    assert console_errors == []


def test_pause_a_campaign_from_its_page(
    page: Any, live_herald: LiveHerald, source: str, console_errors: list[str]
) -> None:
    created = campaign(live_herald, source)
    sign_in(page, live_herald)
    page.goto(f"/campaigns/{created['id']}")
    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("status").filter(has_text=f"Campaign {created['name']} paused.")).to_be_visible()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    assert live_herald.api.get(f"/api/v1/campaigns/{created['id']}").json()["status"] == "paused"
    assert console_errors == []
