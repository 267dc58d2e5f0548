"""Agents against the fake OpenAI-compatible server (and the provider fakes), through the runtime's HTTP client."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from herald.fakes import FakeLLMState, FakeState, create_fake_app
from herald.runtime import Runtime

LLM_BASE = "http://llm.fake/v1"


class Fakes:
    def __init__(self, rt: Runtime) -> None:
        self.llm = FakeLLMState()
        self.providers = FakeState()
        self.callbacks: list[httpx.Request] = []
        self.callback_answer: dict[str, Any] | None = {"reply": "On it."}
        app = httpx.ASGITransport(app=create_fake_app(self.providers, llm_state=self.llm))

        async def handle(request: httpx.Request) -> httpx.Response:
            if request.url.host == "agent.example":
                self.callbacks.append(request)
                return httpx.Response(200, json=self.callback_answer)
            if request.url.host == "relay.example":
                return httpx.Response(200, json={"ok": True})
            return await app.handle_async_request(request)

        rt.http = httpx.AsyncClient(transport=httpx.MockTransport(handle))

    def model_requests(self) -> list[dict[str, Any]]:
        return [r.json for r in self.llm.requests]


@pytest.fixture
def fakes(rt: Runtime) -> Fakes:
    return Fakes(rt)


def llm_agent(agent_id: str, level: str = "AUTONOMOUS", **llm: Any) -> dict[str, Any]:
    return {
        "id": agent_id, "maturity_level": level, "kind": "llm", "api_key": "sk-test-123",
        "llm": {"base_url": LLM_BASE, "model": "fake-model", **llm},
    }  # fmt: skip


async def register(client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/agents", json=body, headers=auth)
    assert response.status_code == 201, response.text
    out: dict[str, Any] = response.json()
    return out


def call(tool: str, **arguments: Any) -> dict[str, Any]:
    return {"name": tool, "arguments": arguments}
