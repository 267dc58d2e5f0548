"""``herald demo dealership``: build the demo dealership database, register it with a running Herald, and
create one campaign per preset, all through the public API (what a tenant would do by hand).

The steps talk HTTP through an injected ``httpx.Client`` (tests pass ``httpx.MockTransport``). The campaigns
API is asked first, before anything is registered: a Herald without it answers 404 and the demo says so and
stops, rather than leave a data source behind or pretend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from herald.presets import dealership
from herald.presets.dealership_data import build

CAMPAIGNS = "/api/v1/campaigns"
AGENT_LEVEL = "SUPERVISED"  # the demo's messages send without approval; a real dealer may start lower


class DemoError(Exception):
    """The demo could not go on; the message says why and what to do."""


@dataclass
class DemoResult:
    rows: dict[str, int]
    data_source: dict[str, Any]
    agent_created: bool
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)  # one per campaign when the demo runs them


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"
    errors = body.get("errors") or []
    fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors if isinstance(e, dict))
    return f"{response.status_code} {body.get('title', '')}: {body.get('detail', '')}" + (
        f" ({fields})" if fields else ""
    )


def _expect(response: httpx.Response, what: str, *statuses: int) -> dict[str, Any]:
    if response.status_code not in statuses:
        raise DemoError(f"{what} failed: {_problem(response)}")
    answer: dict[str, Any] = response.json()
    return answer


def require_campaigns_api(http: httpx.Client) -> None:
    """DemoError unless the Herald at hand serves the campaigns API (a 404 means this version has none)."""
    response = http.get(CAMPAIGNS, params={"limit": 1})
    if response.status_code == 404:
        raise DemoError(
            f"this Herald has no campaigns API ({http.base_url}{CAMPAIGNS} answered 404): the presets need a "
            "Herald with campaigns; nothing was registered"
        )
    _expect(response, f"GET {CAMPAIGNS}", 200)


def ensure_agent(http: httpx.Client, agent_id: str) -> bool:
    """Register ``agent_id`` unless it exists; True when it was created here."""
    found = http.get(f"/api/v1/agents/{agent_id}")
    if found.status_code == 200:
        return False
    if found.status_code != 404:
        raise DemoError(f"looking up agent {agent_id} failed: {_problem(found)}")
    _expect(http.post("/api/v1/agents", json={"id": agent_id, "maturity_level": AGENT_LEVEL}), "agent", 201)
    return True


def run(
    http: httpx.Client,
    *,
    database_url: str,
    today: date,
    seed: int,
    customers: int,
    agent_id: str = dealership.DEFAULT_AGENT_ID,
    timezone: str | None = None,
    run_now: bool = True,
    progress: Callable[[str], None] = lambda _line: None,
) -> DemoResult:
    """Every step of the demo, in order; DemoError at the first that fails."""
    require_campaigns_api(http)
    progress(f"building the dealership database at {database_url} ({customers} customers, seed {seed}) ...")
    rows = asyncio.run(build(database_url, today, seed=seed, customers=customers))
    source = _expect(
        http.post(
            "/api/v1/data-sources", json={"name": f"Dealership demo (seed {seed})", "url": database_url}
        ),
        "registering the data source",
        201,
    )
    result = DemoResult(rows=rows, data_source=source, agent_created=ensure_agent(http, agent_id))
    for preset in dealership.PRESETS:
        body = dealership.campaign_body(
            preset,
            agent_id=agent_id,
            data_source_id=source["id"],
            dialect=source["backend"],
            timezone=timezone,
        )
        response = http.post(CAMPAIGNS, json=body)
        if response.status_code == 404:
            raise DemoError(f"POST {CAMPAIGNS} answered 404: this Herald has no campaigns API")
        result.campaigns.append(_expect(response, f"creating campaign {preset.key}", 201))
    if run_now:
        result.runs = [run_campaign(http, campaign, progress) for campaign in result.campaigns]
    return result


def run_campaign(
    http: httpx.Client, campaign: dict[str, Any], progress: Callable[[str], None]
) -> dict[str, Any]:
    """Run ``campaign`` once now, as its schedule would on the day the data was built around, so every rule's
    messages show in the dev inbox at once instead of on its next cron date (spring's is in March)."""
    progress(f"running {campaign['name']} ...")
    return _expect(
        http.post(f"{CAMPAIGNS}/{campaign['id']}/run"), f"running campaign {campaign['name']}", 200
    )
