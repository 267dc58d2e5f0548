"""``herald demo dealership``'s steps against a Herald played by ``httpx.MockTransport``: a Herald without the
campaigns API stops the demo before anything is registered; one with it receives a data source, the agent and
eleven contract-shaped campaign bodies."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import httpx
import pytest

from herald.presets import dealership, demo

TODAY = date(2026, 3, 18)


def herald(campaigns: bool, seen: list[httpx.Request]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path.startswith("/api/v1/campaigns") and not campaigns:
            return httpx.Response(404, json={"title": "Not Found", "status": 404, "detail": "Not Found"})
        if request.method == "GET" and path == "/api/v1/campaigns":
            return httpx.Response(200, json={"items": [], "next_cursor": None})
        if path == "/api/v1/data-sources":
            return httpx.Response(201, json={"id": "dsr_1", "backend": "sqlite", "url": "sqlite:///x"})
        if request.method == "GET" and path.startswith("/api/v1/agents/"):
            return httpx.Response(404, json={"title": "Not Found", "status": 404})
        if path == "/api/v1/agents":
            return httpx.Response(201, json=json.loads(request.content))
        if request.method == "POST" and path == "/api/v1/campaigns":
            return httpx.Response(201, json={"id": f"cmp_{len(seen)}", **json.loads(request.content)})
        return httpx.Response(500)

    return httpx.Client(base_url="http://herald.test", transport=httpx.MockTransport(handle))


def test_without_the_campaigns_api_it_stops_before_registering_anything(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(demo.DemoError, match="no campaigns API"):
        demo.run(
            herald(False, seen), database_url=f"sqlite:///{tmp_path}/d.db", today=TODAY, seed=1, customers=5
        )
    assert [(r.method, r.url.path) for r in seen] == [("GET", "/api/v1/campaigns")]
    assert not (tmp_path / "d.db").exists()


def test_with_it_every_preset_becomes_a_campaign(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []
    result = demo.run(
        herald(True, seen), database_url=f"sqlite:///{tmp_path}/d.db", today=TODAY, seed=1, customers=20,
        timezone="America/Denver", run_now=False,
    )  # fmt: skip
    assert result.agent_created
    assert result.rows["customers"] > 20
    bodies = [json.loads(r.content) for r in seen if r.method == "POST" and r.url.path == "/api/v1/campaigns"]
    assert [b["event_type"] for b in bodies] == [p.key for p in dealership.PRESETS]
    assert all(b["data_source_id"] == "dsr_1" and b["timezone"] == "America/Denver" for b in bodies)
    assert bodies[0] == dealership.campaign_body(
        dealership.PRESETS[0], agent_id="dealer-agent", data_source_id="dsr_1", dialect="sqlite",
        timezone="America/Denver",
    )  # fmt: skip
