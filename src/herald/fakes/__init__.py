"""Fake provider servers: every provider's API on one local port, for tests and for trying Herald offline.

``herald fake-providers --port P`` serves :func:`create_fake_app`; point a channel's ``base_url`` at it. The same
app serves a fake OpenAI-compatible chat-completions API under ``/v1`` (:mod:`herald.fakes.llm`) for the LLM
agents.
"""

from __future__ import annotations

from fastapi import FastAPI

from herald.fakes import llm
from herald.fakes.llm import FakeLLMState
from herald.providers import REGISTRY
from herald.providers.fakebase import FakeState, control_router


def create_fake_app(state: FakeState | None = None, llm_state: FakeLLMState | None = None) -> FastAPI:
    """Every registered provider's fake (each provider package's ``fake.py``), and the LLM fake, on one app."""
    state = state or FakeState()
    app = FastAPI(title="Herald fake providers", docs_url="/_fake/docs", openapi_url="/_fake/openapi.json")
    app.state.fake = state
    app.state.llm = llm_state if llm_state is not None else FakeLLMState()
    # Before the provider control routes: their ``/_fake/{provider}/...`` would otherwise take ``/_fake/llm/...``.
    app.include_router(llm.router(app.state.llm))
    app.include_router(control_router(state))
    for router in REGISTRY.fakes():
        app.include_router(router(state))
    return app


__all__ = ["FakeLLMState", "FakeState", "create_fake_app"]
